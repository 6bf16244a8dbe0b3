import Foundation
import Logging
import NIOCore
import OutpostCRDT
import OutpostModel
public import OutpostProtocol
import PostgresNIO

/// The PostgreSQL backend of the administration commands; the rules are ``AdminRules``'.
extension PostgresStore: AdminStorage {
    static let tokenColumns =
        "id, practice, role, scope_sites, scope_teams, label, created_at, expires_at, revoked_at, person, successor_of"

    static func tokenEntry(_ row: PostgresRow) throws -> TokenEntry {
        let (id, practice, role, sites, teams, label, created, expires, revoked, person, successorOf) = try row.decode(
            (String, String, String, String, String, String, Int64, Int64?, Int64?, String?, String?).self
        )
        func ids(_ text: String) -> [String] { text.split(separator: ",").map(String.init) }
        return TokenEntry(
            id: id,
            practice: practice,
            role: Role(rawValue: role) ?? .clinician,
            scope: Scope(sites: ids(sites), teams: ids(teams)),
            label: label,
            createdAtMillis: UInt64(max(0, created)),
            expiresAtMillis: expires.map { UInt64(max(0, $0)) },
            revokedAtMillis: revoked.map { UInt64(max(0, $0)) },
            person: person,
            successorOf: successorOf
        )
    }

    /// Appends to the audit log, in the transaction of the act it records.
    static func audit(
        _ action: String,
        practice: String?,
        subject: String?,
        detail: String,
        now: UInt64,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        try await connection.run(
            """
            INSERT INTO audit (at, actor, action, practice, subject, detail)
            VALUES (\(Int64(now)), \(AdminRules.currentActor), \(action), \(practice), \(subject), \(detail))
            """,
            logger
        )
    }

    public func addPractice(
        name: String,
        now: UInt64,
        generator: inout some RandomNumberGenerator
    ) async throws(ServerError) -> PracticeEntry {
        let entry = try AdminRules.makePractice(name: name, now: now, generator: &generator)
        try await transaction { connection in try await Self.insertPractice(entry, now: now, connection, logger) }
        return entry
    }

    public func addFirstPractice(
        name: String,
        now: UInt64,
        generator: inout some RandomNumberGenerator
    ) async throws(ServerError) -> PracticeEntry? {
        let entry = try AdminRules.makePractice(name: name, now: now, generator: &generator)
        return try await transaction { connection in
            // Serializes the servers starting together on an empty database until this transaction ends; READ
            // COMMITTED's next statement then sees a practice another one committed.
            try await connection.run("SELECT pg_advisory_xact_lock(\(Self.firstPracticeLock))", logger)
            guard try await connection.run("SELECT 1 FROM practice LIMIT 1", logger) == 0 else { return nil }
            try await Self.insertPractice(entry, now: now, connection, logger)
            return entry
        }
    }

    /// The advisory lock key of ``addFirstPractice(name:now:generator:)`` (beside the migrations' 7465721001).
    static let firstPracticeLock: Int64 = 7_465_721_002

    /// Inserts `entry` with its audit entry.
    static func insertPractice(
        _ entry: PracticeEntry,
        now: UInt64,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        try await connection.run(
            "INSERT INTO practice (id, name, created_at) VALUES (\(entry.id), \(entry.name), \(Int64(now)))",
            logger
        )
        try await audit(
            "practice.add",
            practice: entry.id,
            subject: nil,
            detail: "name \"\(entry.name)\"",
            now: now,
            connection,
            logger
        )
    }

    public func practices() async throws(ServerError) -> [PracticeEntry] {
        try await transaction { connection in
            try await connection.all("SELECT id, name, created_at FROM practice ORDER BY created_at, id", logger).map {
                let (id, name, created) = try $0.decode((String, String, Int64).self)
                return PracticeEntry(id: id, name: name, createdAtMillis: UInt64(max(0, created)))
            }
        }
    }

    /// Inserts a token drafted as `draft` with a fresh secret.
    static func insertToken(
        _ draft: TokenEntry,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> (secret: TokenSecret, entry: TokenEntry) {
        guard try await connection.run("SELECT 1 FROM practice WHERE id = \(draft.practice)", logger) == 1 else {
            throw ServerError.noPractice(draft.practice)
        }
        if let person = draft.person {
            guard RecordType.person.isValidID(person),
                try await connection.run(
                    """
                    SELECT 1 FROM record WHERE practice = \(draft.practice) AND type = 'person' AND id = \(person)
                    """,
                    logger
                ) == 1
            else { throw ServerError.notAPerson(person, practice: draft.practice) }
        }
        for (id, type) in draft.scope.namedRecords {
            guard
                try await connection.run(
                    """
                    SELECT 1 FROM record WHERE practice = \(draft.practice) AND type = \(type.rawValue) AND id = \(id)
                    """,
                    logger
                ) == 1
            else { throw ServerError.notInPractice(id, type, practice: draft.practice) }
        }
        let secret = TokenSecret.make()
        var entry = draft
        entry.id = secret.id
        try await connection.run(
            """
            INSERT INTO token (id, hash, practice, role, scope_sites, scope_teams, label, created_at, expires_at,
                               person, successor_of)
            VALUES (\(entry.id), \(secret.hash), \(entry.practice), \(entry.role.rawValue),
                    \(entry.scope.sites.joined(separator: ",")), \(entry.scope.teams.joined(separator: ",")),
                    \(entry.label), \(Int64(entry.createdAtMillis)), \(entry.expiresAtMillis.map { Int64($0) }),
                    \(entry.person), \(entry.successorOf))
            """,
            logger
        )
        return (secret, entry)
    }

    /// Token `id`, or `not_found`.
    static func token(id: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> TokenEntry {
        guard
            let row = try await connection.all(
                "SELECT \(unescaped: tokenColumns) FROM token WHERE id = \(id)",
                logger
            ).first
        else { throw ServerError.noToken(id) }
        return try tokenEntry(row)
    }

    public func issueToken(
        practice: String,
        role: Role,
        scope: Scope,
        label: String,
        expiresAtMillis: UInt64?,
        person: String?,
        now: UInt64
    ) async throws(ServerError) -> (secret: TokenSecret, entry: TokenEntry) {
        let draft = AdminRules.draftToken(
            practice: practice,
            role: role,
            scope: scope,
            label: label,
            expiresAtMillis: expiresAtMillis,
            person: person,
            now: now
        )
        return try await transaction { connection in
            let issued = try await Self.insertToken(draft, connection, logger)
            try await Self.audit(
                "token.issue",
                practice: practice,
                subject: issued.entry.id,
                detail: AdminRules.describe(issued.entry),
                now: now,
                connection,
                logger
            )
            return issued
        }
    }

    public func issueSuccessor(
        of id: String,
        label: String?,
        expiresAtMillis: UInt64?,
        graceMillis: UInt64?,
        now: UInt64
    ) async throws(ServerError) -> (secret: TokenSecret, entry: TokenEntry) {
        try await transaction { connection in
            // The predecessor's row locked: two rotations at once take turns, and the second sees the first's successor.
            try await connection.run("SELECT 1 FROM token WHERE id = \(id) FOR UPDATE", logger)
            let previous = try await Self.token(id: id, connection, logger)
            var successors: [TokenEntry] = []
            for row in try await connection.all("SELECT id FROM token WHERE successor_of = \(id)", logger) {
                successors.append(try await Self.token(id: try row.decode(String.self), connection, logger))
            }
            try AdminRules.checkNoSuccessor(of: previous, among: successors, now: now)
            let entry = AdminRules.successor(of: previous, label: label, expiresAtMillis: expiresAtMillis, now: now)
            if let graceMillis {
                let until = try AdminRules.graceEnd(of: previous, graceMillis: graceMillis, now: now)
                try await connection.run("UPDATE token SET expires_at = \(Int64(until)) WHERE id = \(id)", logger)
            } else {
                try await connection.run(
                    "UPDATE token SET revoked_at = COALESCE(revoked_at, \(Int64(now))) WHERE id = \(id)",
                    logger
                )
            }
            let issued = try await Self.insertToken(entry, connection, logger)
            let (action, detail) = AdminRules.successorAudit(issued.entry, previous: id, graceMillis: graceMillis)
            try await Self.audit(
                action,
                practice: entry.practice,
                subject: issued.entry.id,
                detail: detail,
                now: now,
                connection,
                logger
            )
            return issued
        }
    }

    public func tokens(practice: String?) async throws(ServerError) -> [TokenEntry] {
        try await transaction { connection in
            try await connection.all(
                """
                SELECT \(unescaped: Self.tokenColumns) FROM token WHERE \(practice)::text IS NULL OR practice = \(practice)
                ORDER BY created_at
                """,
                logger
            ).map(Self.tokenEntry)
        }
    }

    public func revokeToken(id: String, now: UInt64) async throws(ServerError) -> TokenEntry {
        try await transaction { connection in
            // Revoked already (by another command too, concurrently): nothing changes, and nothing more is audited.
            let revoked = try await connection.run(
                "UPDATE token SET revoked_at = \(Int64(now)) WHERE id = \(id) AND revoked_at IS NULL RETURNING 1",
                logger
            )
            let entry = try await Self.token(id: id, connection, logger)
            guard revoked == 1 else { return entry }
            try await Self.audit(
                "token.revoke",
                practice: entry.practice,
                subject: id,
                detail: "",
                now: now,
                connection,
                logger
            )
            return entry
        }
    }

    public func conflicts(practice: String, id: String?) async throws(ServerError) -> [ServerConflict] {
        try await transaction(.repeatableRead) { connection in
            var result: [ServerConflict] = []
            for row in try await connection.all(
                """
                SELECT c.type, c.id, c.field, c.detected_at, r.state FROM conflict c
                JOIN record r ON r.practice = c.practice AND r.type = c.type AND r.id = c.id
                WHERE c.practice = \(practice) ORDER BY c.type, c.id, c.field
                """,
                logger
            ) {
                let (type, recordID, field, detectedAt, state) = try row.decode(
                    (String, String, String, Int64, ByteBuffer).self
                )
                if let id, id != "\(recordID).\(field)" { continue }
                if let conflict = try AdminRules.conflict(
                    practice: practice,
                    record: RecordRef(type: type, id: recordID),
                    field: field,
                    state: state.bytes,
                    detectedAt: detectedAt
                ) {
                    result.append(conflict)
                }
            }
            return result
        }
    }

    public func purge(
        practice: String,
        patient: String,
        reason: String,
        now: UInt64
    ) async throws(ServerError) -> PurgeEntry {
        try await purge(practice: practice, patient: patient, reason: reason, now: now, requireHeld: true)
    }

    public func purgeAgain(_ purge: PurgeEntry, now: UInt64) async throws(ServerError) {
        _ = try await self.purge(
            practice: purge.practice,
            patient: purge.patient,
            reason: purge.reason,
            now: now,
            requireHeld: false
        )
    }

    /// A purge; without `requireHeld`, of a patient the store may not hold (``purgeAgain(_:now:)``): its id is kept
    /// as erased and the purge recorded all the same.
    private func purge(
        practice: String,
        patient: String,
        reason: String,
        now: UInt64,
        requireHeld: Bool
    ) async throws(ServerError) -> PurgeEntry {
        let trimmed = try AdminRules.purgeReason(reason)
        return try await transaction { connection in
            // A new feed position, past every checkpoint ever given out, taken under the feed lock like a push's.
            let position = try await Self.lockFeed(practice: practice, connection, logger) + 1
            let refs = try await connection.all(
                """
                SELECT type, id FROM record
                WHERE practice = \(practice) AND ((type = 'patient' AND id = \(patient)) OR owner = \(patient))
                """,
                logger
            ).map { try $0.decode((String, String).self) }
            let held = refs.contains { $0.0 == "patient" && $0.1 == patient }
            guard held || !requireHeld else {
                throw ServerError.noPatient(patient, practice: practice)
            }
            for (type, id) in refs {
                _ = try await Self.erase(RecordRef(type: type, id: id), practice: practice, connection, logger)
            }
            // A patient not held is erased by id alone: a device pushing its records again is not stored.
            if !held {
                _ = try await Self.erase(
                    RecordRef(type: RecordType.patient.rawValue, id: patient),
                    practice: practice,
                    connection,
                    logger
                )
            }
            for table in ["patient_scope", "patient_site", "device_patient"] {
                try await connection.run(
                    "DELETE FROM \(unescaped: table) WHERE practice = \(practice) AND patient = \(patient)",
                    logger
                )
            }
            try await connection.run("UPDATE practice SET head = \(position) WHERE id = \(practice)", logger)
            try await connection.run(
                """
                INSERT INTO purge (practice, patient, position, reason, records, at)
                VALUES (\(practice), \(patient), \(position), \(trimmed), \(Int64(refs.count)), \(Int64(now)))
                ON CONFLICT (practice, patient) DO UPDATE SET position = excluded.position, reason = excluded.reason,
                    records = excluded.records, at = excluded.at
                """,
                logger
            )
            try await Self.audit(
                "purge",
                practice: practice,
                subject: patient,
                detail: "\(refs.count) records erased",
                now: now,
                connection,
                logger
            )
            return PurgeEntry(practice: practice, patient: patient, reason: trimmed, records: refs.count, atMillis: now)
        }
    }

    /// What a device must remove for the purges after feed position `since`: the patients purged, and the records a
    /// push's erasure gave them, which a device may hold without an owner (``ServerStore/purged(practice:since:db:)``).
    /// Sorted; one round trip.
    static func purged(
        practice: String,
        since: Int64,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> [String] {
        try await connection.all(
            """
            SELECT patient FROM purge WHERE practice = \(practice) AND position > \(since)
            UNION ALL
            SELECT e.id FROM purge p JOIN erased e ON e.practice = p.practice AND e.patient = p.patient
            WHERE p.practice = \(practice) AND p.position > \(since)
            """,
            logger
        ).map { try $0.decode(String.self) }.sorted()
    }

    /// Erases one record the practice holds, or held (see ``ServerStore/erase(_:practice:db:)``): its id kept (ids
    /// only), its row, changes and conflicts deleted. Returns whether the store held anything of it (change rows
    /// or its row), which devices may have been sent.
    static func erase(
        _ ref: RecordRef,
        practice: String,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> Bool {
        try await connection.run(
            "INSERT INTO erased (practice, type, id) VALUES (\(practice), \(ref.type), \(ref.id)) ON CONFLICT DO NOTHING",
            logger
        )
        var held = false
        for table in ["change", "conflict", "record"] {
            // `run` counts the rows returned.
            let deleted = try await connection.run(
                """
                DELETE FROM \(unescaped: table) WHERE practice = \(practice) AND type = \(ref.type) AND id = \(ref.id)
                RETURNING 1
                """,
                logger
            )
            if table != "conflict" && deleted > 0 { held = true }
        }
        return held
    }

    public func purges(practice: String) async throws(ServerError) -> [PurgeEntry] {
        try await transaction { connection in
            try await connection.all(
                "SELECT patient, reason, records, at FROM purge WHERE practice = \(practice) ORDER BY at, patient",
                logger
            ).map {
                let (patient, reason, records, at) = try $0.decode((String, String, Int64, Int64).self)
                return PurgeEntry(
                    practice: practice,
                    patient: patient,
                    reason: reason,
                    records: Int(records),
                    atMillis: UInt64(max(0, at))
                )
            }
        }
    }

    public func devices(practice: String?) async throws(ServerError) -> [DeviceEntry] {
        try await transaction(.repeatableRead) { connection in
            var result: [DeviceEntry] = []
            for row in try await connection.all(
                """
                SELECT d.practice, d.replica, d.token, t.role, t.scope_sites, t.scope_teams, t.label, d.first_seen,
                    d.last_seen, d.last_push, d.last_pull, d.pulled_to, d.acknowledged, d.outbox, d.client,
                    d.retired_at, d.refused, t.revoked_at,
                    (SELECT COUNT(*) FROM change c WHERE c.practice = d.practice AND c.seq > COALESCE(d.pulled_to, 0)
                        AND c.replica <> d.replica)
                FROM device d JOIN token t ON t.id = d.token
                WHERE \(practice)::text IS NULL OR d.practice = \(practice) ORDER BY d.last_seen DESC, d.replica
                """,
                logger
            ) {
                let (
                    practice, replica, token, role, sites, teams, label, firstSeen, lastSeen, lastPush, lastPull,
                    pulledTo, acknowledged, outbox, client, retired, refused, revoked, behind
                ) = try row.decode(
                    (
                        String, String, String, String, String, String, String, Int64, Int64, Int64?, Int64?, Int64?,
                        Int64, Int64?, String?, Int64?, Int64?, Int64?, Int64
                    ).self
                )
                result.append(
                    DeviceEntry(
                        practice: practice,
                        replica: replica,
                        token: token,
                        role: role,
                        scope: AdminRules.scopeText(sites: sites, teams: teams),
                        label: label,
                        firstSeenMillis: UInt64(max(0, firstSeen)),
                        lastSeenMillis: UInt64(max(0, lastSeen)),
                        lastPushMillis: lastPush.map { UInt64(max(0, $0)) },
                        lastPullMillis: lastPull.map { UInt64(max(0, $0)) },
                        pulledTo: pulledTo,
                        behindChanges: Int(behind),
                        acknowledged: acknowledged,
                        outbox: outbox.map { Int($0) },
                        client: client,
                        refused: refused.map { Int($0) },
                        retiredAtMillis: retired.map { UInt64(max(0, $0)) },
                        tokenRevokedAtMillis: revoked.map { UInt64(max(0, $0)) }
                    )
                )
            }
            return result
        }
    }

    public func retireDevice(practice: String, replica: String, now: UInt64) async throws(ServerError) {
        try await transaction { connection in
            guard
                try await connection.run(
                    """
                    UPDATE device SET retired_at = COALESCE(retired_at, \(Int64(now)))
                    WHERE practice = \(practice) AND replica = \(replica) RETURNING 1
                    """,
                    logger
                ) == 1
            else { throw ServerError.noDevice(replica, practice: practice) }
            try await connection.run(
                "DELETE FROM device_patient WHERE practice = \(practice) AND replica = \(replica)",
                logger
            )
            try await Self.audit(
                "device.retire",
                practice: practice,
                subject: replica,
                detail: "",
                now: now,
                connection,
                logger
            )
        }
    }

    public func deviceStaleness(now: UInt64) async throws(ServerError) -> [(bucket: String, count: Int)] {
        let seen = try await transaction { connection in
            try await connection.all("SELECT last_seen FROM device WHERE retired_at IS NULL", logger).map {
                try $0.decode(Int64.self)
            }
        }
        return AdminRules.staleness(lastSeen: seen, now: now)
    }

    public func auditLog(practice: String?) async throws(ServerError) -> [AuditEntry] {
        try await transaction { connection in
            try await connection.all(
                """
                SELECT seq, at, actor, action, practice, subject, detail FROM audit
                WHERE \(practice)::text IS NULL OR practice = \(practice) ORDER BY seq
                """,
                logger
            ).map {
                let (seq, at, actor, action, practice, subject, detail) = try $0.decode(
                    (Int64, Int64, String, String, String?, String?, String).self
                )
                return AuditEntry(
                    seq: seq,
                    atMillis: UInt64(max(0, at)),
                    actor: actor,
                    action: action,
                    practice: practice,
                    subject: subject,
                    detail: detail
                )
            }
        }
    }
}

extension PostgresStore {
    public func carryOver(audit entries: [AuditEntry], now: UInt64) async throws(ServerError) {
        let logger = logger
        try await transaction { connection in
            for entry in entries {
                try await connection.run(
                    """
                    INSERT INTO audit (at, actor, action, practice, subject, detail)
                    VALUES (\(Int64(entry.atMillis)), \(entry.actor), \(entry.action), \(entry.practice),
                        \(entry.subject), \(entry.detail))
                    """,
                    logger
                )
            }
            try await Self.audit(
                "restore.carry-over",
                practice: nil,
                subject: nil,
                detail: RestoreCarryOver.carryOverDetail(entries.count),
                now: now,
                connection,
                logger
            )
        }
    }
}
