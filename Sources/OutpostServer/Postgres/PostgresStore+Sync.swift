import Foundation
import HTTPTypes
import Logging
import NIOCore
public import OutpostCRDT
import OutpostModel
import OutpostProtocol
import PostgresNIO

/// The PostgreSQL backend of the sync endpoints: reads the state the pure rules need, writes what they decide,
/// each in one transaction (see ``PostgresStore`` for the feed rule).
extension PostgresStore: SyncStorage {
    /// The name of the channel a push notifies with its practice id when it grows the feed.
    static let feedChannel = "outpost_feed"

    public func token(hash: String) async throws(ServerError) -> TokenEntry? {
        try await transaction { connection in
            try await connection.all("SELECT \(unescaped: Self.tokenColumns) FROM token WHERE hash = \(hash)", logger)
                .first.map(Self.tokenEntry)
        }
    }

    public func feedHead(practice: String) async throws(ServerError) -> Int64 {
        try await transaction { connection in try await Self.head(practice: practice, connection, logger) }
    }

    public func feedFacts(practice: String) async throws(ServerError) -> FeedFacts {
        try await transaction(.repeatableRead) { connection in
            FeedFacts(
                epoch: try await Self.epoch(connection, logger),
                head: try await Self.head(practice: practice, connection, logger),
                floor: try await Self.feedFloor(practice: practice, connection, logger),
                lastPurge: try await connection.all(
                    "SELECT COALESCE(MAX(position), 0) FROM purge WHERE practice = \(practice)",
                    logger
                ).first?.decode(Int64.self) ?? 0
            )
        }
    }

    /// The push `incoming` decoded, its abbreviations resolved among `practice`'s records on `connection` (in the
    /// push's transaction).
    static func decode(
        _ incoming: IncomingPush,
        practice: String,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> PushRequest {
        switch incoming {
        case .decoded(let request):
            return request
        case .abbreviated(let abbreviations, let decode):
            // One statement for the whole push: each abbreviation's range of ids, at most two ids of each, found
            // in the record key's index. The range is in the database's collation, which orders ids of one type
            // (one prefix, then digits and upper-case letters) as bytes do in the collations PostgreSQL ships;
            // whatever it returns is checked against the abbreviation, and one not found is not guessed.
            var candidates = [[String]](repeating: [], count: abbreviations.count)
            for row in try await connection.all(
                """
                SELECT a.n, r.id
                FROM unnest(\(abbreviations.map(\.type))::text[], \(abbreviations.map(\.lowestID))::text[],
                    \(abbreviations.map(\.highestID))::text[]) WITH ORDINALITY AS a(type, low, high, n)
                CROSS JOIN LATERAL (
                    SELECT id FROM record
                    WHERE practice = \(practice) AND type = a.type
                        AND id BETWEEN a.low AND a.high AND length(id) = length(a.low)
                    LIMIT 2
                ) r
                """,
                logger
            ) {
                let (index, id) = try row.decode((Int64, String).self)
                candidates[Int(index) - 1].append(id)
            }
            return try decode(zip(abbreviations, candidates).map { $0.resolve(among: $1) })
        }
    }

    /// The feed head of a practice (its last change or a later purge; 0 for an unknown practice).
    static func head(practice: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int64 {
        try await connection.all("SELECT head FROM practice WHERE id = \(practice)", logger).first?.decode(Int64.self)
            ?? 0
    }

    /// Locks a practice's feed for the rest of the transaction and returns its head: every transaction that
    /// assigns feed positions takes this lock first, so positions are assigned in commit order.
    static func lockFeed(practice: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int64 {
        guard
            let head = try await connection.all(
                "SELECT head FROM practice WHERE id = \(practice) FOR NO KEY UPDATE",
                logger
            ).first?.decode(Int64.self)
        else { throw ServerError.noPractice(practice) }
        return head
    }

    public func claimReplica(_ replica: ReplicaID, token: TokenEntry, now: UInt64) async throws(ServerError) {
        try await transaction { connection in
            try await Self.bindDevice(replica, token: token, now: now, connection, logger)
        }
    }

    /// Binds `replica` to the token as ``AdminRules/binding(_:bound:token:predecessors:)`` decides.
    static func bindDevice(
        _ replica: ReplicaID,
        token: TokenEntry,
        now: UInt64,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        let bound = try await connection.all(
            """
            SELECT token, retired_at FROM device WHERE practice = \(token.practice) AND replica = \(replica.rawValue)
            """,
            logger
        ).first.map { try $0.decode((String, Int64?).self) }
        var predecessors: [String] = []
        if let bound, bound.0 != token.id {
            var current = token.id
            while let previous = try await connection.all(
                "SELECT successor_of FROM token WHERE id = \(current)",
                logger
            ).first?.decode(String?.self), !predecessors.contains(previous) {
                predecessors.append(previous)
                current = previous
            }
        }
        switch try AdminRules.binding(
            replica,
            bound: bound.map { (token: $0.0, isRetired: $0.1 != nil) },
            token: token.id,
            predecessors: predecessors
        ) {
        case .keep:
            return
        case .rebind:
            try await connection.run(
                """
                UPDATE device SET token = \(token.id) WHERE practice = \(token.practice) AND replica = \(replica.rawValue)
                """,
                logger
            )
        case .bind:
            try await connection.run(
                """
                INSERT INTO device (practice, replica, token, acknowledged, first_seen, last_seen)
                VALUES (\(token.practice), \(replica.rawValue), \(token.id), 0, \(Int64(now)), \(Int64(now)))
                ON CONFLICT (practice, replica) DO NOTHING
                """,
                logger
            )
        }
    }

    public func push(
        _ incoming: IncomingPush,
        token: TokenEntry,
        report: DeviceReport,
        now: UInt64,
        maxClockSkewMillis: UInt64,
        perChange: Bool,
        deviceEpoch: String? = nil
    ) async throws(ServerError) -> PushOutcome {
        let judge = PushJudge(token: token, now: now, maxClockSkewMillis: maxClockSkewMillis)
        let practice = token.practice
        return try await transaction { connection in
            if let deviceEpoch, incoming.carriesChanges {
                let epoch = try await Self.epoch(connection, logger)
                try EpochRule.checkPush(carriesChanges: true, deviceEpoch: deviceEpoch, epoch: epoch)
            }
            // Resolved before the practice's feed is locked: reading ids takes no lock, and the lock is held
            // only while the push is judged and written.
            let request = try await Self.decode(incoming, practice: practice, connection, logger)
            let head = try await Self.lockFeed(practice: practice, connection, logger)
            try await Self.bindDevice(request.replica, token: token, now: now, connection, logger)
            let context = try await Self.pushContext(for: request, token: token, connection, logger)
            let plan = try judge.judge(request, context: context, perChange: perChange)
            let written = try await Self.write(plan, practice: practice, head: head, now: now, connection, logger)
            let created = FeedPlanner.patientsCreated(by: plan, scope: token.scope)
            if !created.isEmpty {
                let sent = FeedPlanner.sentByPush
                try await connection.run(
                    """
                    INSERT INTO device_patient (practice, replica, patient, state, at, at_since)
                    SELECT \(practice), \(request.replica.rawValue), patient, 'in', \(sent.at), \(sent.atSince)
                    FROM unnest(\(created)::text[]) AS patient
                    ON CONFLICT (practice, replica, patient) DO UPDATE
                    SET state = 'in', at = excluded.at, at_since = excluded.at_since
                    """,
                    logger
                )
            }
            let acknowledged =
                try await connection.all(
                    """
                    UPDATE device SET acknowledged = GREATEST(acknowledged, \(Int64(clamping: plan.maxCounter))),
                        last_seen = \(Int64(now)), last_push = \(Int64(now)),
                        outbox = COALESCE(\(report.outbox.map(Int64.init)), outbox),
                        client = COALESCE(\(report.client), client),
                        refused = COALESCE(\(report.refused.map(Int64.init)), refused)
                    WHERE practice = \(practice) AND replica = \(request.replica.rawValue)
                    RETURNING acknowledged
                    """,
                    logger
                ).first?.decode(Int64.self) ?? 0
            if !plan.accepted.isEmpty || written.movedPurge {
                // Delivered at commit to every process listening: their long polls on this practice wake (a purge
                // moved to a new feed position is announced by pulls as a change is).
                try await connection.run("SELECT pg_notify(\(Self.feedChannel), \(practice))", logger)
            }
            await beforePushCommit?()
            return PushOutcome(
                replica: request.replica,
                response: PushResponse(
                    accepted: plan.accepted.count,
                    duplicates: plan.duplicates,
                    acknowledged: UInt64(max(0, acknowledged)),
                    serverTimeMillis: now,
                    refused: plan.refused,
                    erased: plan.erased
                ),
                newConflicts: written.opened,
                resolvedConflicts: written.resolved,
                movedPurge: written.movedPurge
            )
        }
    }

    /// Reads what ``PushJudge`` needs for `request` (see ``ServerStore/pushContext(for:token:named:db:)``).
    static func pushContext(
        for request: PushRequest,
        token: TokenEntry,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> PushContext {
        let practice = token.practice
        var context = PushContext()
        // Counters above Int64.max are refused by the judge; SQL cannot hold them.
        let counters = request.changes.filter { $0.id.replica == request.replica && $0.id.counter <= UInt64(Int64.max) }
            .map { Int64($0.id.counter) }
        if !counters.isEmpty {
            for row in try await connection.all(
                """
                SELECT counter, payload FROM change
                WHERE practice = \(practice) AND replica = \(request.replica.rawValue) AND counter = ANY(\(counters))
                """,
                logger
            ) {
                let (counter, payload) = try row.decode((Int64, ByteBuffer).self)
                context.stored[ChangeID(replica: request.replica, counter: UInt64(counter))] = payload.bytes
            }
        }
        let written = Array(PushJudge.records(of: request))
        for row in try await connection.all(
            """
            SELECT type, id, owner, state FROM record WHERE practice = \(practice)
            AND (type, id) IN (SELECT * FROM unnest(\(written.map(\.type))::text[], \(written.map(\.id))::text[]))
            """,
            logger
        ) {
            let (type, id, owner, state) = try row.decode((String, String, String?, ByteBuffer).self)
            var reader = BinaryReader(state.bytes)
            context.records[RecordRef(type: type, id: id)] = (owner, try reader.readRecordState())
        }
        let referenced = Array(PushJudge.references(of: request).filter { context.records[$0] == nil })
        if !referenced.isEmpty {
            for row in try await connection.all(
                """
                SELECT type, id FROM record WHERE practice = \(practice)
                AND (type, id) IN (
                    SELECT * FROM unnest(\(referenced.map(\.type))::text[], \(referenced.map(\.id))::text[])
                )
                """,
                logger
            ) {
                let (type, id) = try row.decode((String, String).self)
                context.existing.insert(RecordRef(type: type, id: id))
            }
        }
        for ref in context.records.keys { context.existing.insert(ref) }
        let erasable = Array(PushJudge.erasable(by: request, holding: { context.records[$0] != nil }))
        if !erasable.isEmpty {
            for row in try await connection.all(
                """
                SELECT type, id FROM erased WHERE practice = \(practice)
                AND (type, id) IN (SELECT * FROM unnest(\(erasable.map(\.type))::text[], \(erasable.map(\.id))::text[]))
                """,
                logger
            ) {
                let (type, id) = try row.decode((String, String).self)
                context.erased.insert(RecordRef(type: type, id: id))
            }
        }
        if !token.scope.isWholePractice {
            // In scope: patients in the token's scope now, and those this device holds until it has applied the
            // pull that removes them, so its pending edits to a patient that just left reach the server first.
            var allowed = try await patients(in: token.scope, practice: practice, connection, logger)
            let recorded = try await devicePatients(practice: practice, replica: request.replica, connection, logger)
            let pulledFrom =
                try await connection.all(
                    """
                    SELECT pulled_from FROM device WHERE practice = \(practice) AND replica = \(request.replica.rawValue)
                    """,
                    logger
                ).first?.decode(Int64?.self) ?? nil
            allowed.formUnion(FeedPlanner.heldPatients(recorded: recorded, pulledFrom: pulledFrom))
            context.patientsInScope = allowed
        }
        return context
    }

    /// The patients of a practice in `scope`: primary team among its teams, or a site among its sites. This is
    /// `Scope.contains` in SQL, over the keys each push stores (`PatientView.ScopeKeys`); the caller handles the
    /// whole practice.
    static func patients(
        in scope: Scope,
        practice: String,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> Set<String> {
        var result = Set<String>()
        for row in try await connection.all(
            """
            SELECT patient FROM patient_scope WHERE practice = \(practice) AND team = ANY(\(scope.teams))
            UNION SELECT patient FROM patient_site WHERE practice = \(practice) AND site = ANY(\(scope.sites))
            """,
            logger
        ) {
            result.insert(try row.decode(String.self))
        }
        return result
    }

    /// Writes a push's plan at the feed positions after `head` (locked by the caller), and moves the head.
    ///
    /// Each table is written in one statement over arrays (`unnest`), not a statement per row: the practice's
    /// feed lock is held for the whole transaction, so every round trip here is time other pushes of the
    /// practice wait.
    static func write(
        _ plan: PushPlan,
        practice: String,
        head: Int64,
        now: UInt64,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> (opened: Int, resolved: Int, movedPurge: Bool) {
        var head = head
        // Records given to an erased patient: their ids kept, what an earlier push stored of them erased. The
        // erasure then takes a new feed position for the patient's purge, as the purge did, so that snapshot pages
        // kept from before it are not sent again, and the record is kept with the patient, so that pulls name it
        // beside the patient (``ServerStore/write(_:practice:tails:partly:now:db:)``).
        var erasedChanges: [String] = []
        for erasing in plan.erasing {
            let ref = erasing.record
            guard try await Self.erase(ref, practice: practice, connection, logger) else { continue }
            erasedChanges.append(erasing.patient)
            try await connection.run(
                """
                UPDATE erased SET patient = \(erasing.patient)
                WHERE practice = \(practice) AND type = \(ref.type) AND id = \(ref.id)
                """,
                logger
            )
        }
        if !erasedChanges.isEmpty {
            head += 1
            try await connection.run(
                "UPDATE purge SET position = \(head) WHERE practice = \(practice) AND patient = ANY(\(erasedChanges))",
                logger
            )
            try await connection.run("UPDATE practice SET head = \(head) WHERE id = \(practice)", logger)
        }
        if !plan.accepted.isEmpty {
            let changes = plan.accepted.map(\.change)
            let positions = (1...Int64(plan.accepted.count)).map { head + $0 }
            try await connection.run(
                """
                INSERT INTO change (practice, seq, replica, counter, type, id, owner, payload, creates)
                SELECT \(practice), seq, replica, counter, type, id, CASE WHEN has_owner THEN owner END, payload,
                    creates
                FROM unnest(\(positions)::bigint[], \(changes.map(\.id.replica.rawValue))::text[],
                    \(changes.map { Int64($0.id.counter) })::bigint[], \(changes.map(\.record.type))::text[],
                    \(changes.map(\.record.id))::text[], \(plan.accepted.map { $0.owner != nil })::bool[],
                    \(plan.accepted.map { $0.owner ?? "" })::text[],
                    \(plan.accepted.map { ByteBuffer(bytes: StoredChange.encode($0.change)) })::bytea[],
                    \(plan.createsRecord())::bool[])
                    AS c(seq, replica, counter, type, id, has_owner, owner, payload, creates)
                """,
                logger
            )
            try await connection.run(
                "UPDATE practice SET head = \(head + Int64(plan.accepted.count)) WHERE id = \(practice)",
                logger
            )
        }
        if !plan.records.isEmpty {
            let states = plan.records.map { record in
                var writer = BinaryWriter(capacity: 512)
                writer.write(record.state)
                return ByteBuffer(bytes: writer.bytes)
            }
            try await connection.run(
                """
                INSERT INTO record (practice, type, id, owner, state)
                SELECT \(practice), type, id, CASE WHEN has_owner THEN owner END, state
                FROM unnest(\(plan.records.map(\.ref.type))::text[], \(plan.records.map(\.ref.id))::text[],
                    \(plan.records.map { $0.owner != nil })::bool[], \(plan.records.map { $0.owner ?? "" })::text[],
                    \(states)::bytea[]) AS r(type, id, has_owner, owner, state)
                ON CONFLICT (practice, type, id) DO UPDATE SET owner = excluded.owner, state = excluded.state
                """,
                logger
            )
        }
        for record in plan.records where record.learntOwner {
            guard let owner = record.owner else { continue }
            // Its earlier changes now belong to that patient, and every scoped device holding the patient,
            // which skipped them as ownerless, is sent the patient whole again on its next pull.
            try await connection.run(
                """
                UPDATE change SET owner = \(owner)
                WHERE practice = \(practice) AND type = \(record.ref.type) AND id = \(record.ref.id)
                    AND owner IS NULL
                """,
                logger
            )
            try await connection.run(
                """
                UPDATE device_patient SET at = \(Int64.max)
                WHERE practice = \(practice) AND patient = \(owner) AND state = 'in'
                """,
                logger
            )
        }
        if !plan.patientScopes.isEmpty {
            let scopes = plan.patientScopes
            try await connection.run(
                """
                INSERT INTO patient_scope (practice, patient, team)
                SELECT \(practice), patient, CASE WHEN has_team THEN team END
                FROM unnest(\(scopes.map(\.patient))::text[], \(scopes.map { $0.team != nil })::bool[],
                    \(scopes.map { $0.team ?? "" })::text[]) AS s(patient, has_team, team)
                ON CONFLICT (practice, patient) DO UPDATE SET team = excluded.team
                """,
                logger
            )
            try await connection.run(
                "DELETE FROM patient_site WHERE practice = \(practice) AND patient = ANY(\(scopes.map(\.patient)))",
                logger
            )
            let sites = scopes.flatMap { scope in scope.sites.map { (scope.patient, $0) } }
            if !sites.isEmpty {
                try await connection.run(
                    """
                    INSERT INTO patient_site (practice, patient, site)
                    SELECT \(practice), patient, site
                    FROM unnest(\(sites.map(\.0))::text[], \(sites.map(\.1))::text[]) AS s(patient, site)
                    """,
                    logger
                )
            }
        }
        let opening = plan.conflicts.filter(\.isConflict)
        let closing = plan.conflicts.filter { !$0.isConflict }
        var opened = 0
        var resolved = 0
        if !opening.isEmpty {
            opened = try await connection.run(
                """
                INSERT INTO conflict (practice, type, id, field, detected_at)
                SELECT \(practice), type, id, field, \(Int64(now))
                FROM unnest(\(opening.map(\.record.type))::text[], \(opening.map(\.record.id))::text[],
                    \(opening.map(\.field))::text[]) AS k(type, id, field)
                ON CONFLICT DO NOTHING RETURNING 1
                """,
                logger
            )
        }
        if !closing.isEmpty {
            resolved = try await connection.run(
                """
                DELETE FROM conflict
                WHERE practice = \(practice) AND (type, id, field) IN (
                    SELECT * FROM unnest(\(closing.map(\.record.type))::text[], \(closing.map(\.record.id))::text[],
                        \(closing.map(\.field))::text[])
                )
                RETURNING 1
                """,
                logger
            )
        }
        return (opened, resolved, !erasedChanges.isEmpty)
    }

    /// Records what a device did and reported on a pull: the checkpoint it was sent (`pulledTo`) and the one it
    /// asked from (`pulledFrom`), from which the position it is known to hold follows
    /// (``CompactionPlanner/Device/heldTo``; every expression reads the row as it was).
    static func recordPull(
        _ replica: ReplicaID,
        practice: String,
        report: DeviceReport,
        now: UInt64,
        pulledTo: Int64,
        pulledFrom: Int64,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        try await connection.run(
            """
            UPDATE device SET last_seen = \(Int64(now)), last_pull = \(Int64(now)), pulled_to = \(pulledTo),
                held_to = LEAST(COALESCE(pulled_from, \(pulledFrom)), \(pulledFrom)), pulled_from = \(pulledFrom),
                outbox = COALESCE(\(report.outbox.map(Int64.init)), outbox), client = COALESCE(\(report.client), client),
                refused = COALESCE(\(report.refused.map(Int64.init)), refused)
            WHERE practice = \(practice) AND replica = \(replica.rawValue)
            """,
            logger
        )
    }

    public func pull(
        token: TokenEntry,
        replica: ReplicaID?,
        report: DeviceReport,
        since: Int64,
        limit: Int,
        now: UInt64,
        deviceEpoch: String? = nil
    ) async throws(ServerError) -> FeedPage {
        let practice = token.practice
        try FeedPlanner.requireReplica(replica, scope: token.scope)
        return try await transaction(.repeatableRead) { connection in
            // One read of the head: the page's snapshot sees the same one when it is caught up.
            let head = try await Self.head(practice: practice, connection, logger)
            try EpochRule.checkPull(
                since: since,
                head: head,
                deviceEpoch: deviceEpoch,
                epoch: deviceEpoch != nil && since > 0 ? try await Self.epoch(connection, logger) : nil
            )
            try await Self.requireServable(since: since, practice: practice, connection, logger)
            // The device holds its own changes already: they are left out in the scan.
            let rows = try await connection.all(
                """
                SELECT seq, type, id, owner, payload, creates FROM change
                WHERE practice = \(practice) AND seq > \(since) AND replica IS DISTINCT FROM \(replica?.rawValue)
                ORDER BY seq LIMIT \(limit + 1)
                """,
                logger
            )
            let hasMore = rows.count > limit
            var checkpoint = since
            var feed: [FeedPlanner.FeedRow] = []
            var created: Set<RecordRef> = []
            for row in rows.prefix(limit) {
                let (seq, type, id, owner, payload, creates) = try row.decode(
                    (Int64, String, String, String?, ByteBuffer, Bool).self
                )
                guard let change = StoredChange.decode(payload.bytes) else {
                    throw ServerError(.internalError, .internalServerError, "a stored change could not be read")
                }
                checkpoint = seq
                let record = RecordRef(type: type, id: id)
                feed.append(FeedPlanner.FeedRow(record: record, owner: owner, change: change))
                if creates { created.insert(record) }
            }
            // Caught up: move past any purge, so it is announced once.
            if !hasMore { checkpoint = max(checkpoint, head) }
            let purged = try await Self.purged(practice: practice, since: since, connection, logger)
            if let replica {
                try await Self.recordPull(
                    replica,
                    practice: practice,
                    report: report,
                    now: now,
                    pulledTo: checkpoint,
                    pulledFrom: since,
                    connection,
                    logger
                )
            }
            guard !token.scope.isWholePractice, let replica else {
                return FeedPage(
                    changes: feed.map(\.change),
                    checkpoint: checkpoint,
                    hasMore: hasMore,
                    removed: purged,
                    created: created
                )
            }
            let inScope = try await Self.patients(in: token.scope, practice: practice, connection, logger)
            let known = try await Self.devicePatients(practice: practice, replica: replica, connection, logger)
            let page = FeedPlanner.scopedPage(rows: feed, inScope: inScope, known: known, since: since)
            for patient in page.forgotten {
                try await connection.run(
                    """
                    DELETE FROM device_patient
                    WHERE practice = \(practice) AND replica = \(replica.rawValue) AND patient = \(patient)
                    """,
                    logger
                )
            }
            for (patients, state) in [(page.entering, "in"), (page.removed, "out")] {
                for patient in patients {
                    try await connection.run(
                        """
                        INSERT INTO device_patient (practice, replica, patient, state, at, at_since)
                        VALUES (\(practice), \(replica.rawValue), \(patient), \(state), \(checkpoint), \(since))
                        ON CONFLICT (practice, replica, patient) DO UPDATE
                        SET state = excluded.state, at = excluded.at, at_since = excluded.at_since
                        """,
                        logger
                    )
                }
            }
            var records: [SnapshotRecord] = []
            for patient in page.entering {
                for row in try await connection.all(
                    """
                    SELECT type, id, state FROM record
                    WHERE practice = \(practice) AND ((type = 'patient' AND id = \(patient)) OR owner = \(patient))
                    ORDER BY type, id
                    """,
                    logger
                ) {
                    let (type, id, state) = try row.decode((String, String, ByteBuffer).self)
                    var reader = BinaryReader(state.bytes)
                    records.append(
                        SnapshotRecord(record: RecordRef(type: type, id: id), state: try reader.readRecordState())
                    )
                }
            }
            return FeedPage(
                changes: page.changes,
                checkpoint: checkpoint,
                hasMore: hasMore,
                records: records,
                removed: Array(Set(page.removed + purged)).sorted(),
                leftScope: FeedPlanner.leftScope(removed: page.removed, purged: purged),
                created: created
            )
        }
    }

    public func snapshot(
        token: TokenEntry,
        replica: ReplicaID?,
        after cursor: RecordRef?,
        limit: Int,
        sparingOwn: Bool = false
    ) async throws(ServerError) -> SnapshotSlice {
        let practice = token.practice
        let spared = sparingOwn ? replica : nil
        return try await transaction(.repeatableRead) { connection in
            let head = try await Self.head(practice: practice, connection, logger)
            var visibility = FeedPlanner.Visibility.wholePractice
            var removed: [String] = []
            var leftScope: [String] = []
            if cursor == nil {
                // Every purge is at or before the head: the pulls from it announce the later ones.
                removed = FeedPlanner.removedOnBootstrap(
                    purged: try await Self.purged(practice: practice, since: 0, connection, logger),
                    known: [],
                    inScope: nil
                )
            }
            if !token.scope.isWholePractice {
                var inScope = try await Self.patients(in: token.scope, practice: practice, connection, logger)
                if cursor != nil, let replica {
                    // The pages after the first: the patients the first page recorded as sent to the device that
                    // are still in scope; those that left are recorded as told to leave
                    // (``FeedPlanner/snapshotPatients(recorded:inScope:)``).
                    let walk = FeedPlanner.snapshotPatients(
                        recorded: try await Self.devicePatients(
                            practice: practice,
                            replica: replica,
                            connection,
                            logger
                        ),
                        inScope: inScope
                    )
                    inScope = walk.patients
                    for patient in walk.leaving {
                        try await connection.run(
                            """
                            UPDATE device_patient SET state = 'out', at = \(head), at_since = \(head)
                            WHERE practice = \(practice) AND replica = \(replica.rawValue) AND patient = \(patient)
                            """,
                            logger
                        )
                    }
                }
                visibility = .patients(inScope)
                if cursor == nil, let replica {
                    // The first page: what the device was sent before, then every patient now in its scope, as of
                    // the head.
                    let known = try await Self.devicePatients(practice: practice, replica: replica, connection, logger)
                    let purged = removed
                    removed = FeedPlanner.removedOnBootstrap(purged: purged, known: known.keys, inScope: inScope)
                    leftScope = FeedPlanner.leftScope(removed: removed, purged: purged)
                    try await connection.run(
                        "DELETE FROM device_patient WHERE practice = \(practice) AND replica = \(replica.rawValue)",
                        logger
                    )
                    for (patient, entry) in FeedPlanner.bootstrapRecord(known: known, inScope: inScope, head: head) {
                        try await connection.run(
                            """
                            INSERT INTO device_patient (practice, replica, patient, state, at, at_since)
                            VALUES (
                                \(practice), \(replica.rawValue), \(patient), \(entry.isIn ? "in" : "out"), \(entry.at),
                                \(entry.atSince)
                            )
                            """,
                            logger
                        )
                    }
                }
            }
            // Read ids and owners in chunks until the page is known (more than `limit` records to send, the end,
            // or the walk's limit), then let the planner walk them; states are read for the page's records only.
            // The walk goes type after type, each type walked as the visibility says (``FeedPlanner/TypeWalk``):
            // a scope's records are found by their keys, so a scoped walk reads no record outside the scope.
            // Sparing the device's own, the walk reads states too, to know which records to leave out, and keeps
            // those of the records it sends.
            var candidates: [(record: RecordRef, owner: String?)] = []
            var own: Set<RecordRef> = []
            var kept: [RecordRef: [UInt8]] = [:]
            let patients = visibility.sortedPatients
            var start = cursor
            var walkedType: String?
            var sendable = 0
            let walkLimit = spared == nil ? Int.max : limit * FeedPlanner.sparedWalkPages
            let chunk = max(limit + 1, 1000)
            walk: while sendable <= limit, candidates.count < walkLimit {
                let type: String
                var after = ""
                if let first = start {
                    (type, after, start) = (first.type, first.id, nil)
                } else {
                    guard
                        let found = try await connection.all(
                            "SELECT MIN(type) FROM record WHERE practice = \(practice) AND type > \(walkedType ?? "")",
                            logger
                        ).first?.decode(String?.self)
                    else { break }
                    type = found
                }
                walkedType = type
                while true {
                    let rows = try await connection.all(
                        Self.snapshotWalk(
                            visibility.walk(type: type),
                            practice: practice,
                            type: type,
                            patients: patients,
                            after: after,
                            withStates: spared != nil,
                            limit: chunk
                        ),
                        logger
                    )
                    for row in rows {
                        let (id, owner, state) = try row.decode((String, String?, ByteBuffer?).self)
                        let ref = RecordRef(type: type, id: id)
                        candidates.append((ref, owner))
                        after = id
                        guard visibility.contains(type: type, id: id, owner: owner) else { continue }
                        if let spared, let state {
                            let bytes = Array(state.readableBytesView)
                            guard try !FeedPlanner.isOwn(bytes, by: spared) else {
                                own.insert(ref)
                                continue
                            }
                            kept[ref] = bytes
                        }
                        sendable += 1
                    }
                    if rows.count < chunk { break }
                    if sendable > limit || candidates.count >= walkLimit { break walk }
                }
            }
            var iterator = candidates.makeIterator()
            let page = FeedPlanner.snapshotPage(
                limit: limit,
                visibility: visibility,
                walkLimit: walkLimit,
                next: { iterator.next() },
                spares: { own.contains($0) }
            )
            if spared == nil, !page.records.isEmpty {
                for row in try await connection.all(
                    """
                    SELECT type, id, state FROM record WHERE practice = \(practice)
                    AND (type, id) IN (
                        SELECT * FROM unnest(\(page.records.map(\.type))::text[], \(page.records.map(\.id))::text[])
                    )
                    """,
                    logger
                ) {
                    let (type, id, state) = try row.decode((String, String, ByteBuffer).self)
                    kept[RecordRef(type: type, id: id)] = Array(state.readableBytesView)
                }
            }
            let records = page.records.compactMap { ref in kept[ref].map { StoredRecordState(record: ref, state: $0) } }
            return SnapshotSlice(
                records: records,
                checkpoint: head,
                next: page.next,
                removed: removed,
                leftScope: leftScope
            )
        }
    }

    /// What a scoped device was last sent of each patient (``FeedPlanner/DevicePatient``), read on `connection`.
    static func devicePatients(
        practice: String,
        replica: ReplicaID,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> [String: FeedPlanner.DevicePatient] {
        var known: [String: FeedPlanner.DevicePatient] = [:]
        for row in try await connection.all(
            """
            SELECT patient, state, at, at_since FROM device_patient
            WHERE practice = \(practice) AND replica = \(replica.rawValue)
            """,
            logger
        ) {
            let (patient, state, at, atSince) = try row.decode((String, String, Int64, Int64).self)
            known[patient] = FeedPlanner.DevicePatient(isIn: state == "in", at: at, atSince: atSince)
        }
        return known
    }

    /// The query that walks one type of a snapshot page (``FeedPlanner/TypeWalk``) in id order, after `after`, at
    /// most `limit` rows of id, owner and, `withStates`, state. A scope's records are found by their keys (the
    /// patients by id, the others through `record_by_owner`).
    static func snapshotWalk(
        _ walk: FeedPlanner.TypeWalk,
        practice: String,
        type: String,
        patients: [String],
        after: String,
        withStates: Bool,
        limit: Int
    ) -> PostgresQuery {
        switch walk {
        case .every:
            """
            SELECT id, owner, CASE WHEN \(withStates) THEN state END FROM record
            WHERE practice = \(practice) AND type = \(type) AND id > \(after) ORDER BY id LIMIT \(limit)
            """
        case .patientsInScope:
            """
            SELECT id, owner, CASE WHEN \(withStates) THEN state END FROM record
            WHERE practice = \(practice) AND type = \(type) AND id = ANY(\(patients)::text[]) AND id > \(after)
            ORDER BY id LIMIT \(limit)
            """
        case .ownedInScope:
            """
            SELECT id, owner, CASE WHEN \(withStates) THEN state END FROM record
            WHERE practice = \(practice) AND type = \(type) AND owner = ANY(\(patients)::text[]) AND id > \(after)
            ORDER BY id LIMIT \(limit)
            """
        }
    }

    public func openConflictCount(practice: String?) async throws(ServerError) -> Int {
        try await transaction { connection in
            try await connection.all(
                "SELECT COUNT(*) FROM conflict WHERE \(practice)::text IS NULL OR practice = \(practice)",
                logger
            ).first?.decode(Int.self) ?? 0
        }
    }
}
