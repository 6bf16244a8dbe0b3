/// Where a JSON object, array or string ends, without decoding it: brackets counted outside strings, strings
/// ended by an unescaped quote. Its state carries over between calls, so a value can be walked across the
/// chunks of a file as it is read (`outpost import`) or in one array held in memory (``PlainJSONScanner``).
/// What the value holds is checked when it is decoded, not here.
public struct JSONValueWalk {
    @usableFromInline var depth = 0
    @usableFromInline var inString = false
    @usableFromInline var escaped = false

    /// A walk from the value's first byte, which must be `{`, `[` or `"`.
    @inlinable public init() {}

    /// Walks `bytes` from `start`; returns the index after the value's last byte, or `nil` when `bytes` end
    /// first (then the walk goes on with the next bytes).
    @inlinable public mutating func end(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 0 { return index }
                }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                depth += 1
            } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return index }
            }
        }
        return nil
    }
}
