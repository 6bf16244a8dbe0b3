import Foundation
import GRDB
import HTTPTypes
import OutpostCRDT
import OutpostProtocol

/// What a device reports of itself with a push or a pull (headers ``Wire/outboxHeader``,
/// ``Wire/refusedHeader`` and ``Wire/clientHeader``).
public struct DeviceReport: Sendable, Hashable {
    /// Changes waiting in its outbox.
    public var outbox: Int?
    /// Its software and version, e.g. `outpost/0.1.0`.
    public var client: String?
    /// Its changes the server refused, held aside on the device (not those discarded).
    public var refused: Int?

    /// Creates a report.
    public init(outbox: Int? = nil, client: String? = nil, refused: Int? = nil) {
        self.outbox = outbox
        self.client = client
        self.refused = refused
    }
}

/// A device as the replication-health listing shows it.
public struct DeviceEntry: Sendable, Hashable, Codable {
    public var practice: String
    /// The device's replica id.
    public var replica: String
    /// The token it syncs with, its role, scope (`practice`, or site and team ids) and label.
    public var token: String
    public var role: String
    public var scope: String
    public var label: String
    public var firstSeenMillis: UInt64
    public var lastSeenMillis: UInt64
    public var lastPushMillis: UInt64?
    public var lastPullMillis: UInt64?
    /// The feed position it has pulled to.
    public var pulledTo: Int64?
    /// Other devices' changes in its scope's practice after that position: how far behind the feed it is.
    public var behindChanges: Int
    /// The highest of its own change counters the server holds.
    public var acknowledged: Int64
    /// Its outbox and software as it last reported them.
    public var outbox: Int?
    public var client: String?
    /// Its changes the server refused and it holds aside, as it last reported them.
    public var refused: Int? = nil
    /// When an administrator retired it.
    public var retiredAtMillis: UInt64?
    /// When its token was revoked (it can no longer sync until given another token).
    public var tokenRevokedAtMillis: UInt64? = nil
}

extension ServerStore {
    /// Records what a device did and reported, in the request's transaction (a whole-practice pull's in one of
    /// its own: ``recordPull(_:practice:report:now:pulledTo:from:placed:)``). A pull gives the checkpoint it
    /// sent (`pulledTo`) and the one it was asked from (`pulledFrom`), from which the position the device is
    /// known to hold follows (``CompactionPlanner/Device/heldTo``; every expression reads the row as it was).
    static func recordDevice(
        _ replica: ReplicaID,
        practice: String,
        report: DeviceReport,
        now: UInt64,
        pushed: Bool = false,
        pulledTo: Int64? = nil,
        pulledFrom: Int64? = nil,
        db: Database
    ) throws {
        try db.cachedStatement(
            sql: """
                UPDATE device SET lastSeen = ?1,
                    lastPush = CASE WHEN ?2 THEN ?1 ELSE lastPush END,
                    lastPull = CASE WHEN ?3 IS NULL THEN lastPull ELSE ?1 END,
                    pulledTo = COALESCE(?3, pulledTo),
                    heldTo = CASE WHEN ?4 IS NULL THEN heldTo ELSE MIN(COALESCE(pulledFrom, ?4), ?4) END,
                    pulledFrom = COALESCE(?4, pulledFrom),
                    outbox = COALESCE(?5, outbox), client = COALESCE(?6, client), refused = COALESCE(?7, refused)
                WHERE practice = ?8 AND replica = ?9
                """
        ).execute(
            arguments: [
                Int64(now), pushed, pulledTo, pulledFrom, report.outbox, report.client, report.refused, practice,
                replica.rawValue,
            ]
        )
    }

    /// The devices of one practice or of all, most recently seen first.
    public func devices(practice: String? = nil) throws(ServerError) -> [DeviceEntry] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.*, t.role, t.scopeSites, t.scopeTeams, t.label, t.revokedAt AS tokenRevokedAt
                    FROM device d JOIN token t ON t.id = d.token
                    WHERE ? IS NULL OR d.practice = ? ORDER BY d.lastSeen DESC, d.replica
                    """,
                arguments: [practice, practice]
            ).map { row in
                let pulledTo: Int64? = row["pulledTo"]
                let behind =
                    try Int.fetchOne(
                        db.cachedStatement(
                            // A row holds `count` changes up to `seq` (``ChangeRuns``); the first may be in part
                            // at or below the checkpoint.
                            sql: """
                                SELECT COALESCE(SUM(MIN(count, seq - ?2)), 0) FROM change
                                WHERE practice = ?1 AND seq > ?2 AND replica IS NOT ?3
                                """
                        ),
                        arguments: [row["practice"] as String, pulledTo ?? 0, row["replica"] as String]
                    ) ?? 0
                return DeviceEntry(
                    practice: row["practice"],
                    replica: row["replica"],
                    token: row["token"],
                    role: row["role"],
                    scope: AdminRules.scopeText(sites: row["scopeSites"], teams: row["scopeTeams"]),
                    label: row["label"],
                    firstSeenMillis: UInt64(row["firstSeen"] as Int64),
                    lastSeenMillis: UInt64(row["lastSeen"] as Int64),
                    lastPushMillis: (row["lastPush"] as Int64?).map { UInt64($0) },
                    lastPullMillis: (row["lastPull"] as Int64?).map { UInt64($0) },
                    pulledTo: pulledTo,
                    behindChanges: behind,
                    acknowledged: row["acknowledged"],
                    outbox: row["outbox"],
                    client: row["client"],
                    refused: row["refused"],
                    retiredAtMillis: (row["retiredAt"] as Int64?).map { UInt64($0) },
                    tokenRevokedAtMillis: (row["tokenRevokedAt"] as Int64?).map { UInt64($0) }
                )
            }
        }
    }

    /// Retires a device: its replica id may no longer sync (a lost laptop, a device given up), and it stops
    /// counting among the practice's active devices. Its changes stay. Recorded in the audit log.
    ///
    /// - Throws: ``ServerError`` `not_found` for a replica the practice has never seen.
    public func retireDevice(practice: String, replica: String, now: UInt64) throws(ServerError) {
        try write { db in
            try db.execute(
                sql: "UPDATE device SET retiredAt = COALESCE(retiredAt, ?) WHERE practice = ? AND replica = ?",
                arguments: [Int64(now), practice, replica]
            )
            guard db.changesCount == 1 else {
                throw ServerError.noDevice(replica, practice: practice)
            }
            try db.execute(
                sql: "DELETE FROM device_patient WHERE practice = ? AND replica = ?",
                arguments: [practice, replica]
            )
            try Self.audit("device.retire", practice: practice, subject: replica, detail: "", now: now, db: db)
        }
    }

    /// Active devices (not retired) by how long ago they were last seen: within a day, a week, a month, or
    /// longer; for the `outpost_devices` gauge.
    public func deviceStaleness(now: UInt64) throws(ServerError) -> [(bucket: String, count: Int)] {
        try read { db in
            AdminRules.staleness(
                lastSeen: try Int64.fetchAll(db, sql: "SELECT lastSeen FROM device WHERE retiredAt IS NULL"),
                now: now
            )
        }
    }
}
