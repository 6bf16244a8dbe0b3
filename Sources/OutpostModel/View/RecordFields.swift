import OutpostCRDT

/// Reads a record's fields as ``MaterializedRecord`` does, straight from its state: only the fields asked for
/// are resolved, and nothing is copied into a dictionary.
///
/// What reads a few fields of every record (the local store's projection, on every record an import, a
/// bootstrap or a page of remote changes writes) reads them through this; a whole record for a view or an
/// export is a ``MaterializedRecord``. Both give the same values: `RecordFieldsTests` checks them on every
/// field of every type, in random states with fields unset, written once, written concurrently and replaced.
public struct RecordFields {
    /// The record's type.
    public let type: RecordType
    /// The record's state.
    public let state: RecordState
    /// The type's field specs sorted by name, searched like the state's fields: no name hashed.
    private let specs: [FieldSpec]

    /// Reads `state`, a record of `type`.
    public init(type: RecordType, state: RecordState) {
        self.type = type
        self.state = state
        specs = CareModel.specsSortedByName(of: type)
    }

    /// A register's value, as ``MaterializedRecord/value(_:)`` reads it: `nil` when unset, and for sets, logs
    /// and fields the table does not know.
    public func value(_ field: String) -> Value? {
        // Read in place through the fields' and specs' positions: no field state or spec copied out (each copy
        // retains and releases what it holds, for every value the projection reads).
        guard let index = state.index(ofField: field) else { return nil }
        let count = state.sortedFields[index].state.live.count
        guard count > 0, let spec = specIndex(field), specs[spec].isRegister else { return nil }
        // One live write wins under every policy (FieldState.resolution).
        if count == 1 { return state.sortedFields[index].state.live[0].value }
        return state.sortedFields[index].state.resolution(under: specs[spec].policy).winner?.value
    }

    /// A register's text (`nil` when unset or not text).
    public func string(_ field: String) -> String? { value(field)?.stringValue }

    /// A set's elements or a log's entries' values; a register's value as a one-element list (empty when never
    /// written), as ``MaterializedRecord/values(_:)`` reads them.
    public func values(_ field: String) -> [Value] {
        guard let fieldState = state.field(field), !fieldState.isEmpty, let spec = spec(field) else { return [] }
        switch spec.policy {
        case .lww, .review, .status: return value(field).map { [$0] } ?? []
        case .set: return fieldState.elements
        case .log: return fieldState.entries.map(\.value)
        }
    }

    /// The registers with concurrent values awaiting review, sorted (``MaterializedRecord/conflictedFields``).
    public var conflictedFields: [String] {
        state.conflictedFields { spec($0)?.policy }
    }

    /// The spec of `field`, `nil` when the type has no such field.
    private func spec(_ field: String) -> FieldSpec? {
        specIndex(field).map { specs[$0] }
    }

    /// Where the spec of `field` is in ``specs``, `nil` when the type has no such field.
    private func specIndex(_ field: String) -> Int? {
        let slot = specs.sortedSlot(of: field, by: \.name)
        return slot.found ? slot.index : nil
    }

    /// Whether the record is retired (its status is one of ``CareModel/retiredStatuses(of:)``).
    public var isRetired: Bool {
        guard let status = string("status") else { return false }
        return CareModel.retiredStatuses(of: type).contains(status)
    }
}
