import OutpostCRDT

/// A new record's field values, before they become changes: register fields hold one value, `set` and
/// `log` fields a list (elements or entries).
public struct DraftRecord: Sendable, Hashable {
    /// The record's type.
    public var type: RecordType
    /// The record's id (`pat_01JD…`).
    public var id: String
    /// Values by field name.
    public var fields: [String: [Value]]

    /// Creates a draft.
    public init(type: RecordType, id: String, fields: [String: [Value]] = [:]) {
        self.type = type
        self.id = id
        self.fields = fields
    }

    /// Creates a draft for a typed id.
    public init<Kind: RecordKind>(id: RecordID<Kind>, fields: [String: [Value]] = [:]) {
        self.init(type: Kind.recordType, id: id.rawValue, fields: fields)
    }

    /// The record's reference.
    public var ref: RecordRef { RecordRef(type: type.rawValue, id: id) }

    /// Sets a register field to one value (or removes it when `value` is `nil`).
    public subscript(register field: String) -> Value? {
        get { fields[field]?.first }
        set { fields[field] = newValue.map { [$0] } }
    }
}
