import Foundation

/// The aligned tables both executables print: a header, then one line per row, columns two spaces apart, every
/// column but the last padded to its widest cell.
public enum TablePrinter {
    /// The table as text, one line per row, each ending in a newline.
    public static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for (index, cell) in cells.enumerated() {
                if index > 0 { text += "  " }
                text += index == cells.count - 1 || index >= widths.count ? cell : padded(cell, to: widths[index])
            }
            return text
        }
        var output = line(header) + "\n"
        for row in rows { output += line(row) + "\n" }
        return output
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

    /// `cell.padding(toLength: width, withPad: " ", startingAt: 0)` (a length in UTF-16 units), without
    /// bridging to `NSString` for the common case of a cell no longer than `width`.
    static func padded(_ cell: String, to width: Int) -> String {
        let length = cell.utf16.count
        guard length <= width else { return cell.padding(toLength: width, withPad: " ", startingAt: 0) }
        return length == width ? cell : cell + String(repeating: " ", count: width - length)
    }
}
