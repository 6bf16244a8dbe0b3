import Foundation
import GRDB
import OutpostCRDT

extension LocalStore {
    /// Withdraws a discarded change from this replica, in the discard's transaction: its record reads as if the
    /// change had never been made, as on the server and every other device, which never saw it.
    ///
    /// The merge state is a function of the set of changes seen, so the state without the change is computed, not
    /// guessed: its field keeps its other live writes and superseded ids,
    /// loses the change's own write, and the writes the change replaced are live again unless another known
    /// change replaces them too. Their values come from the change log. A record that this replica received as
    /// a snapshot (its history starts there) may hold values the log lacks: then the replica also forgets its
    /// checkpoint, so that its next sync bootstraps again and the server's copy of the record, merged in, brings
    /// them back (the outbox is kept, as on every bootstrap). Returns whether it did.
    func withdraw(_ discarded: Change, db: Database) throws -> Bool {
        let record = discarded.record
        let transaction = try StoreTransaction(db: db, store: self)
        let current = try transaction.state(of: record)
        // The change log stays append-only (the audit shows a discarded change, marked so); its discarded changes
        // are left out of what it explains.
        let discardedIDs = Set(
            try Int64.fetchAll(db, sql: "SELECT counter FROM refused_change WHERE state = 'discarded'").map {
                ChangeID(replica: replicaID, counter: UInt64(max(0, $0)))
            }
        ).union([discarded.id])
        var fromLog = RecordState()
        for payload in try Data.fetchAll(
            db,
            sql: "SELECT payload FROM change WHERE type = ? AND id = ? ORDER BY seq",
            arguments: [record.type, record.id]
        ) {
            for change in try codec.decodeChanges(payload, of: record) where !discardedIDs.contains(change.id) {
                fromLog.apply(change)
            }
        }
        guard !current.isEmpty else { return false }
        var explained = fromLog
        explained.apply(discarded)
        let field = current[discarded.field]
        let replaced = Set(discarded.replaces)
        var withdrawn =
            FieldState(
                live: field.live.filter { $0.id != discarded.id },
                superseded: field.superseded.filter { !replaced.contains($0) }
            ) ?? FieldState()
        withdrawn.merge(fromLog[discarded.field])
        var fields = current.fields
        fields[discarded.field] = withdrawn.isEmpty ? nil : withdrawn
        try transaction.replace(record, with: RecordState(fields: fields))
        try transaction.finish(now: transaction.now)
        // A write the change replaced that nothing else in the log replaces must come back, from the log; when the
        // log lacks it (or lacks part of the record), the server's copy must bring it.
        let logged = fromLog[discarded.field]
        let missing = discarded.replaces.contains { id in
            !logged.superseded.contains(id) && !logged.liveIDs.contains(id)
        }
        guard missing || explained != current else { return false }
        try db.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1")
        return true
    }
}
