/// The merge policy of every field of every record type: what the CRDT needs to know of a model.
///
/// The care model declares its schema in `OutpostModel`; tests may declare small ones.
public struct Schema: Sendable {
    /// Policies by record type, then by field name.
    public let types: [String: [String: MergePolicy]]

    /// ``types`` as arrays sorted by name, searched instead of hashed: every change a store or a server takes is
    /// checked here, and two hashed look-ups of its type and field took about 57 ns in a micro-benchmark, one
    /// search of a type's field names about 14 (docs/sync.md, "Thirtieth session").
    private let sorted: [SortedType]

    /// A type's policies, sorted by field name.
    private struct SortedType: Sendable {
        let name: String
        let fields: [SortedField]
    }

    /// A field's policy.
    private struct SortedField: Sendable {
        let name: String
        let policy: MergePolicy
    }

    /// Creates a schema.
    public init(types: [String: [String: MergePolicy]]) {
        self.types = types
        sorted = Self.sorted(types)
    }

    private static func sorted(_ types: [String: [String: MergePolicy]]) -> [SortedType] {
        types.map { type, fields in
            SortedType(
                name: type,
                fields: fields.map { SortedField(name: $0.key, policy: $0.value) }.sorted { $0.name < $1.name }
            )
        }
        .sorted { $0.name < $1.name }
    }

    /// The fields of `type`, sorted by name; `nil` when the schema has no such type.
    private func fields(of type: String) -> [SortedField]? {
        let slot = sorted.sortedSlot(of: type, by: \.name)
        return slot.found ? sorted[slot.index].fields : nil
    }

    /// The policy of `field` among `fields` (sorted by name).
    private static func policy(of field: String, in fields: [SortedField]) -> MergePolicy? {
        let slot = fields.sortedSlot(of: field, by: \.name)
        return slot.found ? fields[slot.index].policy : nil
    }

    /// The policy of `field` of `type`, or `nil` when the schema has no such field.
    public func policy(type: String, field: String) -> MergePolicy? {
        fields(of: type).flatMap { Self.policy(of: field, in: $0) }
    }

    /// Checks that `change` names a known type and field and uses an operation its policy allows.
    ///
    /// - Returns: the field's policy.
    /// - Throws: ``CRDTError`` with code `unknownRecordType`, `unknownField` or `operationNotAllowed`.
    public func check(_ change: Change) throws(CRDTError) -> MergePolicy {
        guard let fields = fields(of: change.record.type) else {
            throw CRDTError(
                code: .unknownRecordType,
                message: "unknown record type '\(change.record.type)' in change \(change.id)"
            )
        }
        guard let policy = Self.policy(of: change.field, in: fields) else {
            throw CRDTError(
                code: .unknownField,
                message: "record type '\(change.record.type)' has no field '\(change.field)' (change \(change.id))"
            )
        }
        guard policy.allows(change.operation) else {
            throw CRDTError(
                code: .operationNotAllowed,
                message: "field '\(change.record.type).\(change.field)' has policy \(policy.name), which does not "
                    + "allow '\(change.operation.rawValue)' (change \(change.id))"
            )
        }
        if change.operation == .append && !change.replaces.isEmpty {
            throw CRDTError(
                code: .operationNotAllowed,
                message: "log entries never replace others, but change \(change.id) names \(change.replaces.count)"
            )
        }
        return policy
    }
}
