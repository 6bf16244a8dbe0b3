/// One field edit: what an app asks of a store (which turns it into a ``Change`` naming what it replaces), and
/// what the care model's merges and unmerges return.
public struct Edit: Sendable, Hashable {
    /// The record to edit.
    public var record: RecordRef
    /// The field to edit.
    public var field: String
    /// What to do.
    public var operation: Operation
    /// The value to assign, add, remove or append.
    public var value: Value
    /// Whether an assignment replaces nothing, so that it stands beside the field's current values as a
    /// concurrent write (a `review` field then waits in the conflict inbox): how a duplicate merge keeps both
    /// patients' differing values (the care model's `mergeWrites`).
    public var isConcurrent: Bool

    /// Creates an edit.
    public init(record: RecordRef, field: String, operation: Operation, value: Value, isConcurrent: Bool = false) {
        self.record = record
        self.field = field
        self.operation = operation
        self.value = value
        self.isConcurrent = isConcurrent
    }

    /// Sets a register field (`lww`, `review`, `status`), replacing every value the store holds for it —
    /// which is also how a conflict is resolved.
    public static func assign(_ record: RecordRef, _ field: String, _ value: Value) -> Edit {
        Edit(record: record, field: field, operation: .assign, value: value)
    }

    /// Adds an element to a `set` field.
    public static func add(_ record: RecordRef, _ field: String, _ value: Value) -> Edit {
        Edit(record: record, field: field, operation: .add, value: value)
    }

    /// Removes an element from a `set` field (the tags the store holds for it).
    public static func remove(_ record: RecordRef, _ field: String, _ value: Value) -> Edit {
        Edit(record: record, field: field, operation: .remove, value: value)
    }

    /// Appends an entry to a `log` field.
    public static func append(_ record: RecordRef, _ field: String, _ value: Value) -> Edit {
        Edit(record: record, field: field, operation: .append, value: value)
    }
}
