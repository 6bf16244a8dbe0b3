import Foundation
import HTTPTypes
import Logging
import OutpostCRDT
import OutpostModel
import OutpostProtocol
import PostgresNIO

/// Coordinated compaction on PostgreSQL: the same decisions as on SQLite (``CompactionPlanner``,
/// ``CompactionRule``), the same tables.
extension PostgresStore: CompactionStorage {
    /// Each practice's feed floor, and what each device last reported of its refused changes.
    static let compactionMigration: [String] = [
        """
        CREATE TABLE compaction (
            practice text PRIMARY KEY REFERENCES practice(id), floor bigint NOT NULL, at bigint NOT NULL,
            dropped bigint NOT NULL DEFAULT 0
        )
        """,
        "ALTER TABLE device ADD COLUMN refused bigint",
    ]

    static func feedFloor(practice: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int64 {
        try await connection.all("SELECT floor FROM compaction WHERE practice = \(practice)", logger).first?
            .decode(Int64.self) ?? 0
    }

    /// Refuses a pull from below the practice's feed floor, inside the pull's transaction.
    static func requireServable(
        since: Int64,
        practice: String,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        let floor = try await feedFloor(practice: practice, connection, logger)
        guard CompactionPlanner.isServable(since: since, floor: floor) else {
            throw ServerError.belowFloor(since, floor: floor, field: "since")
        }
    }

    /// Compacts one practice (``CompactionStorage/compactOne(_:now:horizonMillis:)``) on PostgreSQL.
    public func compactOne(
        _ practice: String,
        now: UInt64,
        horizonMillis: UInt64
    ) async throws(ServerError)
        -> CompactionReport
    {
        var report = try await transaction { connection in
            let head = try await Self.head(practice: practice, connection, logger)
            let current = try await Self.feedFloor(practice: practice, connection, logger)
            var devices: [CompactionPlanner.Device] = []
            for row in try await connection.all(
                """
                SELECT replica, COALESCE(held_to, pulled_to), last_seen, retired_at FROM device
                WHERE practice = \(practice)
                """,
                logger
            ) {
                let (replica, heldTo, lastSeen, retired) = try row.decode((String, Int64?, Int64, Int64?).self)
                devices.append(
                    CompactionPlanner.Device(
                        replica: replica,
                        heldTo: heldTo,
                        lastSeenMillis: UInt64(max(0, lastSeen)),
                        isRetired: retired != nil
                    )
                )
            }
            let floor = CompactionPlanner.floor(
                head: head,
                current: current,
                devices: devices,
                now: now,
                horizonMillis: horizonMillis
            )
            try await connection.run(
                """
                INSERT INTO compaction (practice, floor, at) VALUES (\(practice), \(floor.position), \(Int64(now)))
                ON CONFLICT (practice) DO UPDATE SET floor = GREATEST(compaction.floor, excluded.floor), at = excluded.at
                """,
                logger
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
        let floor = report.floor
        var cursor: (type: String, id: String, seq: Int64) = ("", "", 0)
        while true {
            let start = cursor
            let batch = try await transaction { connection -> (Int, Int, (String, String, Int64)?) in
                let rows = try await connection.all(
                    """
                    SELECT seq, type, id, payload FROM change
                    WHERE practice = \(practice) AND (type, id, seq) > (\(start.type), \(start.id), \(start.seq))
                        AND seq <= \(floor)
                    ORDER BY type, id, seq LIMIT 2000
                    """,
                    logger
                )
                var states: [RecordRef: (state: RecordState?, conflicted: Set<String>)] = [:]
                var drop: [Int64] = []
                var last: (String, String, Int64)?
                for row in rows {
                    let (seq, type, id, payload) = try row.decode((Int64, String, String, ByteBuffer).self)
                    last = (type, id, seq)
                    let ref = RecordRef(type: type, id: id)
                    guard let change = StoredChange.decode(payload.bytes) else {
                        throw ServerError(.internalError, .internalServerError, "a stored change could not be read")
                    }
                    if states[ref] == nil {
                        var state: RecordState?
                        if let bytes = try await connection.all(
                            "SELECT state FROM record WHERE practice = \(practice) AND type = \(type) AND id = \(id)",
                            logger
                        ).first?.decode(ByteBuffer.self) {
                            var reader = BinaryReader(bytes.bytes)
                            state = try reader.readRecordState()
                        }
                        let conflicted = try await connection.all(
                            "SELECT field FROM conflict WHERE practice = \(practice) AND type = \(type) AND id = \(id)",
                            logger
                        ).map { try $0.decode(String.self) }
                        states[ref] = (state, Set(conflicted))
                    }
                    guard let known = states[ref],
                        CompactionRule.mayDrop(
                            change,
                            acknowledged: true,
                            state: known.state,
                            conflicted: known.conflicted
                        )
                    else { continue }
                    drop.append(seq)
                }
                if !drop.isEmpty {
                    try await connection.run(
                        "DELETE FROM change WHERE practice = \(practice) AND seq = ANY(\(drop))",
                        logger
                    )
                }
                return (rows.count, drop.count, last)
            }
            report.examined += batch.0
            report.dropped += batch.1
            guard let last = batch.2 else { break }
            cursor = last
        }
        let finished = report
        try await transaction { connection in
            try await connection.run(
                "UPDATE compaction SET dropped = dropped + \(Int64(finished.dropped)) WHERE practice = \(practice)",
                logger
            )
            try await Self.audit(
                "compact",
                practice: practice,
                subject: nil,
                detail: AdminRules.compactionDetail(finished),
                now: now,
                connection,
                logger
            )
        }
        return report
    }
}
