/// The merged state of one record: a map of field states.
public struct RecordState: Sendable, Hashable, Codable {
    /// Field states by field name.
    public private(set) var fields: [String: FieldState]

    /// An empty record.
    public init() { fields = [:] }

    /// Creates a record from field states.
    public init(fields: [String: FieldState]) { self.fields = fields }

    /// The state of `field` (empty when never written).
    public subscript(field: String) -> FieldState {
        fields[field] ?? FieldState()
    }

    /// Makes room for `count` fields (a record folded from its changes: the fields are written one by one).
    public mutating func reserveFields(_ count: Int) {
        fields.reserveCapacity(count)
    }

    /// Applies a change whose policy the caller has looked up (see ``Schema/check(_:)``); returns whether
    /// the state changed.
    @discardableResult
    public mutating func apply(_ change: Change) -> Bool {
        fields[change.field, default: FieldState()].apply(change)
    }

    /// Merges another replica's state of the same record.
    public mutating func merge(_ other: RecordState) {
        for (name, state) in other.fields {
            fields[name, default: FieldState()].merge(state)
        }
    }

    public init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: FieldState].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }
}
