import Foundation
import GRDB
import OutpostCRDT
public import OutpostProtocol

/// A record new to the store, made ready to be written: its encoded (sealed, in an encrypted store) state, its
/// owner, its projected rows in their stored form, and its fields in conflict. Everything here is computed
/// from the record's state alone, so it can be computed before the write transaction, off SQLite's one
/// writer (``LocalStore/prepare(_:)``): a bootstrap prepares page N+1 while it writes page N.
struct PreparedRecord: Sendable {
    /// The arguments of the record table's insert: type, id, owner, state.
    var row: StatementArguments
    /// Each projected row: its table's insert statement and its arguments.
    var projection: [(sql: String, arguments: StatementArguments)]
    /// The register fields whose concurrent values await review.
    var conflicts: [String]
}

/// A snapshot page's records with each one prepared for a store that does not hold it
/// (``LocalStore/prepare(_:)``).
public struct PreparedSnapshot: Sendable {
    /// The page's records.
    public let records: [SnapshotRecord]
    /// The prepared form of each record, in the same order; `nil` where preparing failed (the record is then
    /// prepared again inside the write, where the failure is reported).
    let forms: [PreparedRecord?]
}

extension LocalStore {
    /// Prepares a snapshot page's records for ``applySnapshot(_:checkpoint:)-(PreparedSnapshot,_)``: the work
    /// that depends on a record's state alone, done outside the write transaction (and on another thread than
    /// the one writing the previous page). A record the store turns out to hold is merged as usual and its
    /// prepared form is not used.
    public func prepare(_ records: [SnapshotRecord]) -> PreparedSnapshot {
        PreparedSnapshot(records: records, forms: records.map { try? prepare($0.record, $0.state) })
    }

    /// Merges one prepared page of a snapshot; with `checkpoint`, also records where to pull from afterwards.
    @discardableResult
    public func applySnapshot(_ page: PreparedSnapshot, checkpoint: String?) throws(ClientError) -> ApplyReport {
        try applyPage(changes: [], records: page.records, forms: page.forms, removed: [], checkpoint: checkpoint)
    }

    /// The form `record` is written in when the store does not hold it and its state is `state`.
    func prepare(_ record: RecordRef, _ state: RecordState) throws -> PreparedRecord {
        var projection: [(sql: String, arguments: StatementArguments)] = []
        if let tables = Projection.tables[record.type] {
            for row in Projection.rows(of: record, state) {
                guard let table = tables.first(where: { $0.name == row.table }),
                    let sql = Projection.insertSQL[table.name]
                else { continue }
                projection.append(
                    (sql, StatementArguments(values: try codec.projection.encode(row, table: table)))
                )
            }
        }
        let bytes = try codec.encode(state, of: record)
        return PreparedRecord(
            row: [record.type, record.id, owner(of: record, state), bytes],
            projection: projection,
            conflicts: conflictedFields(of: record, state)
        )
    }

    /// The patient `record` belongs to in `state` (its type's owner field, read as a register), which scopes
    /// and purges select records by.
    func owner(of record: RecordRef, _ state: RecordState) -> String? {
        guard let field = configuration.ownerField[record.type] else { return nil }
        return state[field].resolution(under: .lww).winner?.value.stringValue
    }

    /// The register fields of `record` whose concurrent values await review in `state`, in no order.
    func conflictedFields(of record: RecordRef, _ state: RecordState) -> [String] {
        var fields: [String] = []
        for (field, fieldState) in state.fields {
            guard let policy = configuration.schema.policy(type: record.type, field: field), policy.isRegister,
                fieldState.resolution(under: policy).isConflict
            else { continue }
            fields.append(field)
        }
        return fields
    }
}
