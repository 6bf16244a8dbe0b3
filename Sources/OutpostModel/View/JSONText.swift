import OutpostCRDT

/// Minimal canonical JSON writing: the same input always gives the same bytes (no floats, keys sorted by
/// the callers, strings escaped the same way everywhere).
public enum JSONText {
    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped, everything else
    /// as it is.
    public static func append(string text: String, to out: inout String) {
        out.append("\"")
        // Most text needs no escape: appended whole (a scalar at a time cost most of an export).
        func needsEscape(_ byte: UInt8) -> Bool { byte == 0x22 || byte == 0x5C || byte < 0x20 }
        let escapes =
            text.utf8.withContiguousStorageIfAvailable { $0.contains(where: needsEscape) }
            ?? text.utf8.contains(where: needsEscape)
        if !escapes {
            out.append(text)
            out.append("\"")
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    static func append(value: Value, to out: inout String) {
        switch value {
        case .null: out.append("null")
        case .bool(let flag): out.append(flag ? "true" : "false")
        case .int(let number): out.append(String(number))
        case .string(let text): append(string: text, to: &out)
        }
    }

    static func append(values: [Value], to out: inout String) {
        out.append("[")
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(",") }
            append(value: value, to: &out)
        }
        out.append("]")
    }
}
