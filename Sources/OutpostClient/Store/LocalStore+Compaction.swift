import Foundation
import GRDB
import OutpostCRDT
import OutpostModel

/// What ``LocalStore/compactHistory()`` did.
public struct HistoryCompaction: Sendable, Hashable, Codable {
    /// Changes in the log examined, and those dropped.
    public var examined: Int
    public var dropped: Int
    /// Change-log rows emptied (deleted) and rewritten without their dropped changes.
    public var rowsDeleted: Int
    public var rowsRewritten: Int
}

extension LocalStore {
    /// Drops superseded values from this replica's change log by the rule the server compacts by
    /// (``CompactionRule``): a change the server has acknowledged (received from it, or a local change it stored;
    /// never one in the outbox, refused, retried or discarded) whose write is no longer live, outside fields in
    /// conflict and the fields the scorecard dates. A record with a change the server has not stored keeps its
    /// whole history until it has. Record states, the projection and the outbox are untouched:
    /// every list, export and sync reads the same afterwards; `outpost history` and `outpost audit` no longer show
    /// the dropped superseded values. A record's tail (log rows not yet folded into its state) is folded in first.
    /// One transaction.
    @discardableResult
    public func compactHistory() throws(ClientError) -> HistoryCompaction {
        try write(doing: "compact the change log") { db in
            let acked = UInt64(
                max(0, try Int64.fetchOne(db, sql: "SELECT ackedCounter FROM replica WHERE id = 1") ?? 0)
            )
            // Retried changes the server stored are acknowledged (their copies in `retried_change` are what a
            // server restored from a backup is sent again, not the log); those to send again after a restore are not.
            let held = Set(
                try Int64.fetchAll(
                    db,
                    sql: "SELECT counter FROM refused_change UNION SELECT counter FROM retried_change WHERE resend = 1"
                ).map { UInt64(max(0, $0)) }
            )
            // A record with a change the server has not stored (in the outbox, refused, discarded or to send again)
            // keeps its whole history: a discard withdraws its change from the log's other changes.
            var unsettled = Set<RecordRef>()
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT type, id FROM change WHERE isLocal = 1 AND maxCounter > ?
                    UNION SELECT type, id FROM refused_change
                    UNION SELECT type, id FROM retried_change WHERE resend = 1
                    """,
                arguments: [Int64(clamping: acked)]
            ) {
                unsettled.insert(RecordRef(type: row["type"], id: row["id"]))
            }
            var report = HistoryCompaction(examined: 0, dropped: 0, rowsDeleted: 0, rowsRewritten: 0)
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT seq, type, id, isLocal, payload FROM change ORDER BY type, id, seq"
            )
            var current: (record: RecordRef, state: RecordState?, conflicted: Set<String>)?
            var deletions: [Int64] = []
            var rewrites: [(seq: Int64, payload: Data, maxCounter: Int64?)] = []
            while let row = try rows.next() {
                let record = RecordRef(type: row["type"], id: row["id"])
                if unsettled.contains(record) { continue }
                if current?.record != record {
                    let tailStart = try Int64.fetchOne(
                        db,
                        sql: "SELECT tailStart FROM record WHERE type = ? AND id = ?",
                        arguments: [record.type, record.id]
                    )
                    let conflicted = try String.fetchAll(
                        db,
                        sql: "SELECT field FROM conflict WHERE type = ? AND id = ?",
                        arguments: [record.type, record.id]
                    )
                    let state = try loadStateAndTail(record, db: db)?.state
                    if tailStart != nil, let state {
                        // Its tail is folded into the state first, so that every row is history, not state.
                        try db.execute(
                            sql:
                                "UPDATE record SET state = ?, tailStart = NULL, tailBytes = 0 WHERE type = ? AND id = ?",
                            arguments: [try codec.encode(state, of: record), record.type, record.id]
                        )
                    }
                    current = (record, state, Set(conflicted))
                }
                guard let known = current else { continue }
                let seq: Int64 = row["seq"]
                let isLocal: Bool = row["isLocal"]
                let changes = try codec.decodeChanges(row["payload"], of: record)
                report.examined += changes.count
                let kept = changes.filter { change in
                    let acknowledged = !isLocal || (change.id.counter <= acked && !held.contains(change.id.counter))
                    return !CompactionRule.mayDrop(
                        change,
                        acknowledged: acknowledged,
                        state: known.state,
                        conflicted: known.conflicted
                    )
                }
                guard kept.count < changes.count else { continue }
                report.dropped += changes.count - kept.count
                if kept.isEmpty {
                    deletions.append(seq)
                } else {
                    let maxCounter = isLocal ? kept.map(\.id.counter).max().map { Int64(clamping: $0) } : nil
                    rewrites.append((seq, try codec.encode(kept, of: record), maxCounter))
                }
            }
            for seq in deletions {
                try db.cachedStatement(sql: "DELETE FROM change WHERE seq = ?").execute(arguments: [seq])
            }
            for rewrite in rewrites {
                try db.cachedStatement(sql: "UPDATE change SET payload = ?, maxCounter = ? WHERE seq = ?")
                    .execute(arguments: [rewrite.payload, rewrite.maxCounter, rewrite.seq])
            }
            report.rowsDeleted = deletions.count
            report.rowsRewritten = rewrites.count
            return report
        }
    }
}
