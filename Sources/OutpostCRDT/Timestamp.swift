/// A hybrid logical clock reading: wall-clock milliseconds plus a logical counter.
///
/// Timestamps order every write a replica makes or sees: a write made after seeing another always
/// carries a larger timestamp, even when the wall clocks of the two replicas disagree. Ties between
/// replicas are broken by ``ChangeID`` wherever a total order is needed.
public struct Timestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z, as the clock understood physical time.
    public var millis: UInt64
    /// Logical counter that orders events within the same millisecond.
    public var counter: UInt32

    /// Creates a timestamp from its two parts.
    public init(millis: UInt64, counter: UInt32 = 0) {
        self.millis = millis
        self.counter = counter
    }

    /// The smallest timestamp; every real reading is larger.
    public static let zero = Timestamp(millis: 0, counter: 0)

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        (lhs.millis, lhs.counter) < (rhs.millis, rhs.counter)
    }

    public var description: String { "\(millis).\(counter)" }

    private enum CodingKeys: String, CodingKey {
        case millis = "ms"
        case counter = "c"
    }

    /// Decodes `{"ms": …, "c": …}`, refusing other keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: ["ms", "c"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            millis: try container.decode(UInt64.self, forKey: .millis),
            counter: try container.decode(UInt32.self, forKey: .counter)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(millis, forKey: .millis)
        try container.encode(counter, forKey: .counter)
    }
}
