public import Foundation
import GRDB
import HTTPTypes
public import OutpostCRDT
import OutpostModel
public import OutpostProtocol

/// What a push did, for the response, the log and the metrics.
public struct PushOutcome: Sendable, Hashable {
    /// The response sent to the device.
    public var response: PushResponse
    /// Conflicts opened by this push.
    public var newConflicts: Int
    /// Conflicts this push resolved.
    public var resolvedConflicts: Int
}

/// One page of the changes feed, as stored JSON, ready to send.
public struct FeedPage: Sendable {
    /// Each change's JSON, in feed order.
    public var payloads: [Data]
    /// The feed position after the last change of the page (or the request's, when the page is empty).
    public var checkpoint: Int64
    /// Whether more changes follow at once.
    public var hasMore: Bool
    /// Patients purged after the request's checkpoint: the device removes them.
    public var removed: [String] = []
}

extension ServerStore {
    /// Stores a device's push, all or nothing, and returns what it did.
    ///
    /// Each change is checked against the token (practice, role), the device binding of its replica id,
    /// the server's clock and the care model's rules, in order; the first refusal throws a ``ServerError``
    /// naming the change's index and nothing is stored.
    public func push(
        _ request: PushRequest,
        token: TokenEntry,
        now: UInt64,
        maxClockSkewMillis: UInt64
    ) throws(ServerError) -> PushOutcome {
        let today = CalendarDate(millis: now)
        let encoder = Wire.makeEncoder()
        return try write { db in
            try Self.bindDevice(request.replica, token: token, now: now, db: db)
            var batch = PushBatch(practice: token.practice, db: db)
            batch.written = Set(request.changes.map(\.record))
            if !token.scope.isWholePractice {
                // In scope: patients in the token's scope now, and those this device holds until it is told to
                // purge them, so its pending edits to a patient that just left reach the server first.
                var allowed = try Self.patients(in: token.scope, practice: token.practice, db: db)
                allowed.formUnion(
                    try String.fetchAll(
                        db,
                        sql: """
                            SELECT patient FROM device_patient WHERE practice = ? AND replica = ? AND state = 'in'
                            """,
                        arguments: [token.practice, request.replica.rawValue]
                    )
                )
                batch.patientsInScope = allowed
            }
            var accepted: [(change: Change, payload: Data)] = []
            var duplicates = 0
            for (index, change) in request.changes.enumerated() {
                let payload: Data
                do {
                    payload = try encoder.encode(change)
                } catch {
                    throw ServerError.malformed("change \(index) cannot be encoded", field: "changes")
                }
                guard change.id.replica == request.replica else {
                    throw ServerError(
                        .replicaMismatch,
                        .forbidden,
                        "change \(index) has id \(change.id), not from replica \(request.replica); a push carries "
                            + "only its own replica's changes",
                        index: index
                    )
                }
                // SQLite integers are signed: a larger counter would trap converting, and no replica reaches it.
                guard change.id.counter <= UInt64(Int64.max) else {
                    throw ServerError(
                        .invalidChange,
                        .unprocessableContent,
                        "change \(index) has counter \(change.id.counter); this server stores counters up to "
                            + "\(Int64.max)",
                        field: "id",
                        index: index
                    )
                }
                if let stored = try Data.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT payload FROM change WHERE practice = ? AND replica = ? AND counter = ?"
                    ),
                    arguments: [token.practice, change.id.replica.rawValue, Int64(change.id.counter)]
                ) {
                    guard stored == payload else {
                        throw ServerError(
                            .changeIDReused,
                            .conflict,
                            "change \(change.id) was already pushed with different content; this replica was "
                                + "probably restored from an old copy: make a new replica with 'outpost init'",
                            index: index
                        )
                    }
                    duplicates += 1
                    continue
                }
                if change.clock.millis > now + maxClockSkewMillis {
                    throw ServerError(
                        .clockSkew,
                        .conflict,
                        "change \(change.id) is stamped \(change.clock.millis - now) ms ahead of the server's "
                            + "clock (limit \(maxClockSkewMillis) ms); fix this device's clock, then sync again: "
                            + "pending changes are re-stamped and kept",
                        index: index
                    )
                }
                try batch.check(change, index: index, token: token, today: today)
                try batch.apply(change)
                accepted.append((change, payload))
            }
            // Stored once the whole push is merged, so each change carries its record's owner as of the end of
            // the push: the fields of a new task written before its `patient` field belong to that patient too.
            for (change, payload) in accepted {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO change (practice, replica, counter, type, id, owner, payload)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(
                    arguments: [
                        token.practice, change.id.replica.rawValue, Int64(change.id.counter), change.record.type,
                        change.record.id, batch.owner(of: change.record), payload,
                    ]
                )
            }
            let conflicts = try batch.finish(now: now)
            let maxCounter = request.changes.map(\.id.counter).max() ?? 0
            try db.execute(
                sql: """
                    UPDATE device SET acknowledged = MAX(acknowledged, ?), lastSeen = ? WHERE practice = ? AND replica = ?
                    """,
                arguments: [Int64(maxCounter), Int64(now), token.practice, request.replica.rawValue]
            )
            let acknowledged =
                try Int64.fetchOne(
                    db,
                    sql: "SELECT acknowledged FROM device WHERE practice = ? AND replica = ?",
                    arguments: [token.practice, request.replica.rawValue]
                ) ?? 0
            return PushOutcome(
                response: PushResponse(
                    accepted: accepted.count,
                    duplicates: duplicates,
                    acknowledged: UInt64(acknowledged),
                    serverTimeMillis: now
                ),
                newConflicts: conflicts.opened,
                resolvedConflicts: conflicts.resolved
            )
        }
    }

    /// Binds `replica` to the token on the device's first request (push or scoped pull); refuses a replica id
    /// bound to another token of the practice.
    ///
    /// A replica id moves to another token only by an administrator's act: a token issued as the successor of
    /// the bound one (`outpost-server token issue --successor-of`) takes the replica over on its first request.
    /// Nothing a request says moves it otherwise, so a token cannot borrow another device's replica id to pull
    /// that device's patients or push in its name.
    static func bindDevice(_ replica: ReplicaID, token: TokenEntry, now: UInt64, db: Database) throws {
        if let boundToken = try String.fetchOne(
            db,
            sql: "SELECT token FROM device WHERE practice = ? AND replica = ?",
            arguments: [token.practice, replica.rawValue]
        ) {
            if boundToken == token.id { return }
            guard try isSuccessor(token.id, of: boundToken, db: db) else {
                throw ServerError(
                    .replicaMismatch,
                    .forbidden,
                    "replica \(replica) belongs to another device; each device uses its own replica id (a device "
                        + "given a new token needs one issued with 'outpost-server token issue --successor-of')"
                )
            }
            try db.execute(
                sql: "UPDATE device SET token = ? WHERE practice = ? AND replica = ?",
                arguments: [token.id, token.practice, replica.rawValue]
            )
        } else {
            try db.execute(
                sql: """
                    INSERT INTO device (practice, replica, token, acknowledged, firstSeen, lastSeen)
                    VALUES (?, ?, ?, 0, ?, ?)
                    """,
                arguments: [token.practice, replica.rawValue, token.id, Int64(now), Int64(now)]
            )
        }
    }

    /// Whether `token` descends from `ancestor` through successor tokens.
    static func isSuccessor(_ token: String, of ancestor: String, db: Database) throws -> Bool {
        var current = token
        var seen: Set<String> = []
        while let previous = try String.fetchOne(
            db,
            sql: "SELECT successorOf FROM token WHERE id = ?",
            arguments: [current]
        ), seen.insert(previous).inserted {
            if previous == ancestor { return true }
            current = previous
        }
        return false
    }

    /// The highest feed position of a practice (0 when it has no changes).
    public func feedHead(practice: String) throws(ServerError) -> Int64 {
        try read { db in
            try Self.feedHead(practice: practice, db: db)
        }
    }

    /// The highest feed position of a practice: its last change, or a later purge.
    static func feedHead(practice: String, db: Database) throws -> Int64 {
        max(
            try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM change WHERE practice = ?", arguments: [practice]) ?? 0,
            try purgeHead(practice: practice, db: db)
        )
    }

    /// The practice's changes after `since`, at most `limit`, leaving out those made by `excluding` (the
    /// requesting device holds its own changes already).
    public func pull(
        practice: String,
        since: Int64,
        limit: Int,
        excluding: ReplicaID? = nil
    ) throws(ServerError)
        -> FeedPage
    {
        try read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, payload FROM change WHERE practice = ? AND seq > ? AND replica IS NOT ?
                    ORDER BY seq LIMIT ?
                    """,
                arguments: [practice, since, excluding?.rawValue, limit + 1]
            )
            let page = rows.prefix(limit)
            let hasMore = rows.count > limit
            var checkpoint: Int64 = page.last.map { $0["seq"] } ?? since
            // Caught up: move past any purge, so it is announced once.
            if !hasMore { checkpoint = max(checkpoint, try Self.feedHead(practice: practice, db: db)) }
            return FeedPage(
                payloads: page.map { $0["payload"] },
                checkpoint: checkpoint,
                hasMore: hasMore,
                removed: try Self.purged(practice: practice, since: since, db: db)
            )
        }
    }

    /// One page of the practice's current records after `cursor` (type, id), with the feed position
    /// every page already includes.
    public func snapshot(
        practice: String,
        after cursor: RecordRef?,
        limit: Int,
        visibleTo inScope: Set<String>? = nil
    ) throws(ServerError)
        -> (records: [SnapshotRecord], checkpoint: Int64, next: RecordRef?)
    {
        try read { db in
            let head = try Self.feedHead(practice: practice, db: db)
            // Walk the practice's records in order, reading only ids and owners, until `limit` records visible
            // to the scope (and one more, to know whether a next page exists) are found; then read those
            // records' states. A scoped page is as full as a whole-practice one, and out-of-scope states are
            // never copied out of SQLite.
            let refs = try Row.fetchCursor(
                db,
                sql: """
                    SELECT type, id, owner FROM record
                    WHERE practice = ? AND (type > ? OR (type = ? AND id > ?))
                    ORDER BY type, id
                    """,
                arguments: [practice, cursor?.type ?? "", cursor?.type ?? "", cursor?.id ?? ""]
            )
            var visible: [RecordRef] = []
            while visible.count <= limit, let row = try refs.next() {
                let type: String = row["type"]
                let id: String = row["id"]
                if let inScope, !Self.isVisible(type: type, id: id, owner: row["owner"], inScope: inScope) { continue }
                visible.append(RecordRef(type: type, id: id))
            }
            var records: [SnapshotRecord] = []
            for ref in visible.prefix(limit) {
                guard
                    let state = try Data.fetchOne(
                        db.cachedStatement(sql: "SELECT state FROM record WHERE practice = ? AND type = ? AND id = ?"),
                        arguments: [practice, ref.type, ref.id]
                    )
                else { continue }
                var reader = BinaryReader(Array(state))
                records.append(SnapshotRecord(record: ref, state: try reader.readRecordState()))
            }
            return (records, head, visible.count > limit ? visible[limit - 1] : nil)
        }
    }

    /// The number of open conflicts, across practices or in one.
    public func openConflictCount(practice: String? = nil) throws(ServerError) -> Int {
        try read { db in
            if let practice {
                return try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM conflict WHERE practice = ?",
                    arguments: [practice]
                )
                    ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM conflict") ?? 0
        }
    }
}
