/// The merge policy of every field of every record type: what the CRDT needs to know of a model.
///
/// The care model declares its schema in `OutpostModel`; tests may declare small ones.
public struct Schema: Sendable {
    /// Policies by record type, then by field name.
    public var types: [String: [String: MergePolicy]]

    /// Creates a schema.
    public init(types: [String: [String: MergePolicy]]) {
        self.types = types
    }

    /// The policy of `field` of `type`, or `nil` when the schema has no such field.
    public func policy(type: String, field: String) -> MergePolicy? {
        types[type]?[field]
    }

    /// Checks that `change` names a known type and field and uses an operation its policy allows.
    ///
    /// - Returns: the field's policy.
    /// - Throws: ``CRDTError`` with code `unknownRecordType`, `unknownField` or `operationNotAllowed`.
    public func check(_ change: Change) throws(CRDTError) -> MergePolicy {
        guard let fields = types[change.record.type] else {
            throw CRDTError(
                code: .unknownRecordType,
                message: "unknown record type '\(change.record.type)' in change \(change.id)"
            )
        }
        guard let policy = fields[change.field] else {
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
