/// Identifiers generated offline without coordination and sortable by creation time (ULID layout).
///
/// 48 bits of milliseconds since 1970 followed by 80 random bits, written as 26 characters of Crockford
/// base 32. Ids made in a later millisecond sort after earlier ones as plain strings. Time and randomness
/// are passed in, so ids are reproducible in tests.
public enum SortableID {
    /// The 32 characters of Crockford's base 32, in order.
    public static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// Makes an id for `millis` with randomness from `generator`.
    public static func make(millis: UInt64, using generator: inout some RandomNumberGenerator) -> String {
        var chars = [UInt8](repeating: 0, count: 26)
        var time = millis & 0xFFFF_FFFF_FFFF
        for index in stride(from: 9, through: 0, by: -1) {
            chars[index] = alphabet[Int(time & 31)]
            time >>= 5
        }
        var random = generator.next()
        var moreRandom = generator.next()
        for index in 10..<26 {
            if index == 22 { random = moreRandom }
            chars[index] = alphabet[Int(random & 31)]
            random >>= 5
            if index == 21 { moreRandom = generator.next() }
        }
        return String(decoding: chars, as: UTF8.self)
    }

    /// Whether `text` has the shape of an id made by ``make(millis:using:)``.
    ///
    /// Inlinable, like ``isValid(bytes:)``: a call from another module is compiled for its string type there. A
    /// generic call across modules is not, and ids are checked for every change a server judges.
    @inlinable
    public static func isValid(_ text: some StringProtocol) -> Bool {
        isValid(bytes: text.utf8)
    }

    /// Whether `bytes` (UTF-8) have the shape of an id made by ``make(millis:using:)``.
    @inlinable
    public static func isValid(bytes: some Sequence<UInt8>) -> Bool {
        // Checked on every record of an import, every change a server judges and every projected task: bytes in
        // place when the sequence has them contiguous (a native string's), decided by comparisons, not a table.
        if let valid = bytes.withContiguousStorageIfAvailable({ isValid(buffer: $0) }) { return valid }
        var count = 0
        for byte in bytes {
            guard count < 26, isDigit(byte) else { return false }
            if count == 0 && byte > UInt8(ascii: "7") { return false }
            count += 1
        }
        return count == 26
    }

    /// ``isValid(bytes:)`` of bytes in memory.
    @inlinable
    public static func isValid(buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        guard buffer.count == 26, buffer[0] <= UInt8(ascii: "7") else { return false }
        for byte in buffer where !isDigit(byte) { return false }
        return true
    }

    /// Whether `byte` is one of ``alphabet``'s: a digit or an upper-case letter other than I, L, O and U.
    @inlinable
    static func isDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "H"), UInt8(ascii: "J"),
            UInt8(ascii: "K"), UInt8(ascii: "M"), UInt8(ascii: "N"), UInt8(ascii: "P")...UInt8(ascii: "T"),
            UInt8(ascii: "V")...UInt8(ascii: "Z"):
            true
        default: false
        }
    }

    /// The creation time encoded in a valid id, in milliseconds since 1970.
    public static func millis(of text: some StringProtocol) -> UInt64? {
        guard isValid(text) else { return nil }
        return number(text.utf8.prefix(10))
    }

    /// Digits of ``alphabet`` read as one number, the most significant first.
    static func number(_ digits: some Sequence<UInt8>) -> UInt64 {
        digits.reduce(0) { $0 << 5 | UInt64(digitValue($1)) }
    }

    /// A valid id's 128 bits: the 48 bits of its time and its 80 random bits as two numbers of 40 bits (the first
    /// and last eight characters of its random part). ``text(_:)`` gives the id back.
    public struct Bits: Sendable, Hashable {
        /// Milliseconds since 1970, below 2^48.
        public var millis: UInt64
        /// The random part's first 40 bits.
        public var high: UInt64
        /// The random part's last 40 bits.
        public var low: UInt64

        /// Bits given as numbers; `nil` when one does not fit its width.
        public init?(millis: UInt64, high: UInt64, low: UInt64) {
            guard millis < 1 << 48, high < 1 << 40, low < 1 << 40 else { return nil }
            self.millis = millis
            self.high = high
            self.low = low
        }
    }

    /// The bits of `bytes` when they are a valid id (26 characters of ``alphabet``, the first at most `7`).
    public static func bits(of bytes: UnsafeBufferPointer<UInt8>) -> Bits? {
        guard isValid(buffer: bytes) else { return nil }
        return Bits(millis: number(bytes[0..<10]), high: number(bytes[10..<18]), low: number(bytes[18..<26]))
    }

    /// The 26 characters of an id with `bits`.
    public static func text(_ bits: Bits) -> String {
        String(unsafeUninitializedCapacity: 26) { buffer in
            func put(_ value: UInt64, _ range: Range<Int>) {
                var rest = value
                for index in range.reversed() {
                    buffer[index] = alphabet[Int(rest & 31)]
                    rest >>= 5
                }
            }
            put(bits.millis, 0..<10)
            put(bits.high, 10..<18)
            put(bits.low, 18..<26)
            return 26
        }
    }

    /// The value of one of ``alphabet``'s characters (by a table of the 128 ASCII bytes).
    static func digitValue(_ byte: UInt8) -> UInt8 {
        digitValues[Int(byte & 0x7F)]
    }

    /// Each ASCII byte's value as a digit of ``alphabet`` (0 for the bytes that are none).
    private static let digitValues: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 128)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()
}
