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
    private let specs: [String: FieldSpec]

    /// Reads `state`, a record of `type`.
    public init(type: RecordType, state: RecordState) {
        self.type = type
        self.state = state
        specs = CareModel.specsByName(of: type)
    }

    /// A register's value, as ``MaterializedRecord/value(_:)`` reads it: `nil` when unset, and for sets, logs
    /// and fields the table does not know.
    public func value(_ field: String) -> Value? {
        guard let fieldState = state.field(field), !fieldState.live.isEmpty, let spec = specs[field], spec.isRegister
        else { return nil }
        // One live write wins under every policy (FieldState.resolution).
        if fieldState.live.count == 1 { return fieldState.live[0].value }
        return fieldState.resolution(under: spec.policy).winner?.value
    }

    /// A register's text (`nil` when unset or not text).
    public func string(_ field: String) -> String? { value(field)?.stringValue }

    /// A set's elements or a log's entries' values; a register's value as a one-element list (empty when never
    /// written), as ``MaterializedRecord/values(_:)`` reads them.
    public func values(_ field: String) -> [Value] {
        guard let fieldState = state.field(field), !fieldState.isEmpty, let spec = specs[field] else { return [] }
        switch spec.policy {
        case .lww, .review, .status: return value(field).map { [$0] } ?? []
        case .set: return fieldState.elements
        case .log: return fieldState.entries.map(\.value)
        }
    }

    /// The registers with concurrent values awaiting review, sorted (``MaterializedRecord/conflictedFields``).
    public var conflictedFields: [String] {
        var fields: [String] = []
        // Only a field with more than one live write can be in conflict: most are passed over without a look-up.
        for field in state.sortedFields where field.state.live.count > 1 {
            guard let spec = specs[field.name], spec.isRegister,
                field.state.resolution(under: spec.policy).isConflict
            else { continue }
            fields.append(field.name)
        }
        return fields
    }

    /// Whether the record is retired (its status is one of ``CareModel/retiredStatuses(of:)``).
    public var isRetired: Bool {
        guard let status = string("status") else { return false }
        return CareModel.retiredStatuses(of: type).contains(status)
    }
}
