import Foundation
import OutpostCRDT

/// The aligned tables both executables print: a header, then one line per row, columns two spaces apart, every
/// column but the last padded to its widest cell.
public enum TablePrinter {
    /// The table as text, one line per row, each ending in a newline.
    public static func render(_ header: [String], _ rows: [[String]]) -> String {
        // Each cell's width is counted once: for its column's width, then for its padding.
        let rows = rows.map { $0.map(printable) }
        let cellWidths = [header.map(width)] + rows.map { $0.map(width) }
        var widths = cellWidths[0]
        for row in cellWidths.dropFirst() {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell)
            }
        }
        // Built as bytes, not by appending strings: a list prints thousands of rows.
        var output: [UInt8] = []
        output.reserveCapacity((rows.count + 1) * (widths.reduce(0, +) + 2 * widths.count + 1))
        func line(_ cells: [String], _ cellWidths: [Int]) {
            for (index, cell) in cells.enumerated() {
                if index > 0 { output.append(contentsOf: repeatElement(0x20, count: 2)) }
                output.append(contentsOf: cell.utf8)
                if index < cells.count - 1, index < widths.count {
                    output.append(contentsOf: repeatElement(0x20, count: widths[index] - cellWidths[index]))
                }
            }
            output.append(0x0A)
        }
        for (row, rowWidths) in zip([header] + rows, cellWidths) { line(row, rowWidths) }
        return String(decoding: output, as: UTF8.self)
    }

    /// `text` as it can be printed on a terminal: each control character (C0, DEL, C1) and bidirectional embedding,
    /// override or isolate written as its escape (`\u{1B}`), so that a stored value cannot clear the screen, move the
    /// cursor, hide what follows or reorder a line. Ordinary text is returned as it is after one pass over its bytes.
    public static func printable(_ text: String) -> String {
        guard DisplayControl.mayHold(text) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if DisplayControl.isControl(scalar) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// A cell's width: its characters (an ASCII cell's bytes, counted on its contiguous bytes without walking
    /// its characters).
    static func width(_ cell: String) -> Int {
        let isASCII =
            cell.utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy { $0 < 0x80 } }
            ?? cell.utf8.allSatisfy { $0 < 0x80 }
        return isASCII ? cell.utf8.count : cell.count
    }

    /// Prints the table in one write (a list of thousands of rows printed line by line costs more than reading
    /// it); with no rows, prints `empty` instead when given, else the header alone.
    public static func print(_ header: [String], _ rows: [[String]], empty: String? = nil) {
        if rows.isEmpty, let empty {
            Swift.print(empty)
            return
        }
        Swift.print(render(header, rows), terminator: "")
    }
}
