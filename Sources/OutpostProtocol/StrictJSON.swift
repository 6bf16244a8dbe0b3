public import Foundation

/// A strict reader of request bodies: RFC 8259 JSON in UTF-8, as the protocol defines it (section 1), checked
/// before a message is decoded, because Foundation's `JSONDecoder` is lenient where the protocol is not.
///
/// It refuses, naming the byte offset: a byte-order mark, UTF-16 or UTF-32, bytes that are not UTF-8, a key
/// repeated within one object, a trailing comma, anything after the value, nesting deeper than
/// ``maxDepth``, and lone surrogate escapes. With `integersOnly` (the wire profile: every number of the
/// protocol is an integer) it also refuses a number written with a fraction or an exponent (`3.0`, `1e0`),
/// which `JSONDecoder` would read as an integer.
///
/// For example:
///
/// ```swift
/// try StrictJSON.validate(Data(#"{"a":1,"a":2}"#.utf8))  // throws: at byte 7: the key 'a' is repeated…
/// ```
public enum StrictJSON {
    /// The deepest nesting of objects and arrays accepted; Outpost's messages nest fewer than ten levels.
    public static let maxDepth = 64

    /// Why a body is not strict JSON, and where.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The 0-based byte offset of the fault in the body.
        public var offset: Int
        /// What is wrong, in words; quotes at most a short key, never a value.
        public var message: String

        public var description: String { "at byte \(offset): \(message)" }
    }

    /// Checks `data` is one strict JSON value; throws the first fault found.
    public static func validate(_ data: Data, integersOnly: Bool = false) throws(Failure) {
        let result: Failure? = data.withUnsafeBytes { raw in
            var reader = Reader(bytes: raw.bindMemory(to: UInt8.self), integersOnly: integersOnly)
            do throws(Failure) {
                try reader.document()
                return nil
            } catch {
                return error
            }
        }
        if let result { throw result }
    }

    /// An iterative (no recursion) single-pass validator over the body's bytes.
    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        let integersOnly: Bool
        var index = 0

        /// The open containers, innermost last.
        var stack: [Frame] = []
        /// The decoded bytes of the keys of every open object, back to back.
        var keyBytes: [UInt8] = []
        /// The ranges in `keyBytes` of the keys of every open object, back to back.
        var keyRanges: [Range<Int>] = []

        struct Frame {
            var isObject: Bool
            /// Where this object's keys start in `keyRanges`.
            var firstKey: Int
            /// Where this object's key bytes start in `keyBytes`.
            var firstKeyByte: Int
            /// Once an object has many keys: the keys seen, for a constant-time repeat check.
            var seen: Set<ArraySlice<UInt8>>?
        }

        init(bytes: UnsafeBufferPointer<UInt8>, integersOnly: Bool) {
            self.bytes = bytes
            self.integersOnly = integersOnly
        }

        func fail(_ message: String, at offset: Int? = nil) -> Failure {
            Failure(offset: offset ?? index, message: message)
        }

        mutating func document() throws(Failure) {
            try checkEncoding()
            try value()
            while true {
                skipWhitespace()
                guard let top = stack.last else { break }
                guard index < bytes.count else {
                    throw fail("the body ends inside an \(top.isObject ? "object" : "array"); it was cut short")
                }
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") {
                    let comma = index
                    index += 1
                    skipWhitespace()
                    if index < bytes.count,
                        bytes[index] == (top.isObject ? UInt8(ascii: "}") : UInt8(ascii: "]"))
                    {
                        throw fail("a trailing comma before '\(Character(Unicode.Scalar(bytes[index])))'", at: comma)
                    }
                    if top.isObject { try key() }
                    try value()
                } else if top.isObject && byte == UInt8(ascii: "}") || !top.isObject && byte == UInt8(ascii: "]") {
                    index += 1
                    close()
                } else {
                    throw fail("expected ',' or '\(top.isObject ? "}" : "]")', found \(shown(byte))")
                }
            }
            guard index == bytes.count else {
                throw fail("bytes follow the JSON value; send exactly one value")
            }
        }

        /// Refuses a byte-order mark and UTF-16 or UTF-32, which `JSONDecoder` would otherwise guess.
        func checkEncoding() throws(Failure) {
            if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
                throw fail("the body starts with a byte-order mark; send UTF-8 without one", at: 0)
            }
            if bytes.count >= 2 && (bytes[0] == 0xFE && bytes[1] == 0xFF || bytes[0] == 0xFF && bytes[1] == 0xFE) {
                throw fail("the body is UTF-16 (it starts with a byte-order mark); send UTF-8", at: 0)
            }
            if bytes.prefix(4).contains(0) {
                throw fail("the body has a zero byte at its start (UTF-16 or UTF-32?); send UTF-8", at: 0)
            }
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        /// Reads one value; an object or an array is opened and its first member read, the rest by
        /// ``document()``.
        mutating func value() throws(Failure) {
            skipWhitespace()
            guard index < bytes.count else { throw fail("the body ends where a value was expected; it was cut short") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                try open(isObject: true)
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    close()
                } else {
                    try key()
                    try value()
                }
            case UInt8(ascii: "["):
                try open(isObject: false)
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    close()
                } else {
                    try value()
                }
            case UInt8(ascii: "\""):
                var ignored: [UInt8]? = nil
                try string(into: &ignored)
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            case let byte: throw fail("expected a value, found \(shown(byte))")
            }
        }

        mutating func open(isObject: Bool) throws(Failure) {
            guard stack.count < StrictJSON.maxDepth else {
                throw fail("objects and arrays nest deeper than \(StrictJSON.maxDepth) levels")
            }
            stack.append(
                Frame(isObject: isObject, firstKey: keyRanges.count, firstKeyByte: keyBytes.count, seen: nil)
            )
            index += 1
        }

        mutating func close() {
            let frame = stack.removeLast()
            if frame.isObject {
                keyRanges.removeSubrange(frame.firstKey...)
                keyBytes.removeSubrange(frame.firstKeyByte...)
            }
        }

        /// Reads `"key" :` in the innermost object and refuses a key it already has.
        mutating func key() throws(Failure) {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail(
                    index < bytes.count
                        ? "expected a key in quotes, found \(shown(bytes[index]))" : "the body ends inside an object"
                )
            }
            let start = index
            let keyStart = keyBytes.count
            var sink: [UInt8]? = keyBytes
            keyBytes = []
            try string(into: &sink)
            keyBytes = sink ?? []
            let range = keyStart..<keyBytes.count
            let top = stack.count - 1
            let firstKey = stack[top].firstKey
            let key = keyBytes[range]
            if stack[top].seen != nil {
                if stack[top].seen!.insert(key).inserted == false { throw repeated(key, at: start) }
            } else {
                for earlier in keyRanges[firstKey...] where keyBytes[earlier] == key {
                    throw repeated(key, at: start)
                }
                if keyRanges.count - firstKey >= 16 {
                    stack[top].seen = Set(keyRanges[firstKey...].map { keyBytes[$0] } + [key])
                }
            }
            keyRanges.append(range)
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail("expected ':' after a key")
            }
            index += 1
        }

        func repeated(_ key: ArraySlice<UInt8>, at offset: Int) -> Failure {
            let text = String(decoding: key.prefix(40), as: UTF8.self)
            return fail("the key '\(text)' is repeated in one object; send each key once", at: offset)
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count,
                memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0
            else {
                throw fail("expected \(word)")
            }
            index += count
        }

        mutating func number() throws(Failure) {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("a '-' not followed by a digit") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
                if index < bytes.count && isDigit(bytes[index]) {
                    throw fail("a number with a leading zero", at: start)
                }
            } else {
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
                if integersOnly {
                    throw fail(
                        "a number with a fraction; integers are written without '.', decimals as strings",
                        at: start
                    )
                }
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("a '.' not followed by a digit") }
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
                if integersOnly {
                    throw fail("a number with an exponent; integers are written in plain digits", at: start)
                }
                index += 1
                if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                    index += 1
                }
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("an exponent without digits") }
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            }
        }

        func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

        /// Reads a string, checking its escapes and its UTF-8; with a sink, appends its decoded bytes.
        mutating func string(into sink: inout [UInt8]?) throws(Failure) {
            index += 1
            while true {
                let runStart = index
                // The common case: printable ASCII other than the quote and the backslash.
                while index < bytes.count {
                    let byte = bytes[index]
                    guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else {
                        break
                    }
                    index += 1
                }
                if sink != nil && index > runStart {
                    sink!.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                }
                guard index < bytes.count else { throw fail("the body ends inside a string; it was cut short") }
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return
                case UInt8(ascii: "\\"):
                    try escape(into: &sink)
                case 0..<0x20:
                    throw fail("a control character (\(shown(byte))) inside a string; escape it")
                default:
                    let start = index
                    try scalar()
                    if sink != nil { sink!.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index])) }
                }
            }
        }

        /// Reads one multi-byte UTF-8 scalar, refusing overlong forms, surrogates and values above U+10FFFF.
        mutating func scalar() throws(Failure) {
            let lead = bytes[index]
            let length: Int
            var lower: UInt8 = 0x80
            var upper: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                upper = 0x9F
            case 0xF0:
                length = 4
                lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                upper = 0x8F
            default: throw fail("a byte that is not UTF-8 (\(shown(lead))); send UTF-8")
            }
            guard index + length <= bytes.count else { throw fail("a UTF-8 sequence cut short") }
            let second = bytes[index + 1]
            guard second >= lower, second <= upper else { throw fail("a byte that is not UTF-8; send UTF-8") }
            for offset in 2..<max(2, length) where bytes[index + offset] & 0xC0 != 0x80 {
                throw fail("a byte that is not UTF-8; send UTF-8", at: index + offset)
            }
            index += length
        }

        mutating func escape(into sink: inout [UInt8]?) throws(Failure) {
            let start = index
            index += 1
            guard index < bytes.count else { throw fail("the body ends inside an escape") }
            let decoded: UInt8
            switch bytes[index] {
            case UInt8(ascii: "\""): decoded = UInt8(ascii: "\"")
            case UInt8(ascii: "\\"): decoded = UInt8(ascii: "\\")
            case UInt8(ascii: "/"): decoded = UInt8(ascii: "/")
            case UInt8(ascii: "b"): decoded = 0x08
            case UInt8(ascii: "f"): decoded = 0x0C
            case UInt8(ascii: "n"): decoded = 0x0A
            case UInt8(ascii: "r"): decoded = 0x0D
            case UInt8(ascii: "t"): decoded = 0x09
            case UInt8(ascii: "u"):
                index += 1
                var code = try hex4()
                if code >= 0xD800 && code < 0xDC00 {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    else { throw fail("a lone surrogate escape (\\uD800-\\uDBFF without its pair)", at: start) }
                    index += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else {
                        throw fail("a surrogate escape not followed by a low surrogate", at: start)
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if code >= 0xDC00 && code < 0xE000 {
                    throw fail("a lone low surrogate escape", at: start)
                }
                if sink != nil, let scalar = Unicode.Scalar(code) {
                    sink!.append(contentsOf: String(Character(scalar)).utf8)
                }
                return
            default:
                throw fail("an unknown escape '\\\(Character(Unicode.Scalar(bytes[index])))'", at: start)
            }
            index += 1
            sink?.append(decoded)
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard index + 4 <= bytes.count else { throw fail("a \\u escape cut short") }
            var code: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("a \\u escape needs four hex digits")
                }
                code = code << 4 | UInt32(digit)
                index += 1
            }
            return code
        }

        func shown(_ byte: UInt8) -> String {
            if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
            return "byte 0x" + String(byte, radix: 16, uppercase: true)
        }
    }
}
