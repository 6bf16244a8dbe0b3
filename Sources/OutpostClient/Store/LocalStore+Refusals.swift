import Foundation
import GRDB
public import OutpostCRDT
public import OutpostProtocol

/// A local change the server refused on its own (protocol/README.md, "Per-change refusals"), held aside so the
/// rest of the outbox flows: never sent again until someone retries it, never lost until someone discards it.
public struct RefusedOutboxChange: Sendable, Hashable {
    /// What is being done with it.
    public enum State: String, Sendable, Hashable {
        /// Held aside: the server refused it.
        case refused
        /// Sent again with the next push.
        case retry
        /// Never sent again, on purpose; kept with the reason.
        case discarded
    }

    /// The change, as made on this device.
    public var change: Change
    /// The server's reason, for programs: an error code (`out_of_scope`, `forbidden`, `invalid_change`, ...).
    public var code: String
    /// The server's reason, for people: one line.
    public var message: String
    /// The field at fault, when the server named one.
    public var field: String?
    /// When the server last refused it (this device's clock, milliseconds since 1970).
    public var refusedAtMillis: UInt64
    /// How many pushes it was refused in.
    public var refusals: Int
    /// What is being done with it.
    public var state: State
    /// Why it was discarded.
    public var discardReason: String?
    /// Who discarded it: a person id, or `replica:<id>`.
    public var discardedBy: String?
    /// When it was discarded.
    public var discardedAtMillis: UInt64?

    /// The change's id.
    public var id: ChangeID { change.id }
}

extension LocalStore {
    /// The changes the server refused, by counter: those held aside or being retried, and, with
    /// `includingDiscarded`, those discarded too.
    public func refusedChanges(includingDiscarded: Bool = false) throws(ClientError) -> [RefusedOutboxChange] {
        try read(doing: "read the refused changes") { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM refused_change \(includingDiscarded ? "" : "WHERE state <> 'discarded'") "
                    + "ORDER BY counter"
            ).map { try refusal(from: $0) }
        }
    }

    /// The number of refused changes held aside or being retried (not those discarded).
    public func refusedCount() throws(ClientError) -> Int {
        try read(doing: "count the refused changes") { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM refused_change WHERE state <> 'discarded'") ?? 0
        }
    }

    /// One refused change, discarded or not.
    ///
    /// - Throws: ``ClientError`` `unknownRecord` when this replica holds no refused change `id`.
    public func refusedChange(_ id: ChangeID) throws(ClientError) -> RefusedOutboxChange {
        let found = try read(doing: "read a refused change") { db in
            try refusedRow(id, db: db).map { try refusal(from: $0) }
        }
        guard let found else { throw unknownRefusal(id) }
        return found
    }

    /// Marks a refused change to be sent again with the next push (once its cause is fixed: the token's scope
    /// widened, the model updated). A change already being retried stays so.
    ///
    /// - Throws: ``ClientError`` `unknownRecord` for an id that is not a refused change of this replica, and
    ///   `invalidEdit` for a discarded one (a discard is final).
    public func retryRefused(_ id: ChangeID) throws(ClientError) {
        try write(doing: "mark a refused change for retry") { db in
            guard let row = try refusedRow(id, db: db) else { throw unknownRefusal(id) }
            guard row["state"] as String != RefusedOutboxChange.State.discarded.rawValue else {
                throw ClientError(
                    code: .invalidEdit,
                    message: "refused change \(id) was discarded; a discarded change is not sent again"
                )
            }
            try db.execute(
                sql: "UPDATE refused_change SET state = 'retry' WHERE counter = ?",
                arguments: [Int64(id.counter)]
            )
        }
    }

    /// Marks every refused change held aside to be sent again with the next push; returns how many.
    @discardableResult
    public func retryAllRefused() throws(ClientError) -> Int {
        try write(doing: "mark the refused changes for retry") { db in
            try db.execute(sql: "UPDATE refused_change SET state = 'retry' WHERE state = 'refused'")
            return db.changesCount
        }
    }

    /// Gives up a refused change for good: it is never sent again. The row stays, with `reason`, who discarded
    /// it (the replica's person, else `replica:<id>`) and when, so the discard is on record
    /// (``refusedChanges(includingDiscarded:)``). In the same transaction the change is withdrawn from this
    /// device (``withdraw(_:db:)``): its record reads as on the server and the other devices, which never see it.
    /// Returns whether the next sync bootstraps again to bring back values the change replaced that this device
    /// holds only from a snapshot.
    ///
    /// - Throws: ``ClientError`` `invalidEdit` when `reason` is blank or the change was already discarded,
    ///   `unknownRecord` for an id that is not a refused change of this replica.
    @discardableResult
    public func discardRefused(_ id: ChangeID, reason: String) throws(ClientError) -> Bool {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else {
            throw ClientError(
                code: .invalidEdit,
                message: "discarding refused change \(id) needs a reason (why it may be lost); give one"
            )
        }
        let by = try setting("person") ?? "replica:\(replicaID)"
        let now = try now()
        return try write(doing: "discard a refused change") { db in
            guard let row = try refusedRow(id, db: db) else { throw unknownRefusal(id) }
            guard row["state"] as String != RefusedOutboxChange.State.discarded.rawValue else {
                throw ClientError(code: .invalidEdit, message: "refused change \(id) was already discarded")
            }
            try db.execute(
                sql: """
                    UPDATE refused_change SET state = 'discarded', discardReason = ?, discardedBy = ?, discardedAt = ?
                    WHERE counter = ?
                    """,
                arguments: [reason, by, Int64(now), Int64(id.counter)]
            )
            return try withdraw(try refusal(from: row).change, db: db)
        }
    }

    /// The changes to send at the head of the next push, in counter order: the refused changes marked for retry,
    /// and the retried changes the server stored that a server restored from a backup lacks
    /// (``adoptServerEpoch(_:serverHolds:)``), those at or below the acknowledged counter; those above it are sent
    /// in their place in the outbox (``pendingChanges(limit:)``), so that a push's counters always increase.
    func retryingChanges() throws(ClientError) -> [Change] {
        try read(doing: "read the changes to retry") { db in
            let acked = try Int64.fetchOne(db, sql: "SELECT ackedCounter FROM replica WHERE id = 1") ?? 0
            return try copiesToSend(db: db).filter { $0.id.counter <= UInt64(max(0, acked)) }
        }
    }

    /// How many changes ``retryingChanges()`` holds, counted without reading them: what a push's progress adds to
    /// the outbox it sends after them (``SyncProgress/toPush``).
    func retryingCount() throws(ClientError) -> Int {
        try read(doing: "count the changes to retry") { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT (SELECT count(*) FROM refused_change WHERE state = 'retry' AND counter <= r.ackedCounter)
                        + (SELECT count(*) FROM retried_change WHERE resend = 1 AND counter <= r.ackedCounter)
                    FROM replica r WHERE r.id = 1
                    """
            ) ?? 0
        }
    }

    /// Every change sent from its own copy rather than from the change log, in counter order: the refused changes
    /// marked for retry, and the retried changes to send again after a restore.
    func copiesToSend(db: Database) throws -> [Change] {
        var changes = try Row.fetchAll(
            db,
            sql: "SELECT * FROM refused_change WHERE state = 'retry' ORDER BY counter"
        ).map { try refusal(from: $0).change }
        for row in try Row.fetchAll(db, sql: "SELECT * FROM retried_change WHERE resend = 1 ORDER BY counter") {
            changes.append(try change(in: row, kind: "retried"))
        }
        return changes.sorted { $0.id.counter < $1.id.counter }
    }

    /// Records a push's answer in one transaction: the changes it refused are held aside (a retried one that is
    /// refused again is held again, with the new reason), retried changes it accepted are no longer held (a copy
    /// is kept in `retried_change`, never shown as refused, so that a server restored from an older backup is
    /// sent them again: ``adoptServerEpoch(_:serverHolds:)``), and the acknowledgement moves past every pushed
    /// change, stored or held. Returns how many were refused.
    ///
    /// `pushed` are the changes sent; the caller has checked that the server holds every one it did not refuse.
    /// The acknowledgement moves at most to the last of them.
    @discardableResult
    public func recordPush(_ pushed: [Change], response: PushResponse) throws(ClientError) -> Int {
        let now = try now()
        // Touches no record (the refused and retried tables, the acknowledged counter): a pull page read ahead
        // beside the push is still as read.
        return try writeTouching(doing: "record the server's answer to a push") { db in
            // A first push is hundreds of batches of thousands of changes with nothing refused: no table of them.
            let byID =
                response.refused.isEmpty
                ? [:] : Dictionary(pushed.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            var refusedIDs = Set<ChangeID>()
            for refusal in response.refused {
                guard let change = byID[refusal.id] else { continue }
                refusedIDs.insert(change.id)
                try db.execute(
                    sql: """
                        INSERT INTO refused_change
                            (counter, type, id, payload, code, message, field, refusedAt, state, patient)
                        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'refused',
                            (SELECT patient FROM retried_change WHERE counter = ?1))
                        ON CONFLICT (counter) DO UPDATE SET code = excluded.code, message = excluded.message,
                            field = excluded.field, refusedAt = excluded.refusedAt, refusals = refusals + 1,
                            state = 'refused', patient = coalesce(excluded.patient, patient)
                        """,
                    arguments: [
                        Int64(change.id.counter), change.record.type, change.record.id,
                        try codec.encode([change], of: change.record), refusal.code, refusal.message, refusal.field,
                        Int64(now),
                    ]
                )
                // Held aside again: a retried change sent again after a restore is a refused one once more.
                try db.execute(
                    sql: "DELETE FROM retried_change WHERE counter = ?",
                    arguments: [Int64(change.id.counter)]
                )
            }
            // Retried changes now stored leave the table for `retried_change`; those sent again after a restore
            // are held by the server again. One read per push, not a statement per pushed change: a first push of
            // a whole practice is hundreds of batches of a thousand, with nothing to retry.
            let retrying = try Int64.fetchAll(db, sql: "SELECT counter FROM refused_change WHERE state = 'retry'")
            let resending = try Int64.fetchAll(db, sql: "SELECT counter FROM retried_change WHERE resend = 1")
            if !retrying.isEmpty || !resending.isEmpty {
                let stored = Set(pushed.filter { !refusedIDs.contains($0.id) }.map { Int64(clamping: $0.id.counter) })
                for counter in retrying where stored.contains(counter) {
                    try db.execute(
                        sql: """
                            INSERT OR REPLACE INTO retried_change (counter, type, id, payload, patient)
                            SELECT counter, type, id, payload, patient FROM refused_change WHERE counter = ?
                            """,
                        arguments: [counter]
                    )
                    try db.execute(sql: "DELETE FROM refused_change WHERE counter = ?", arguments: [counter])
                }
                for counter in resending where stored.contains(counter) {
                    try db.execute(sql: "UPDATE retried_change SET resend = 0 WHERE counter = ?", arguments: [counter])
                }
            }
            // The pushed changes are the oldest of the outbox: each is now stored or held aside. Never past the
            // last one pushed: the server acknowledges the highest counter it holds, which after an answer never
            // recorded (a sync killed while the next batch was stored) can lie past a change of this outbox it
            // refused then and has not judged again: that change is sent again, not dropped.
            let pushedTop = pushed.lazy.map(\.id.counter).max() ?? 0
            let top = min(max(response.acknowledged, refusedIDs.map(\.counter).max() ?? 0), pushedTop)
            try db.execute(
                sql: "UPDATE replica SET ackedCounter = max(ackedCounter, ?) WHERE id = 1",
                arguments: [Int64(clamping: top)]
            )
            return (refusedIDs.count, [])
        }
    }

    private func refusedRow(_ id: ChangeID, db: Database) throws -> Row? {
        guard id.replica == replicaID, id.counter <= UInt64(Int64.max) else { return nil }
        return try Row.fetchOne(
            db,
            sql: "SELECT * FROM refused_change WHERE counter = ?",
            arguments: [Int64(id.counter)]
        )
    }

    private func refusal(from row: Row) throws -> RefusedOutboxChange {
        RefusedOutboxChange(
            change: try change(in: row, kind: "refused"),
            code: row["code"],
            message: row["message"],
            field: row["field"],
            refusedAtMillis: UInt64(row["refusedAt"] as Int64),
            refusals: row["refusals"],
            state: RefusedOutboxChange.State(rawValue: row["state"]) ?? .refused,
            discardReason: row["discardReason"],
            discardedBy: row["discardedBy"],
            discardedAtMillis: (row["discardedAt"] as Int64?).map { UInt64($0) }
        )
    }

    /// The change a row of `refused_change` or `retried_change` keeps (`kind` names it in the error).
    private func change(in row: Row, kind: String) throws -> Change {
        let record = RecordRef(type: row["type"], id: row["id"])
        let counter = UInt64(row["counter"] as Int64)
        guard
            let change = try codec.decodeChanges(row["payload"], of: record).first(where: {
                $0.id.counter == counter
            })
        else {
            throw ClientError(
                code: .storeCorrupt,
                message: "\(kind) change \(replicaID)/\(counter) does not decode; run 'outpost doctor'"
            )
        }
        return change
    }

    private func unknownRefusal(_ id: ChangeID) -> ClientError {
        ClientError(
            code: .unknownRecord,
            message: "\(id) is not a refused change of this replica; 'outpost outbox list' shows them"
        )
    }
}
