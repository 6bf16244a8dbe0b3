/// The identity of one change: the replica that made it and that replica's counter.
///
/// Counters start at 1 and grow by one with every change a replica makes, so a receiver can tell a retry
/// or a duplicate from a new change. Written as `replica/counter`, for example `laptop-7/42`.
public struct ChangeID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The replica that made the change.
    public var replica: ReplicaID
    /// The replica's counter for this change, from 1.
    public var counter: UInt64

    /// Creates a change id.
    public init(replica: ReplicaID, counter: UInt64) {
        self.replica = replica
        self.counter = counter
    }

    /// Parses the `replica/counter` form; `nil` when malformed.
    ///
    /// Only the canonical spelling is accepted (decimal digits, no sign, no leading zero), so one change has
    /// exactly one written id and ids compare equal as text whenever they are equal as values.
    public init?(_ text: String) {
        guard let slash = text.lastIndex(of: "/"),
            let replica = ReplicaID(String(text[..<slash]))
        else { return nil }
        let digits = text[text.index(after: slash)...]
        guard let first = digits.first, first != "0", digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let counter = UInt64(digits)
        else { return nil }
        self.init(replica: replica, counter: counter)
    }

    public static func < (lhs: ChangeID, rhs: ChangeID) -> Bool {
        if lhs.replica != rhs.replica { return lhs.replica < rhs.replica }
        return lhs.counter < rhs.counter
    }

    public var description: String { "\(replica.rawValue)/\(counter)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = ChangeID(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a change id (replica/counter)")
            )
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
