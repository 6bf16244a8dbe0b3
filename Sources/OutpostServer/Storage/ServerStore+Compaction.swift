import Foundation
import GRDB
import HTTPTypes
import OutpostCRDT
import OutpostModel
import OutpostProtocol

/// What one practice's compaction did.
public struct CompactionReport: Sendable, Hashable, Codable {
    /// The practice.
    public var practice: String
    /// The feed floor before and after: a pull from below `floor` is `410 checkpoint_expired`.
    public var previousFloor: Int64
    public var floor: Int64
    /// The feed head when the floor was set.
    public var head: Int64
    /// Active devices whose checkpoint is the floor (they hold it back).
    public var heldBy: [String]
    /// Devices past the horizon (or retired) whose checkpoint fell below the floor: they bootstrap again on their
    /// next sync, keeping their outbox.
    public var expired: [String]
    /// Changes at or below the floor examined, and those dropped (superseded values, ``CompactionRule``).
    public var examined: Int
    public var dropped: Int
}

/// The storage `outpost-server compact` runs on (docs/sync.md, "Compaction"): each backend compacts one
/// practice; which practices, and the refusal of an unknown one, are ``compact(practice:now:horizonMillis:)``'s,
/// once for every backend.
public protocol CompactionStorage: AdminStorage {
    /// Compacts one practice: moves its feed floor as
    /// ``CompactionPlanner/floor(head:current:devices:now:horizonMillis:)`` decides, then drops the changes at or
    /// below it that ``CompactionRule`` allows, in short transactions so that sync goes on meanwhile. Recorded in
    /// the audit log.
    func compactOne(
        _ practice: String,
        now: UInt64,
        horizonMillis: UInt64
    ) async throws(ServerError)
        -> CompactionReport
}

extension CompactionStorage {
    /// Compacts one practice, or every practice (by id), each as ``compactOne(_:now:horizonMillis:)``.
    ///
    /// - Throws: ``ServerError`` `not_found` for a practice that does not exist.
    public func compact(
        practice: String?,
        now: UInt64,
        horizonMillis: UInt64
    ) async throws(ServerError) -> [CompactionReport] {
        let practices = try await practices().map(\.id).filter { practice == nil || $0 == practice }.sorted()
        if let practice, practices.isEmpty {
            throw ServerError(
                .notFound,
                .notFound,
                "no practice \(practice); list them with 'outpost-server practice list'"
            )
        }
        var reports: [CompactionReport] = []
        for practice in practices {
            reports.append(try await compactOne(practice, now: now, horizonMillis: horizonMillis))
        }
        return reports
    }
}

extension ServerStore: CompactionStorage {
    /// The compaction tables: each practice's feed floor, and what each device last reported of its refused
    /// changes (``DeviceReport/refused``).
    static func registerCompactionMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v9-compaction") { db in
            try db.execute(
                sql: """
                    CREATE TABLE compaction (
                        practice TEXT PRIMARY KEY NOT NULL REFERENCES practice(id),
                        floor INTEGER NOT NULL,
                        at INTEGER NOT NULL,
                        dropped INTEGER NOT NULL DEFAULT 0
                    ) WITHOUT ROWID;
                    ALTER TABLE device ADD COLUMN refused INTEGER;
                    """
            )
        }
    }

    /// The feed floor of a practice (0 when it was never compacted).
    static func feedFloor(practice: String, db: Database) throws -> Int64 {
        try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT floor FROM compaction WHERE practice = ?"),
            arguments: [practice]
        ) ?? 0
    }

    /// Refuses a pull from below the practice's feed floor, inside the pull's transaction (so a compaction that
    /// commits between the request's checks and its read cannot make it skip a change).
    static func requireServable(since: Int64, practice: String, db: Database) throws {
        let floor = try feedFloor(practice: practice, db: db)
        guard CompactionPlanner.isServable(since: since, floor: floor) else {
            throw ServerError.belowFloor(since, floor: floor, field: "since")
        }
    }

    /// Compacts one practice (``CompactionStorage/compactOne(_:now:horizonMillis:)``) on SQLite.
    public func compactOne(
        _ practice: String,
        now: UInt64,
        horizonMillis: UInt64
    ) async throws(ServerError)
        -> CompactionReport
    {
        // The floor first, in its own transaction: from its commit on, no pull reads below it.
        var report = try await writeAsync { db in
            let head = try Self.feedHead(practice: practice, db: db)
            let current = try Self.feedFloor(practice: practice, db: db)
            let devices = try Row.fetchAll(
                db,
                sql: """
                    SELECT replica, COALESCE(heldTo, pulledTo) AS heldTo, lastSeen, retiredAt
                    FROM device WHERE practice = ?
                    """,
                arguments: [practice]
            ).map { row in
                CompactionPlanner.Device(
                    replica: row["replica"],
                    heldTo: row["heldTo"],
                    lastSeenMillis: UInt64(max(0, row["lastSeen"] as Int64)),
                    isRetired: (row["retiredAt"] as Int64?) != nil
                )
            }
            let floor = CompactionPlanner.floor(
                head: head,
                current: current,
                devices: devices,
                now: now,
                horizonMillis: horizonMillis
            )
            try db.execute(
                sql: """
                    INSERT INTO compaction (practice, floor, at) VALUES (?, ?, ?)
                    ON CONFLICT (practice) DO UPDATE SET floor = excluded.floor, at = excluded.at
                    """,
                arguments: [practice, floor.position, Int64(now)]
            )
            return CompactionReport(
                practice: practice,
                previousFloor: current,
                floor: floor.position,
                head: head,
                heldBy: floor.heldBy,
                expired: floor.expired,
                examined: 0,
                dropped: 0
            )
        }
        // Then the changes at or below it, a batch per transaction, walked by feed position (the changes are not
        // indexed by record: migration `v10-changes-by-feed`). Whether a change may go depends on its record's
        // state, not on the order of the walk.
        var cursor: Int64 = 0
        let floor = report.floor
        while true {
            let start = cursor
            let batch = try await writeAsync { db -> (examined: Int, dropped: Int, last: Int64?) in
                let rows = try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT seq, type, id, payload FROM change
                            WHERE practice = ? AND seq > ? AND seq <= ?
                            ORDER BY seq LIMIT 2000
                            """
                    ),
                    arguments: [practice, start, floor]
                )
                var states: [RecordRef: (state: RecordState?, conflicted: Set<String>)] = [:]
                var examined = 0
                var dropped = 0
                for row in rows {
                    let ref = RecordRef(type: row["type"], id: row["id"])
                    guard let changes = StoredChange.decodeRun([UInt8](row["payload"] as Data)) else {
                        throw ServerError(.internalError, .internalServerError, "a stored change could not be read")
                    }
                    if states[ref] == nil {
                        var state: RecordState?
                        if let bytes = try Data.fetchOne(
                            db.cachedStatement(
                                sql: "SELECT state FROM record WHERE practice = ? AND type = ? AND id = ?"
                            ),
                            arguments: [practice, ref.type, ref.id]
                        ) {
                            state = try Self.mergedState(Array(bytes), practice: practice, ref: ref, db: db)
                        }
                        let conflicted = try String.fetchAll(
                            db.cachedStatement(
                                sql: "SELECT field FROM conflict WHERE practice = ? AND type = ? AND id = ?"
                            ),
                            arguments: [practice, ref.type, ref.id]
                        )
                        states[ref] = (state, Set(conflicted))
                    }
                    let known = states[ref]
                    let kept = changes.filter { change in
                        guard let known else { return true }
                        return !CompactionRule.mayDrop(
                            change,
                            acknowledged: true,
                            state: known.state,
                            conflicted: known.conflicted
                        )
                    }
                    examined += changes.count
                    dropped += changes.count - kept.count
                    let seq: Int64 = row["seq"]
                    if kept.isEmpty {
                        try db.cachedStatement(sql: "DELETE FROM change WHERE seq = ?").execute(arguments: [seq])
                    } else if kept.count < changes.count {
                        // The row is below the floor: no pull reads its positions again, so it keeps its `seq`
                        // and holds fewer changes. Its `counter` becomes its first kept change's: a device that
                        // pushes a dropped change again (it never had the answer) stores it in a row of its own,
                        // whose first counter must be free.
                        try db.cachedStatement(
                            sql: "UPDATE change SET count = ?, counter = ?, payload = ? WHERE seq = ?"
                        ).execute(arguments: [
                            kept.count, Int64(kept[0].id.counter),
                            Data(StoredChange.encode(kept, of: ref)), seq,
                        ])
                    }
                }
                return (examined, dropped, rows.last.map { $0["seq"] as Int64 })
            }
            report.examined += batch.examined
            report.dropped += batch.dropped
            guard let last = batch.last else { break }
            cursor = last
        }
        let finished = report
        try await writeAsync { db in
            try db.execute(
                sql: "UPDATE compaction SET dropped = dropped + ? WHERE practice = ?",
                arguments: [finished.dropped, practice]
            )
            try Self.audit(
                "compact",
                practice: practice,
                subject: nil,
                detail: AdminRules.compactionDetail(finished),
                now: now,
                db: db
            )
        }
        return report
    }
}

extension AdminRules {
    /// A compaction in words for the audit log: positions and counts, no patient data.
    static func compactionDetail(_ report: CompactionReport) -> String {
        "floor \(report.previousFloor) -> \(report.floor) of head \(report.head); dropped \(report.dropped) of "
            + "\(report.examined) changes at or below it; expired devices: "
            + (report.expired.isEmpty ? "none" : report.expired.joined(separator: ","))
    }
}

extension ServerError {
    /// A pull or snapshot cursor below the practice's feed floor: `410 checkpoint_expired`.
    static func belowFloor(_ position: Int64, floor: Int64, field: String) -> ServerError {
        ServerError(
            .checkpointExpired,
            .gone,
            "checkpoint \(position) is below this server's compacted feed (floor \(floor)); bootstrap again from "
                + "/v1/snapshot, keeping unpushed changes",
            field: field
        )
    }
}
