import OutpostCRDT

extension DumpRecord {
    /// A record read straight from its JSON, the same as `JSONDecoder` decodes it, when the JSON is plain: the
    /// members `type`, `id` and `fields`, once each; strings of valid UTF-8 without escapes or control
    /// characters; integers without fraction or exponent that fit 64 bits; field names given once. Nil for
    /// anything else, which is then decoded by `JSONDecoder` (and refused by it when it is wrong).
    public init?(plainJSON bytes: [UInt8]) {
        var scanner = PlainJSONScanner(bytes: bytes)
        guard scanner.take(UInt8(ascii: "{")) else { return nil }
        var type: String?
        var id: String?
        var fields: [String: DumpField]?
        repeat {
            guard let key = scanner.strictString(), scanner.take(UInt8(ascii: ":")) else { return nil }
            switch key {
            case "type" where type == nil: type = scanner.strictString()
            case "id" where id == nil: id = scanner.strictString()
            case "fields" where fields == nil: fields = scanner.dumpFields()
            default: return nil
            }
        } while scanner.take(UInt8(ascii: ","))
        guard scanner.take(UInt8(ascii: "}")), scanner.atEnd, let type, let id, let fields else { return nil }
        self.init(type: type, id: id, fields: fields)
    }
}

/// Walks one JSON value held in memory, a practice file's record: what it cannot read plainly answers nil, and
/// the caller then decodes the value with `JSONDecoder`, which names what is wrong.
public struct PlainJSONScanner {
    let bytes: [UInt8]
    var position = 0

    /// Scans `bytes` from their start.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Whether only white space is left.
    public var atEnd: Bool {
        mutating get {
            skipSpace()
            return position == bytes.count
        }
    }

    /// JSON's white space.
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// Skips white space.
    public mutating func skipSpace() {
        while position < bytes.count, Self.isSpace(bytes[position]) { position += 1 }
    }

    /// Consumes `byte` (after white space) when it is next.
    public mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// Skips one value (strings may hold escapes); false when the bytes end first.
    public mutating func skipValue() -> Bool {
        skipSpace()
        guard position < bytes.count else { return false }
        let first = bytes[position]
        guard first == UInt8(ascii: "{") || first == UInt8(ascii: "[") || first == UInt8(ascii: "\"") else {
            // A literal: up to the next separator.
            while position < bytes.count, !Self.isSpace(bytes[position]), bytes[position] != UInt8(ascii: ","),
                bytes[position] != UInt8(ascii: "}"), bytes[position] != UInt8(ascii: "]")
            {
                position += 1
            }
            return true
        }
        var walk = JSONValueWalk()
        guard let end = bytes.withUnsafeBufferPointer({ walk.end(in: $0, from: position) }) else {
            position = bytes.count
            return false
        }
        position = end
        return true
    }

    /// A string of valid UTF-8 without escapes or control characters, or nil.
    public mutating func strictString() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\"") { return String(validating: bytes[start..<position - 1], as: UTF8.self) }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
        }
        return nil
    }

    /// `null`, `true`, `false`, an integer that fits 64 bits (no fraction, exponent or leading zero) or a
    /// ``strictString()``; nil for anything else.
    public mutating func plainValue() -> Value? {
        skipSpace()
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "\""): return strictString().map(Value.string)
        case UInt8(ascii: "n"): return literal("null", .null)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        default: break
        }
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let digits = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
            position += 1
        }
        guard position > digits, bytes[digits] != UInt8(ascii: "0") || position == digits + 1, isDelimited,
            let number = Int64(String(decoding: bytes[start..<position], as: UTF8.self))
        else { return nil }
        return .int(number)
    }

    /// `value` when `word` is next and ends there, else nil.
    private mutating func literal(_ word: String, _ value: Value) -> Value? {
        guard bytes[position...].starts(with: word.utf8) else { return nil }
        position += word.utf8.count
        return isDelimited ? value : nil
    }

    /// Whether the bytes end here or a separator, a closing bracket or white space comes next.
    private var isDelimited: Bool {
        guard position < bytes.count else { return true }
        let byte = bytes[position]
        return Self.isSpace(byte) || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}")
            || byte == UInt8(ascii: "]")
    }

    /// A record's `fields` object, each a ``plainValue()`` or an array of them, each name once; or nil.
    public mutating func dumpFields() -> [String: DumpField]? {
        guard take(UInt8(ascii: "{")) else { return nil }
        var fields: [String: DumpField] = [:]
        if take(UInt8(ascii: "}")) { return fields }
        repeat {
            guard let name = strictString(), fields[name] == nil, take(UInt8(ascii: ":")) else { return nil }
            if take(UInt8(ascii: "[")) {
                var list: [Value] = []
                if !take(UInt8(ascii: "]")) {
                    repeat {
                        guard let value = plainValue() else { return nil }
                        list.append(value)
                    } while take(UInt8(ascii: ","))
                    guard take(UInt8(ascii: "]")) else { return nil }
                }
                fields[name] = .list(list)
            } else {
                guard let value = plainValue() else { return nil }
                fields[name] = .value(value)
            }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}")) ? fields : nil
    }

    /// The number of edits the `fields` object makes: per member, an array's element count, 0 for `null`,
    /// 1 for any other value; nil when it is not an object.
    public mutating func countFieldValues() -> Int? {
        guard take(UInt8(ascii: "{")) else { return nil }
        if take(UInt8(ascii: "}")) { return 0 }
        var count = 0
        repeat {
            guard skipValue(), take(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            guard position < bytes.count else { return nil }
            if take(UInt8(ascii: "[")) {
                if !take(UInt8(ascii: "]")) {
                    repeat {
                        guard skipValue() else { return nil }
                        count += 1
                    } while take(UInt8(ascii: ","))
                    guard take(UInt8(ascii: "]")) else { return nil }
                }
            } else if bytes[position...].starts(with: "null".utf8) {
                position += 4
            } else {
                guard skipValue() else { return nil }
                count += 1
            }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}")) ? count : nil
    }
}
