/// A set of records merged from changes: the in-memory replica state used by tests, benchmarks and any
/// embedder that does not need storage.
///
/// For example:
///
/// ```swift
/// var document = Document(schema: schema)
/// try document.apply(change)        // idempotent, in any order
/// let open = document.conflicts()
/// ```
public struct Document: Sendable {
    /// The schema the document checks changes against.
    public let schema: Schema
    /// Record states by reference.
    public private(set) var records: [RecordRef: RecordState]

    /// An empty document.
    public init(schema: Schema) {
        self.schema = schema
        self.records = [:]
    }

    /// Applies one change; returns whether the document changed.
    ///
    /// - Throws: ``CRDTError`` when the schema refuses the change; the document is unchanged.
    @discardableResult
    public mutating func apply(_ change: Change) throws(CRDTError) -> Bool {
        _ = try schema.check(change)
        return records[change.record, default: RecordState()].apply(change)
    }

    /// Applies changes in order; stops at the first the schema refuses (those before it stay applied).
    public mutating func apply(_ changes: some Sequence<Change>) throws(CRDTError) {
        for change in changes { try apply(change) }
    }

    /// The state of one field.
    public func field(_ record: RecordRef, _ field: String) -> FieldState {
        records[record]?[field] ?? FieldState()
    }

    /// Every open conflict, sorted by record and field.
    public func conflicts() -> [FieldConflict] {
        var found: [FieldConflict] = []
        for (ref, record) in records {
            guard let fields = schema.types[ref.type] else { continue }
            for field in record.sortedFields {
                guard let policy = fields[field.name],
                    let conflict = FieldConflict(record: ref, field: field.name, state: field.state, policy: policy)
                else { continue }
                found.append(conflict)
            }
        }
        return found.sorted { ($0.record, $0.field) < ($1.record, $1.field) }
    }

    /// A canonical encoding of the state: identical bytes on any two replicas that have seen the same
    /// changes, whatever their order, duplication or batching.
    public func canonicalEncoding() -> [UInt8] {
        var out: [UInt8] = []
        for ref in records.keys.sorted() {
            guard let record = records[ref] else { continue }
            out.append(contentsOf: Array("\(ref)\n".utf8))
            for field in record.sortedFields {
                let (name, state) = (field.name, field.state)
                out.append(contentsOf: Array(" \(name)\n".utf8))
                for write in state.live {
                    let line = "  +\(write.id) \(write.clock) \(write.author) \(write.site ?? "-") \(write.value)\n"
                    out.append(contentsOf: Array(line.utf8))
                }
                for id in state.superseded {
                    out.append(contentsOf: Array("  -\(id)\n".utf8))
                }
            }
        }
        return out
    }
}

/// A field with concurrent values awaiting review.
public struct FieldConflict: Sendable, Hashable {
    /// The record.
    public var record: RecordRef
    /// The field.
    public var field: String
    /// The concurrent values, latest first.
    public var values: [Write]
    /// The value shown until a person resolves the conflict.
    public var provisionalWinner: Write

    /// The conflict of a field, or `nil` when the field is not in conflict under `policy`.
    public init?(record: RecordRef, field: String, state: FieldState, policy: MergePolicy) {
        let resolution = state.resolution(under: policy)
        guard resolution.isConflict, let winner = resolution.winner else { return nil }
        self.record = record
        self.field = field
        self.values = state.latestFirst
        self.provisionalWinner = winner
    }
}
