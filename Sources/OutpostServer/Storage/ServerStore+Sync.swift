import Foundation
import GRDB
import HTTPTypes
import Logging
public import OutpostCRDT
import OutpostModel
import OutpostProtocol
import OutpostSQLite
import Synchronization

/// The SQLite backend of the sync endpoints: reads the state the pure rules need, writes what they decide, each
/// in one transaction.
extension ServerStore: SyncStorage {
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
        let outcome = try await writeAsync { db in
            if let deviceEpoch, incoming.carriesChanges {
                try EpochRule.checkPush(carriesChanges: true, deviceEpoch: deviceEpoch, epoch: Self.epoch(db: db))
            }
            let (request, named) = try Self.decode(incoming, practice: token.practice, db: db)
            try Self.bindDevice(request.replica, token: token, now: now, db: db)
            let (context, tails, partly) = try Self.pushContext(for: request, token: token, named: named, db: db)
            let plan = try judge.judge(request, context: context, perChange: perChange)
            let written = try Self.write(plan, practice: token.practice, tails: tails, partly: partly, now: now, db: db)
            for patient in FeedPlanner.patientsCreated(by: plan, scope: token.scope) {
                let sent = FeedPlanner.sentByPush
                try db.cachedStatement(
                    sql: """
                        INSERT INTO device_patient (practice, replica, patient, state, at, atSince)
                        VALUES (?, ?, ?, 'in', ?, ?) ON CONFLICT (practice, replica, patient) DO UPDATE
                        SET state = 'in', at = excluded.at, atSince = excluded.atSince
                        """
                ).execute(arguments: [token.practice, request.replica.rawValue, patient, sent.at, sent.atSince])
            }
            try db.execute(
                sql: """
                    UPDATE device SET acknowledged = MAX(acknowledged, ?), lastSeen = ? WHERE practice = ? AND replica = ?
                    """,
                arguments: [Int64(clamping: plan.maxCounter), Int64(now), token.practice, request.replica.rawValue]
            )
            try Self.recordDevice(
                request.replica,
                practice: token.practice,
                report: report,
                now: now,
                pushed: true,
                db: db
            )
            let acknowledged =
                try Int64.fetchOne(
                    db,
                    sql: "SELECT acknowledged FROM device WHERE practice = ? AND replica = ?",
                    arguments: [token.practice, request.replica.rawValue]
                ) ?? 0
            let outcome = PushOutcome(
                replica: request.replica,
                response: PushResponse(
                    accepted: plan.accepted.count,
                    duplicates: plan.duplicates,
                    acknowledged: UInt64(acknowledged),
                    serverTimeMillis: now,
                    refused: plan.refused,
                    erased: plan.erased
                ),
                newConflicts: written.opened,
                resolvedConflicts: written.resolved,
                movedPurge: written.movedPurge
            )
            return (outcome: outcome, tailRows: written.tailRows, merged: written.mergedTailRows)
        }
        folder.added(outcome.tailRows)
        folder.folded(outcome.merged)
        return outcome.outcome
    }

    /// A stored record's owner and state, as the push's context reads them.
    typealias RecordRow = (owner: String?, state: [UInt8])

    /// The records of practice `?1` and type `?2` whose ids lie in `?3`...`?4` and are as long (at most two): an
    /// abbreviation's candidates, with their rows as the push's context reads them. A search of the record
    /// table's key (practice, type, id): it is run once per record a push names by abbreviation, thousands in a
    /// push of edits, so a scan would take the writer for minutes (`PushResolutionPlanTests` checks the plan).
    static let resolutionSQL = """
        SELECT id, owner, state FROM record
        WHERE practice = ?1 AND type = ?2 AND id BETWEEN ?3 AND ?4 AND length(id) = length(?3) LIMIT 2
        """

    /// The push `incoming` decoded, its abbreviations resolved among `practice`'s records; and the rows of the
    /// records they resolved to, read by the same look-ups, so that ``pushContext(for:token:named:db:)`` does not
    /// look them up again (a push of edits spread over a practice names thousands). Run in the push's write
    /// transaction, so the whole body is decoded there, on the writer.
    static func decode(
        _ incoming: IncomingPush,
        practice: String,
        db: Database
    ) throws -> (request: PushRequest, named: [RecordRef: RecordRow]) {
        switch incoming {
        case .decoded(let request):
            return (request, [:])
        case .abbreviated(let abbreviations, let decode):
            // Bound through SQLite's C API (``GRDB/Database/forEachRow(_:values:_:)``).
            let statement = try db.cachedStatement(sql: resolutionSQL)
            let practice = practice.databaseValue
            var named: [RecordRef: RecordRow] = [:]
            named.reserveCapacity(abbreviations.count)
            var candidates: [(id: String, row: RecordRow)] = []
            let resolved = try abbreviations.map { abbreviation in
                candidates.removeAll(keepingCapacity: true)
                try db.forEachRow(
                    statement,
                    values: [
                        practice, abbreviation.type.databaseValue, abbreviation.lowestID.databaseValue,
                        abbreviation.highestID.databaseValue,
                    ]
                ) { row in
                    if let id = row.text(0) { candidates.append((id, (row.text(1), row.bytes(2)))) }
                }
                let id = abbreviation.resolve(among: candidates.lazy.map(\.id))
                if let id, let found = candidates.first(where: { $0.id == id }) {
                    named[RecordRef(type: abbreviation.type, id: id)] = found.row
                }
                return id
            }
            return (try decode(resolved), named)
        }
    }

    /// Reads what ``PushJudge`` needs for `request`: the stored forms of its change ids, the records it writes (with
    /// their tails merged in), which records it refers to exist, and the token's patients; how many tail rows
    /// each record it writes has, for those that have any; and, when the context's states hold only the fields the
    /// judge reads, the stored rows they were read from (``PartlyRead``). The records in `named` were read in
    /// this transaction already (``decode(_:practice:db:)``).
    static func pushContext(
        for request: PushRequest,
        token: TokenEntry,
        named: [RecordRef: RecordRow] = [:],
        db: Database
    ) throws -> (context: PushContext, tails: [RecordRef: Int], partly: PartlyRead?) {
        let practice = token.practice
        var context = PushContext()
        // Counters above Int64.max are refused by the judge; SQL cannot hold them.
        let counters = request.changes.filter { $0.id.replica == request.replica && $0.id.counter <= UInt64(Int64.max) }
            .map { Int64($0.id.counter) }
        if let low = counters.min(), let high = counters.max() {
            let wanted = Set(counters)
            // A row holds a run of counters from its `counter` up (``ChangeRuns``): the rows that may hold a counter
            // start at most `counterReach` below it. Each wanted change found is kept in its single encoding, the
            // form the judge compares.
            func keep(_ row: BoundRow) throws {
                guard let changes = StoredChange.decodeRun(row.bytes(0)) else {
                    throw ServerError(.internalError, .internalServerError, "a stored change could not be read")
                }
                for change in changes where wanted.contains(Int64(change.id.counter)) {
                    context.stored[change.id] = StoredChange.encode(change)
                }
            }
            // One range read when the push's counters are dense (they are: an outbox in order), one read per
            // change otherwise.
            let ranges =
                high - low < Int64(4 * counters.count)
                ? [(low, high)] : wanted.sorted().map { ($0, $0) }
            let runs = try db.cachedStatement(
                sql: "SELECT payload FROM change WHERE practice = ? AND replica = ? AND counter BETWEEN ? AND ?"
            )
            for (from, to) in ranges {
                try db.forEachRow(
                    runs,
                    values: [
                        practice.databaseValue, request.replica.rawValue.databaseValue,
                        (from - ChangeRuns.counterReach).databaseValue, to.databaseValue,
                    ],
                    keep
                )
            }
        }
        // Each record's row read through SQLite's C API (OutpostSQLite): a push of edits spread over a practice
        // loads thousands, and GRDB's arguments and rows were a tenth of the writer's time.
        let load = try db.cachedStatement(
            sql: "SELECT owner, state FROM record WHERE practice = ? AND type = ? AND id = ?"
        )
        // The rows first (SQL, on this connection), then their states decoded and their tails merged on two
        // threads: a push of edits spread over a practice loads thousands of records, and decoding was about a
        // third of loading them (docs/sync.md, "Seventeenth session").
        var found: [(ref: RecordRef, owner: String?, state: [UInt8], tail: [[UInt8]])] = []
        // In key order: the record table and the tails are then walked once, not read at a random page per record.
        for ref in PushJudge.records(of: request).sorted() {
            if let row = named[ref] {
                found.append((ref, row.owner, row.state, []))
            } else {
                try db.forEachRow(
                    load,
                    values: [practice.databaseValue, ref.type.databaseValue, ref.id.databaseValue]
                ) { row in found.append((ref, row.text(0), row.bytes(1), [])) }
            }
            if found.last?.ref == ref {
                found[found.count - 1].tail = try tailPayloads(practice: practice, ref: ref, db: db)
            }
        }
        // Only the fields the judge reads (a field or two of a dozen, in a push of edits), when the push edits
        // records the store holds: the records it writes whole are merged whole from the rows read here by
        // ``write(_:practice:tails:partly:now:db:)``. A push that holds few (a first push: one record a batch, cut by
        // the batch before) has them read whole, as naming the fields walks every change of the push (30 ms of a
        // reference practice's first push).
        let fieldsRead =
            found.count * 16 >= request.changes.count
            ? PushJudge.fieldsRead(by: request, of: Set(found.map(\.ref))) : nil
        let states = try decodeStates(
            found.map { record in (record.state, record.tail, fieldsRead.map { $0[record.ref] ?? [] }) }
        )
        var tails: [RecordRef: Int] = [:]
        context.records.reserveCapacity(found.count)
        for (index, record) in found.enumerated() {
            context.records[record.ref] = (record.owner, states[index])
            if !record.tail.isEmpty { tails[record.ref] = record.tail.count }
        }
        for ref in PushJudge.references(of: request) where context.records[ref] == nil {
            if named[ref] != nil {
                context.existing.insert(ref)
            } else if try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT 1 FROM record WHERE practice = ? AND type = ? AND id = ?"),
                arguments: [practice, ref.type, ref.id]
            ) == true {
                context.existing.insert(ref)
            }
        }
        for ref in context.records.keys { context.existing.insert(ref) }
        // The erased ids, looked up only in a practice that has some (most never purge).
        if try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT 1 FROM erased WHERE practice = ? LIMIT 1"),
            arguments: [practice]
        ) == true {
            let lookup = try db.cachedStatement(sql: "SELECT 1 FROM erased WHERE practice = ? AND type = ? AND id = ?")
            for ref in PushJudge.erasable(by: request, holding: { context.records[$0] != nil })
            where try Bool.fetchOne(lookup, arguments: [practice, ref.type, ref.id]) == true {
                context.erased.insert(ref)
            }
        }
        let partly = fieldsRead == nil ? nil : PartlyRead(rows: found.map { ($0.ref, $0.state, $0.tail) })
        if !token.scope.isWholePractice {
            // In scope: patients in the token's scope now, and those this device holds until it has applied the
            // pull that removes them, so its pending edits to a patient that just left reach the server first.
            var allowed = try patients(in: token.scope, practice: practice, db: db)
            let pulledFrom = try Int64.fetchOne(
                db,
                sql: "SELECT pulledFrom FROM device WHERE practice = ? AND replica = ?",
                arguments: [practice, request.replica.rawValue]
            )
            allowed.formUnion(
                FeedPlanner.heldPatients(
                    recorded: try devicePatients(practice: practice, replica: request.replica, db: db),
                    pulledFrom: pulledFrom
                )
            )
            context.patientsInScope = allowed
        }
        return (context, tails, partly)
    }

    /// Writes a push's plan: its changes, records, patients' scope columns and conflicts. A record the practice
    /// held whose owner stays takes its new changes in its tail (``TailFolder``), not a new state, unless its tail
    /// already holds ``TailFolder/longest`` rows (`tails`: a record edited push after push while the server never
    /// rests would have every push fold a longer tail); a record written whole loses the tail it had, merged into
    /// the state written; when the plan's states hold only the fields the judge read (`partly`), that state is
    /// merged whole from the rows the context read. Returns the conflicts opened and resolved, the tail rows added
    /// and those merged.
    static func write(
        _ plan: PushPlan,
        practice: String,
        tails: [RecordRef: Int],
        partly: PartlyRead?,
        now: UInt64,
        db: Database
    ) throws -> (
        opened: Int, resolved: Int, tailRows: Int, mergedTailRows: Int, movedPurge: Bool
    ) {
        var mergedTailRows = 0
        // Records given to an erased patient: their ids kept, what an earlier push stored of them (without an owner,
        // so its change rows are found by the `change_ownerless` index) erased. Its change rows may have been the
        // feed's last: the erasure then takes a new position for the patient's purge, past every checkpoint given
        // out, so the feed head does not go back (and pages kept from before it are not sent again). Devices may
        // hold that part under no patient: the record is kept with the patient, and pulls name it beside the
        // patient (``purged(practice:since:db:)``).
        var erasedChanges: Set<String> = []
        for erasing in plan.erasing {
            let ref = erasing.record
            let arguments: StatementArguments = [practice, ref.type, ref.id]
            try db.execute(
                sql: "DELETE FROM change WHERE practice = ? AND type = ? AND id = ? AND owner IS NULL",
                arguments: arguments
            )
            let changeRows = db.changesCount
            let erased = try Self.erase(ref, practice: practice, db: db)
            mergedTailRows += erased.tailRows
            guard changeRows > 0 || erased.held else { continue }
            erasedChanges.insert(erasing.patient)
            try db.execute(
                sql: "UPDATE erased SET patient = ? WHERE practice = ? AND type = ? AND id = ?",
                arguments: [erasing.patient] + arguments
            )
        }
        if !erasedChanges.isEmpty {
            let reserved = try Self.newPurgePosition(db: db)
            for patient in erasedChanges {
                try db.execute(
                    sql: "UPDATE purge SET position = ? WHERE practice = ? AND patient = ?",
                    arguments: [reserved, practice, patient]
                )
            }
        }
        // The feed positions go on from the last one given out (a change's, or one a purge reserved); SQLite moves
        // its AUTOINCREMENT counter to each row's `seq`.
        var position =
            try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'change'") ?? 0
        let changeRows = try ChangeRowInsert(db: db)
        let tailBound = Set(
            plan.records.lazy.filter { $0.row == .state && tails[$0.ref, default: 0] < TailFolder.longest }.map(\.ref)
        )
        let tail = try db.cachedStatement(
            sql: "INSERT INTO record_tail (practice, type, id, seq, payload) VALUES (?, ?, ?, ?, ?)"
        )
        // Tail rows are inserted after the change rows, in key order, so that they fill the tail table's pages in
        // one walk instead of at a random page per change.
        var tailed: [(ref: RecordRef, seq: Int64, payload: [UInt8])] = []
        let creates = plan.createsRecord()
        for run in ChangeRuns.runs(of: plan.accepted) {
            let first = plan.accepted[run.lowerBound]
            let change = first.change
            position += Int64(run.count)
            let payload = StoredChange.encode(plan.accepted[run].map(\.change), of: change.record)
            try changeRows.insert(
                seq: position,
                count: run.count,
                practice: practice,
                replica: change.id.replica.rawValue,
                counter: Int64(change.id.counter),
                type: change.record.type,
                id: change.record.id,
                owner: first.owner,
                payload: payload,
                creates: creates[run.lowerBound]
            )
            if tailBound.contains(change.record) { tailed.append((change.record, position, payload)) }
        }
        tailed.sort { ($0.ref, $0.seq) < ($1.ref, $1.seq) }
        for row in tailed {
            try db.execute(
                tail,
                values: [
                    practice.databaseValue, row.ref.type.databaseValue, row.ref.id.databaseValue,
                    row.seq.databaseValue, Data(row.payload).databaseValue,
                ]
            )
        }
        let tailRows = tailed.count
        // The push's changes of each stored record written whole from a context that held only the fields the
        // judge reads: merged into its whole state (``PartlyRead``).
        let wholes =
            partly == nil
            ? [] : Set(plan.records.lazy.filter { $0.row != .insert && !tailBound.contains($0.ref) }.map(\.ref))
        let changesOfWholes =
            wholes.isEmpty
            ? [:]
            : Dictionary(grouping: plan.accepted.lazy.map(\.change).filter { wholes.contains($0.record) }, by: \.record)
        for record in plan.records where !tailBound.contains(record.ref) {
            // A record whose owner stays took its changes in its tail, above: its row is not written (the owner's
            // index entry neither).
            var writer = BinaryWriter(capacity: 512)
            if let partly, wholes.contains(record.ref) {
                writer.write(try partly.whole(record.ref, with: changesOfWholes[record.ref] ?? []))
            } else {
                writer.write(record.state)
            }
            if tails[record.ref] != nil {
                try db.cachedStatement(sql: "DELETE FROM record_tail WHERE practice = ? AND type = ? AND id = ?")
                    .execute(arguments: [practice, record.ref.type, record.ref.id])
                mergedTailRows += db.changesCount
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO record (practice, type, id, owner, state) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (practice, type, id) DO UPDATE SET owner = excluded.owner, state = excluded.state
                    """
            ).execute(arguments: [practice, record.ref.type, record.ref.id, record.owner, Data(writer.bytes)])
            if record.learntOwner, let owner = record.owner {
                // Its earlier changes now belong to that patient, and every scoped device holding the patient,
                // which skipped them as ownerless, is sent the patient whole again on its next pull.
                try db.cachedStatement(
                    sql: "UPDATE change SET owner = ? WHERE practice = ? AND type = ? AND id = ? AND owner IS NULL"
                ).execute(arguments: [owner, practice, record.ref.type, record.ref.id])
                try db.cachedStatement(
                    sql: """
                        UPDATE device_patient SET at = \(Int64.max) WHERE practice = ? AND patient = ? AND state = 'in'
                        """
                ).execute(arguments: [practice, owner])
            }
        }
        for scope in plan.patientScopes {
            try db.cachedStatement(
                sql: """
                    INSERT INTO patient_scope (practice, patient, team) VALUES (?, ?, ?)
                    ON CONFLICT (practice, patient) DO UPDATE SET team = excluded.team
                    """
            ).execute(arguments: [practice, scope.patient, scope.team])
            try db.cachedStatement(sql: "DELETE FROM patient_site WHERE practice = ? AND patient = ?")
                .execute(arguments: [practice, scope.patient])
            for site in scope.sites {
                try db.cachedStatement(sql: "INSERT INTO patient_site (practice, patient, site) VALUES (?, ?, ?)")
                    .execute(arguments: [practice, scope.patient, site])
            }
        }
        var opened = 0
        var resolved = 0
        for mark in plan.conflicts {
            if mark.isConflict {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO conflict (practice, type, id, field, detectedAt) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT DO NOTHING
                        """
                ).execute(arguments: [practice, mark.record.type, mark.record.id, mark.field, Int64(now)])
                opened += db.changesCount
            } else {
                try db.cachedStatement(
                    sql: "DELETE FROM conflict WHERE practice = ? AND type = ? AND id = ? AND field = ?"
                ).execute(arguments: [practice, mark.record.type, mark.record.id, mark.field])
                resolved += db.changesCount
            }
        }
        return (opened, resolved, tailRows, mergedTailRows, !erasedChanges.isEmpty)
    }

    /// Binds `replica` to the token on the device's first request (push or scoped pull); refuses a replica id
    /// bound to another token of the practice.
    ///
    /// A replica id moves to another token only by an administrator's act: a token issued as the successor of
    /// the bound one (`outpost-server token issue --successor-of`) takes the replica over on its first request.
    /// Nothing a request says moves it otherwise, so a token cannot borrow another device's replica id to pull
    /// that device's patients or push in its name.
    static func bindDevice(_ replica: ReplicaID, token: TokenEntry, now: UInt64, db: Database) throws {
        switch try binding(of: replica, token: token, db: db) {
        case .keep:
            return
        case .rebind:
            try db.execute(
                sql: "UPDATE device SET token = ? WHERE practice = ? AND replica = ?",
                arguments: [token.id, token.practice, replica.rawValue]
            )
        case .bind:
            try db.execute(
                sql: """
                    INSERT INTO device (practice, replica, token, acknowledged, firstSeen, lastSeen)
                    VALUES (?, ?, ?, 0, ?, ?)
                    """,
                arguments: [token.practice, replica.rawValue, token.id, Int64(now), Int64(now)]
            )
        }
    }

    /// What binding `replica` to `token` takes, as the store holds the device now (``AdminRules/binding(_:bound:token:predecessors:)``).
    ///
    /// - Throws: ``ServerError`` `replica_mismatch` for a retired replica or one bound to an unrelated token.
    static func binding(of replica: ReplicaID, token: TokenEntry, db: Database) throws -> AdminRules.Binding {
        let bound = try Row.fetchOne(
            db,
            sql: "SELECT token, retiredAt FROM device WHERE practice = ? AND replica = ?",
            arguments: [token.practice, replica.rawValue]
        )
        let boundToken: String? = bound?["token"]
        return try AdminRules.binding(
            replica,
            bound: boundToken.map { (token: $0, isRetired: bound?["retiredAt"] as Int64? != nil) },
            token: token.id,
            predecessors: boundToken == nil || boundToken == token.id ? [] : predecessors(of: token.id, db: db)
        )
    }

    /// The tokens `token` succeeds, nearest first.
    static func predecessors(of token: String, db: Database) throws -> [String] {
        var current = token
        var chain: [String] = []
        while let previous = try String.fetchOne(
            db,
            sql: "SELECT successorOf FROM token WHERE id = ?",
            arguments: [current]
        ), !chain.contains(previous) {
            chain.append(previous)
            current = previous
        }
        return chain
    }

    public func claimReplica(_ replica: ReplicaID, token: TokenEntry, now: UInt64) async throws(ServerError) {
        // A device bound to its token already (every request but its first) is known by a read, without waiting
        // for SQLite's one writer: a pull beside the device's own push would otherwise wait for each of the push's
        // batches. A binding to make is made in a write, which decides again on what it finds there.
        if try await readAsync({ db in try Self.binding(of: replica, token: token, db: db) }) == .keep { return }
        try await writeAsync { db in try Self.bindDevice(replica, token: token, now: now, db: db) }
    }

    public func feedHead(practice: String) async throws(ServerError) -> Int64 {
        try await readAsync { db in
            try Self.feedHead(practice: practice, db: db)
        }
    }

    public func feedFacts(practice: String) async throws(ServerError) -> FeedFacts {
        try await readAsync { db in
            let (floor, lastPurge) = (
                try Self.feedFloor(practice: practice, db: db), try Self.purgeHead(practice: practice, db: db)
            )
            return FeedFacts(
                epoch: try Self.epoch(db: db),
                head: max(try Self.lastChange(practice: practice, db: db), lastPurge, floor),
                floor: floor,
                lastPurge: lastPurge
            )
        }
    }

    /// The highest feed position of a practice: its last change, or a later purge (or compaction floor, when
    /// compaction dropped the last changes).
    static func feedHead(practice: String, db: Database) throws -> Int64 {
        max(
            try lastChange(practice: practice, db: db),
            try purgeHead(practice: practice, db: db),
            try feedFloor(practice: practice, db: db)
        )
    }

    /// The feed position of a practice's last change (0 without one).
    static func lastChange(practice: String, db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM change WHERE practice = ?", arguments: [practice]) ?? 0
    }

    public func pull(
        token: TokenEntry,
        replica: ReplicaID?,
        report: DeviceReport = DeviceReport(),
        since: Int64,
        limit: Int,
        now: UInt64 = 0,
        deviceEpoch: String? = nil
    ) async throws(ServerError) -> FeedPage {
        let practice = token.practice
        let scoped = !token.scope.isWholePractice
        try FeedPlanner.requireReplica(replica, scope: token.scope)
        // A whole-practice pull reads its page, then records where the device stands
        // (``recordPull(_:practice:report:now:pulledTo:from:placed:)``). A scoped pull also records which patients
        // the device was sent or told to leave, with its page: `writing`, in a write transaction. Read without
        // `writing`, a scoped page that would change that record is not made (`nil`): it is made again, writing.
        let body = { @Sendable (db: Database, writing: Bool) throws -> FeedPage? in
            // One read of the head: the page's transaction sees the same one when it is caught up.
            let head = try Self.feedHead(practice: practice, db: db)
            try EpochRule.checkPull(
                since: since,
                head: head,
                deviceEpoch: deviceEpoch,
                epoch: deviceEpoch != nil && since > 0 ? Self.epoch(db: db) : nil
            )
            try Self.requireServable(since: since, practice: practice, db: db)
            // The device holds its own changes already: they are left out in the scan, so a device that has
            // just pushed a whole practice does not page through it.
            // A row is a run of changes up to the position `seq` (``ChangeRuns``): the first row may hold changes
            // at or below `since`, already sent, and a page may end inside a row. At most `limit + 1` rows hold
            // the `limit + 1` changes that say whether more follow.
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT seq, count, type, id, owner, payload, creates FROM change
                        WHERE practice = ? AND seq > ? AND replica IS NOT ?
                        ORDER BY seq LIMIT ?
                        """
                ),
                arguments: [practice, since, replica?.rawValue, limit + 1]
            )
            var feed: [FeedPlanner.FeedRow] = []
            var positions: [Int64] = []
            var created: Set<RecordRef> = []
            scan: while let row = try rows.next() {
                let seq: Int64 = row["seq"]
                let count: Int = row["count"]
                guard let changes = StoredChange.decodeRun([UInt8](row["payload"] as Data)), changes.count == count
                else {
                    throw ServerError(.internalError, .internalServerError, "a stored change could not be read")
                }
                let record = RecordRef(type: row["type"], id: row["id"])
                let owner: String? = row["owner"]
                for (offset, change) in changes.enumerated() {
                    let position = ChangeRuns.position(of: offset, inRowAt: seq, count: count)
                    guard position > since else { continue }
                    if feed.count > limit { break scan }
                    feed.append(FeedPlanner.FeedRow(record: record, owner: owner, change: change))
                    positions.append(position)
                    if row["creates"] as Bool { created.insert(record) }
                }
            }
            let hasMore = feed.count > limit
            if hasMore {
                feed.removeLast()
                positions.removeLast()
            }
            var checkpoint = positions.last ?? since
            // Caught up: move past any purge, so it is announced once.
            if !hasMore { checkpoint = max(checkpoint, head) }
            let purged = try Self.purged(practice: practice, since: since, db: db)
            guard scoped, let replica else {
                return FeedPage(
                    changes: feed.map(\.change),
                    checkpoint: checkpoint,
                    hasMore: hasMore,
                    removed: purged,
                    created: created
                )
            }
            let inScope = try Self.patients(in: token.scope, practice: practice, db: db)
            let known = try Self.devicePatients(practice: practice, replica: replica, db: db)
            let page = FeedPlanner.scopedPage(rows: feed, inScope: inScope, known: known, since: since)
            guard writing else {
                // Most pulls change nothing of what the device holds: answered from this read.
                if !page.forgotten.isEmpty || !page.entering.isEmpty || !page.removed.isEmpty { return nil }
                return FeedPage(
                    changes: page.changes,
                    checkpoint: checkpoint,
                    hasMore: hasMore,
                    removed: purged,
                    created: created
                )
            }
            try Self.recordDevice(
                replica,
                practice: practice,
                report: report,
                now: now,
                pulledTo: checkpoint,
                pulledFrom: since,
                db: db
            )
            for patient in page.forgotten {
                try db.execute(
                    sql: "DELETE FROM device_patient WHERE practice = ? AND replica = ? AND patient = ?",
                    arguments: [practice, replica.rawValue, patient]
                )
            }
            for (patients, state) in [(page.entering, "in"), (page.removed, "out")] {
                for patient in patients {
                    try db.cachedStatement(
                        sql: """
                            INSERT INTO device_patient (practice, replica, patient, state, at, atSince)
                            VALUES (?, ?, ?, ?, ?, ?)
                            ON CONFLICT (practice, replica, patient) DO UPDATE
                            SET state = excluded.state, at = excluded.at, atSince = excluded.atSince
                            """
                    ).execute(arguments: [practice, replica.rawValue, patient, state, checkpoint, since])
                }
            }
            var records: [SnapshotRecord] = []
            for patient in page.entering {
                for row in try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT type, id, state FROM record
                            WHERE practice = ? AND ((type = 'patient' AND id = ?) OR owner = ?) ORDER BY type, id
                            """
                    ),
                    arguments: [practice, patient, patient]
                ) {
                    let ref = RecordRef(type: row["type"], id: row["id"])
                    records.append(
                        SnapshotRecord(
                            record: ref,
                            state: try Self.mergedState(
                                Array(row["state"] as Data),
                                practice: practice,
                                ref: ref,
                                db: db
                            )
                        )
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
        /// The page made writing (it always is).
        let written = { @Sendable (db: Database) throws -> FeedPage in
            guard let page = try body(db, true) else {
                throw ServerError(.internalError, .internalServerError, "a pull page could not be made")
            }
            return page
        }
        guard let replica else { return try await scoped ? writeAsync(written) : readAsync(written) }
        let (read, placed) = try await readAsync { db in
            let page = try body(db, false)
            // Whether the store knows where the device stands already (it has pulled before).
            let placed = try Bool.fetchOne(
                db,
                sql: "SELECT pulledFrom IS NOT NULL FROM device WHERE practice = ? AND replica = ?",
                arguments: [practice, replica.rawValue]
            )
            return (page, placed ?? false)
        }
        // A scoped page that changes which patients the device holds: made again in one write transaction with
        // that record (the device's pull recorded with it).
        guard let page = read else { return try await writeAsync(written) }
        try await recordPull(
            replica,
            practice: practice,
            report: report,
            now: now,
            pulledTo: page.checkpoint,
            from: since,
            placed: placed
        )
        return page
    }

    /// Records that `replica` pulled from `since` to `pulledTo` (``recordDevice(_:practice:report:now:pushed:pulledTo:pulledFrom:db:)``):
    /// at once when SQLite's one writer is free or the device has no recorded position yet (`placed` false);
    /// otherwise queued for the writer, and the page is answered without waiting. A device pulling beside its own
    /// push (``SyncEngine``) would otherwise wait for each of the push's batches (about a tenth of a second each,
    /// in the two sites' benchmark) before it could write its next page. Queued on the writer's serial queue, the
    /// record is written before any write asked for after the answer (the device's next pull) and before the
    /// server stops (``finishWrites()``). A crash or a failed write can lose it: the device's recorded position
    /// then stays the one before, lower, which holds compaction back further (``CompactionPlanner``), never less.
    func recordPull(
        _ replica: ReplicaID,
        practice: String,
        report: DeviceReport,
        now: UInt64,
        pulledTo: Int64,
        from since: Int64,
        placed: Bool
    ) async throws(ServerError) {
        let record = { @Sendable (db: Database) throws in
            try Self.recordDevice(
                replica,
                practice: practice,
                report: report,
                now: now,
                pulledTo: pulledTo,
                pulledFrom: since,
                db: db
            )
        }
        if Self.recordsBeforeAnswer(placed: placed, writesWaiting: writesWaiting.load(ordering: .relaxed)) {
            return try await writeAsync(record)
        }
        let logger = self.logger
        pool.asyncWrite(record) { _, result in
            if case .failure(let error) = result {
                logger.error("recording a device's pull failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Whether a whole-practice pull's record is written before the pull is answered: when no write waits for
    /// SQLite's writer, or when the device has no recorded position yet (`placed` false: a lost first record would
    /// leave the device holding nothing back from compaction).
    static func recordsBeforeAnswer(placed: Bool, writesWaiting: Int) -> Bool {
        !placed || writesWaiting == 0
    }

    /// Waits for the writes queued for SQLite's writer (``recordPull(_:practice:report:now:pulledTo:from:placed:)``):
    /// an empty write runs after them.
    public func finishWrites() async {
        _ = try? await writeAsync { _ in }
    }

    /// What a scoped device was last sent of each patient.
    static func devicePatients(
        practice: String,
        replica: ReplicaID,
        db: Database
    ) throws -> [String: FeedPlanner
        .DevicePatient]
    {
        var known: [String: FeedPlanner.DevicePatient] = [:]
        for row in try Row.fetchAll(
            db,
            sql: "SELECT patient, state, at, atSince FROM device_patient WHERE practice = ? AND replica = ?",
            arguments: [practice, replica.rawValue]
        ) {
            known[row["patient"]] = FeedPlanner.DevicePatient(
                isIn: row["state"] as String == "in",
                at: row["at"],
                atSince: row["atSince"]
            )
        }
        return known
    }

    public func snapshot(
        token: TokenEntry,
        replica: ReplicaID?,
        after cursor: RecordRef?,
        limit: Int,
        sparingOwn: Bool = false
    ) async throws(ServerError) -> SnapshotSlice {
        let practice = token.practice
        let scoped = !token.scope.isWholePractice
        let spared = sparingOwn ? replica : nil
        // `writing`: in a write transaction, which a scoped device's pages need when they record what it is sent
        // (its first page) or told to leave (a later page, when a patient left the scope during the walk). Read
        // without `writing`, a later page that would record a leaver is not made (`nil`): it is made again, writing.
        let body = { @Sendable (db: Database, writing: Bool) throws -> SnapshotSlice? in
            let head = try Self.feedHead(practice: practice, db: db)
            var visibility = FeedPlanner.Visibility.wholePractice
            var removed: [String] = []
            var leftScope: [String] = []
            if cursor == nil {
                // Every purge is at or before the head: the pulls from it announce the later ones.
                removed = FeedPlanner.removedOnBootstrap(
                    purged: try Self.purged(practice: practice, since: 0, db: db),
                    known: [],
                    inScope: nil
                )
            }
            if scoped {
                var inScope = try Self.patients(in: token.scope, practice: practice, db: db)
                if cursor != nil, let replica {
                    // The pages after the first: the patients the first page recorded as sent to the device that
                    // are still in scope; those that left are recorded as told to leave
                    // (``FeedPlanner/snapshotPatients(recorded:inScope:)``).
                    let walk = FeedPlanner.snapshotPatients(
                        recorded: try Self.devicePatients(practice: practice, replica: replica, db: db),
                        inScope: inScope
                    )
                    inScope = walk.patients
                    if !writing && !walk.leaving.isEmpty { return nil }
                    for patient in walk.leaving {
                        try db.cachedStatement(
                            sql: """
                                UPDATE device_patient SET state = 'out', at = ?, atSince = ?
                                WHERE practice = ? AND replica = ? AND patient = ?
                                """
                        ).execute(arguments: [head, head, practice, replica.rawValue, patient])
                    }
                }
                visibility = .patients(inScope)
                if cursor == nil, let replica {
                    // The first page: what the device was sent before, then every patient now in its scope, as of
                    // the head.
                    let known = try Self.devicePatients(practice: practice, replica: replica, db: db)
                    let purged = removed
                    removed = FeedPlanner.removedOnBootstrap(purged: purged, known: known.keys, inScope: inScope)
                    leftScope = FeedPlanner.leftScope(removed: removed, purged: purged)
                    try db.execute(
                        sql: "DELETE FROM device_patient WHERE practice = ? AND replica = ?",
                        arguments: [practice, replica.rawValue]
                    )
                    for (patient, entry) in FeedPlanner.bootstrapRecord(known: known, inScope: inScope, head: head) {
                        try db.cachedStatement(
                            sql: """
                                INSERT INTO device_patient (practice, replica, patient, state, at, atSince)
                                VALUES (?, ?, ?, ?, ?, ?)
                                """
                        ).execute(arguments: [
                            practice, replica.rawValue, patient, entry.isIn ? "in" : "out", entry.at, entry.atSince,
                        ])
                    }
                }
            }
            // The walk goes type after type, each type walked as the visibility says (only the records of the
            // scope, by the keys that find them), and reads each state in the same step as its id.
            let patients = try Self.jsonArray(visibility.sortedPatients)
            var start = cursor
            var walkedType: String?
            var rows: RowCursor?
            // The walked type's tails, in id order beside its records when the walk reads the whole type (a record
            // with one has it merged in); a scope's walk reads each record's tail by its key.
            var tails: RowCursor?
            var nextTail: (id: String, payload: [UInt8])?
            var walkedState: [UInt8] = []
            var kept: [[UInt8]] = []
            let page = try FeedPlanner.snapshotPage(
                limit: limit,
                visibility: visibility,
                walkLimit: spared == nil ? .max : limit * FeedPlanner.sparedWalkPages,
                next: { () throws -> (record: RecordRef, owner: String?)? in
                    while true {
                        if let row = try rows?.next() {
                            // Copied once, straight from SQLite's buffer (valid until the cursor moves on).
                            walkedState = try row.withUnsafeData(named: "state") { $0.map { Array($0) } ?? [] }
                            let id: String = row["id"]
                            var payloads: [[UInt8]] = []
                            if tails == nil {
                                // A scope's walk: its records' tails by their keys, not the whole type's.
                                let ref = RecordRef(type: walkedType ?? "", id: id)
                                payloads = try Self.tailPayloads(practice: practice, ref: ref, db: db)
                            }
                            // Ids compared as SQLite orders them, byte by byte.
                            while let tail = nextTail, !SQLiteText.precedes(id, tail.id) {
                                if tail.id == id { payloads.append(tail.payload) }
                                nextTail = try tails?.next().map { ($0["id"], Array($0["payload"] as Data)) }
                            }
                            walkedState = try Self.mergedBytes(walkedState, payloads: payloads)
                            return (RecordRef(type: walkedType ?? "", id: id), row["owner"])
                        }
                        let type: String
                        var after = ""
                        if let first = start {
                            (type, after, start) = (first.type, first.id, nil)
                        } else {
                            guard
                                let found = try String.fetchOne(
                                    db.cachedStatement(
                                        sql: "SELECT MIN(type) FROM record WHERE practice = ? AND type > ?"
                                    ),
                                    arguments: [practice, walkedType ?? ""]
                                )
                            else { return nil }
                            type = found
                        }
                        walkedType = type
                        rows = try Row.fetchCursor(
                            db.cachedStatement(sql: Self.snapshotWalk(visibility.walk(type: type))),
                            arguments: [practice, type, patients, after]
                        )
                        // The whole type walked: its tails in a cursor beside it.
                        tails = nil
                        nextTail = nil
                        if visibility.walk(type: type) == .every {
                            tails = try Row.fetchCursor(
                                db.cachedStatement(
                                    sql: """
                                        SELECT id, payload FROM record_tail WHERE practice = ? AND type = ? AND id > ?
                                        ORDER BY id, seq
                                        """
                                ),
                                arguments: [practice, type, after]
                            )
                            nextTail = try tails?.next().map { ($0["id"], Array($0["payload"] as Data)) }
                        }
                    }
                },
                spares: { _ throws -> Bool in
                    if let spared, try FeedPlanner.isOwn(walkedState, by: spared) { return true }
                    kept.append(walkedState)
                    return false
                }
            )
            // The page's records are the first of those kept, in walk order.
            let records = zip(page.records, kept).map { StoredRecordState(record: $0, state: $1) }
            return SnapshotSlice(
                records: records,
                checkpoint: head,
                next: page.next,
                removed: removed,
                leftScope: leftScope
            )
        }
        let written = { @Sendable (db: Database) throws -> SnapshotSlice in
            guard let slice = try body(db, true) else {
                throw ServerError(.internalError, .internalServerError, "a snapshot page could not be made")
            }
            return slice
        }
        // A scoped device's first page records what it is sent: a write. Its later pages are read, and made again
        // writing only when a patient left its scope during the walk.
        guard scoped, replica != nil else { return try await readAsync(written) }
        if cursor == nil { return try await writeAsync(written) }
        if let slice = try await readAsync({ db in try body(db, false) }) { return slice }
        return try await writeAsync(written)
    }

    /// The query that walks one type of a snapshot page (``FeedPlanner/TypeWalk``) in id order: arguments the
    /// practice, the type, the scope's patients as a JSON array of ids, and the id to walk from (excluded). A
    /// scope's records are found by their keys (the patients by id, the others through `record_by_owner`), so a
    /// scoped walk reads no record outside the scope.
    static func snapshotWalk(_ walk: FeedPlanner.TypeWalk) -> String {
        switch walk {
        case .every:
            "SELECT id, owner, state FROM record WHERE practice = ?1 AND type = ?2 AND id > ?4 ORDER BY id"
        case .patientsInScope:
            """
            SELECT id, owner, state FROM record
            WHERE practice = ?1 AND type = ?2 AND id IN (SELECT value FROM json_each(?3)) AND +id > ?4
            ORDER BY id
            """
        case .ownedInScope:
            """
            SELECT id, owner, state FROM record
            WHERE practice = ?1 AND type = ?2 AND id IN (
                SELECT id FROM record INDEXED BY record_by_owner
                WHERE practice = ?1 AND type = ?2 AND owner IN (SELECT value FROM json_each(?3)) AND id > ?4
            )
            ORDER BY id
            """
        }
    }

    /// `strings` as a JSON array, for SQLite's `json_each`.
    static func jsonArray(_ strings: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(strings), as: UTF8.self)
    }

    public func openConflictCount(practice: String? = nil) async throws(ServerError) -> Int {
        try await readAsync { db in
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

/// The rows a push's context read its records' states from, kept when it decoded only the fields the judge reads
/// (``PushJudge/fieldsRead(by:of:)``): a record the push writes whole (a new owner, a long tail) is merged whole
/// from them, in the same transaction, instead of being read again.
struct PartlyRead {
    /// Each stored record the push writes: its state's and its tail's stored bytes, in key order.
    let rows: [(ref: RecordRef, state: [UInt8], tail: [[UInt8]])]

    /// `ref`'s whole state as read, with its tail and `changes` merged in.
    func whole(_ ref: RecordRef, with changes: [Change]) throws -> RecordState {
        let slot = rows.sortedSlot(of: ref, by: \.ref)
        guard slot.found else {
            throw ServerError(.internalError, .internalServerError, "a record this push read was not kept")
        }
        var state = try ServerStore.merged(rows[slot.index].state, payloads: rows[slot.index].tail)
        for change in changes { state.apply(change) }
        return state
    }
}
