import OutpostCRDT

/// Minimal canonical JSON writing: the same input always gives the same bytes (no floats, keys sorted by
/// the callers, strings escaped the same way everywhere). Written as UTF-8 bytes: an export writes a whole
/// practice, and appending bytes costs a fraction of appending strings.
public enum JSONText {
    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped, everything else
    /// as it is.
    public static func append(string text: String, to out: inout [UInt8]) {
        out.append(0x22)
        func needsEscape(_ byte: UInt8) -> Bool { byte == 0x22 || byte == 0x5C || byte < 0x20 }
        let escapes =
            text.utf8.withContiguousStorageIfAvailable { $0.contains(where: needsEscape) }
            ?? text.utf8.contains(where: needsEscape)
        // Most text needs no escape: appended whole.
        guard escapes else {
            out += text.utf8
            out.append(0x22)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case 0x22: out += #"\""#.utf8
            case 0x5C: out += #"\\"#.utf8
            case 0x0A: out += #"\n"#.utf8
            case 0x0D: out += #"\r"#.utf8
            case 0x09: out += #"\t"#.utf8
            case _ where byte < 0x20:
                let hex = String(byte, radix: 16)
                out += ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }

    static func append(value: Value, to out: inout [UInt8]) {
        switch value {
        case .null: out += "null".utf8
        case .bool(let flag): out += (flag ? "true" : "false").utf8
        case .int(let number): out += String(number).utf8
        case .string(let text): append(string: text, to: &out)
        }
    }

    static func append(values: [Value], to out: inout [UInt8]) {
        out.append(0x5B)
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(0x2C) }
            append(value: value, to: &out)
        }
        out.append(0x5D)
    }
}
