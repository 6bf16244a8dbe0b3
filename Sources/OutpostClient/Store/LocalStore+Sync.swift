import Foundation
import GRDB
import OutpostCRDT
import OutpostModel
public import OutpostProtocol
import OutpostSQLite

/// The server a replica syncs with.
public struct Remote: Sendable, Hashable {
    /// The server's base URL, e.g. `http://127.0.0.1:8787`.
    public var url: URL
    /// The bearer token's secret.
    public var token: String

    /// Creates a remote.
    public init(url: URL, token: String) {
        self.url = url
        self.token = token
    }
}

extension LocalStore {
    static let tokenSetting = "remote.token"
    /// The setting holding what the server's session last said (``SyncEngine/sync()`` reads the session beside
    /// its first request with it); forgotten when the server or the token changes.
    static let sessionSetting = "remote.session"

    /// The server this replica syncs with, if one is set.
    public func remote() throws(ClientError) -> Remote? {
        try read(doing: "read the server settings") { db in
            guard let text = try String.fetchOne(db, sql: "SELECT serverURL FROM replica WHERE id = 1"),
                let url = URL(string: text),
                let token = try String.fetchOne(
                    db,
                    sql: "SELECT value FROM setting WHERE key = ?",
                    arguments: [Self.tokenSetting]
                )
            else { return nil }
            return Remote(url: url, token: token)
        }
    }

    /// Sets (or, with `nil`, clears) the server. Changing the server forgets the sync checkpoint, so the next
    /// sync bootstraps from the new server; the outbox is kept and pushed there. The session and the role the old
    /// token had are forgotten either way.
    public func setRemote(_ remote: Remote?) throws(ClientError) {
        try write(doing: "save the server settings") { db in
            let previous = try String.fetchOne(db, sql: "SELECT serverURL FROM replica WHERE id = 1")
            if previous != remote?.url.absoluteString {
                try db.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1")
            }
            try db.execute(
                sql: "UPDATE replica SET serverURL = ? WHERE id = 1",
                arguments: [remote?.url.absoluteString]
            )
            // What the old token's session said, its role included: the new one's is read again at its first
            // session (a role left behind would refuse an admin's edits, or let a clinician's through).
            try db.execute(
                sql: "DELETE FROM setting WHERE key IN (?, ?)",
                arguments: [Self.sessionSetting, SyncEngine.roleSetting]
            )
            if let remote {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO setting (key, value) VALUES (?, ?)",
                    arguments: [Self.tokenSetting, remote.token]
                )
            } else {
                try db.execute(sql: "DELETE FROM setting WHERE key = ?", arguments: [Self.tokenSetting])
            }
        }
    }

    /// The feed position this replica has applied up to, or `nil` before its first bootstrap.
    public func checkpoint() throws(ClientError) -> String? {
        try read(doing: "read the sync checkpoint") { db in
            try String.fetchOne(db, sql: "SELECT checkpoint FROM replica WHERE id = 1")
        }
    }

    /// The ids of the records a layout-3 message names by `abbreviations` (``RecordAbbreviation``), in the same
    /// order: the one record with each among this store's and `alsoHeld` (a page being written, whose records
    /// the store holds once it commits), `nil` where there is none or more than one.
    public func resolve(
        _ abbreviations: [RecordAbbreviation],
        alsoHeld: [RecordRef] = []
    ) throws(ClientError) -> [String?] {
        guard !abbreviations.isEmpty else { return [] }
        let pending = Dictionary(grouping: alsoHeld) { RecordAbbreviation($0) }
        return try read(doing: "look up the records a page names by abbreviation") { db in
            // Bound through SQLite's C API (``GRDB/Database/forEachRow(_:values:_:)``): a pull page of the two sites'
            // edits names about 4,600 records, each looked up here.
            let statement = try db.cachedStatement(
                sql:
                    "SELECT id FROM record WHERE type = ?1 AND id BETWEEN ?2 AND ?3 AND length(id) = length(?2) LIMIT 2"
            )
            return try abbreviations.map { abbreviation in
                var ids = Set<String>()
                try db.forEachRow(
                    statement,
                    values: [
                        abbreviation.type.databaseValue, abbreviation.lowestID.databaseValue,
                        abbreviation.highestID.databaseValue,
                    ]
                ) { row in
                    if let id = row.text(0) { ids.insert(id) }
                }
                for record in pending[abbreviation] ?? [] { ids.insert(record.id) }
                return abbreviation.resolve(among: ids)
            }
        }
    }

    /// Forgets the checkpoint, so the next sync bootstraps again (the server could not serve it).
    public func forgetCheckpoint() throws(ClientError) {
        try write(doing: "forget the sync checkpoint") { db in
            try db.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1")
        }
    }

    /// Records a successful sync's time.
    public func markSynced(atMillis now: UInt64) throws(ClientError) {
        try write(doing: "record the sync time") { db in
            try db.execute(sql: "UPDATE replica SET lastSyncAt = ? WHERE id = 1", arguments: [Int64(now)])
        }
    }

    /// The highest local counter the server has acknowledged.
    public func acknowledgedCounter() throws(ClientError) -> UInt64 {
        try read(doing: "read the outbox position") { db in
            UInt64(try Int64.fetchOne(db, sql: "SELECT ackedCounter FROM replica WHERE id = 1") ?? 0)
        }
    }

    /// Merges one page of a snapshot; with `checkpoint`, also records where to pull from afterwards, in the
    /// same transaction.
    @discardableResult
    public func applySnapshot(_ records: [SnapshotRecord], checkpoint: String?) throws(ClientError) -> ApplyReport {
        try applyPage(changes: [], records: records, removed: [], checkpoint: checkpoint)
    }

    /// Applies one pulled page in one transaction: records of patients that entered the scope (merged like a
    /// snapshot), the changes, the removal of patients that left the scope, and the new checkpoint.
    ///
    /// A removed patient's records, history and conflicts go; its pending local changes stay in the outbox
    /// (the server refused them, or they are still to be pushed), so nothing entered here is lost. Of a patient
    /// named in `leftScope` too (it left this device's scope, and was not purged), this replica's own changes are
    /// kept, sealed, to send again to a server restored from a backup that lacks them
    /// (``adoptServerEpoch(_:serverHolds:)``); of any other id removed, nothing is kept. `leftScope` is `nil` when the
    /// server does not say which removals are purges (before `leftScope`): then nothing is kept, nor dropped.
    ///
    /// ``applyRemote(_:checkpoint:)`` and ``applySnapshot(_:checkpoint:)`` are this with no records, or no
    /// changes. Changes and records already held count as duplicates; without `checkpoint` the sync position
    /// stays where it was.
    @discardableResult
    public func applyPage(
        changes: [Change],
        records: [SnapshotRecord],
        removed: [String],
        leftScope: [String]? = nil,
        checkpoint: String?
    )
        throws(ClientError) -> ApplyReport
    {
        try applyPage(
            changes: changes,
            records: records,
            forms: nil,
            removed: removed,
            leftScope: leftScope,
            checkpoint: checkpoint
        ).report
    }

    /// What ``applyPage(changes:records:forms:removed:checkpoint:preloaded:unprojected:)`` did.
    struct AppliedPage {
        /// What the page changed.
        var report: ApplyReport
        /// The records taken from the records read ahead.
        var preloadedUsed: Int
        /// The records written at once as new to the store (``StoreTransaction/writeNew(_:_:_:)``).
        var writtenAtOnce: Int
    }

    /// ``applyPage(changes:records:removed:checkpoint:)`` with the records' forms prepared beforehand
    /// (``prepare(_:)``, in the records' order; `nil`: none), taking the records its changes touch from
    /// `preloaded` where they are still as read (``usable(_:generation:written:)``); `preloadedUsed` counts the
    /// records taken so. `unprojected` is the page's ``Projection/unprojected(by:carrying:)`` of `changes` and
    /// `records` when the caller has it already (a pipelined pull works it out for its read ahead, off the
    /// writer); `nil` has it worked out here.
    func applyPage(
        changes: [Change],
        records: [SnapshotRecord],
        forms: [PreparedRecord?]?,
        removed: [String],
        leftScope: [String]? = nil,
        checkpoint: String?,
        preloaded: PreloadedRecords? = nil,
        unprojected: Set<RecordRef>? = nil
    )
        throws(ClientError) -> AppliedPage
    {
        try writeTouching(doing: "apply received changes") { db in
            let transaction = try StoreTransaction(db: db, store: self)
            if let preloaded {
                transaction.preloaded = Self.usable(
                    preloaded,
                    generation: transaction.generation,
                    written: writeLog.entries(after: preloaded.generation, upTo: transaction.generation)
                )
            }
            let now = transaction.now
            // A record the page's changes only write fields of that its projected rows do not read (a note, a
            // phone) is loaded without them, and they are left as they are.
            transaction.unprojected = unprojected ?? Projection.unprojected(by: changes, carrying: records)
            assert(
                unprojected == nil || unprojected == Projection.unprojected(by: changes, carrying: records),
                "a page's unprojected records worked out for another page"
            )
            // One read for the page's records, not one per record: a new device holds none of them. A page in key
            // order (as the server sends a snapshot's) gives each type's range of ids from its runs in one pass.
            let ordered = Self.orderedRanges(records)
            let held: Set<RecordRef> =
                records.isEmpty
                ? []
                : try ordered.map { try transaction.heldRecords(in: $0) }
                    ?? transaction.heldRecords(among: records.lazy.map(\.record))
            // A snapshot page whose records are each named once (in key order, as the server sends them): a record
            // new to the store is written at once from its prepared form (``StoreTransaction/writeNew(_:_:_:)``).
            let formed = forms?.count == records.count
            assert(forms == nil || formed, "a page's prepared forms are not its records'")
            let writesNew = changes.isEmpty && formed && ordered != nil
            for (index, record) in records.enumerated() {
                let form: PreparedRecord? = if formed, let forms { forms[index] } else { nil }
                // Every write's clock, received at once when all are behind the wall clock, from their count (made
                // when the record was prepared, off the writer, or here); otherwise each one, read in place (a field
                // or write copied out retains and releases its strings).
                let clocks = form?.clocks ?? record.state.liveClockSummary
                if !transaction.clock.receive(count: clocks.count, latestMillis: clocks.latestMillis, wallMillis: now) {
                    let fields = record.state.sortedFields
                    for position in fields.indices {
                        let live = fields[position].state.live
                        for write in live.indices {
                            _ = try? transaction.clock.receive(live[write].clock, wallMillis: now)
                        }
                    }
                }
                let isHeld = !held.isEmpty && held.contains(record.record)
                let isNew: Bool
                if writesNew, !isHeld, let form {
                    isNew = try transaction.writeNew(record.record, record.state, form)
                } else {
                    isNew = try transaction.merge(record.record, record.state, isHeld: isHeld, prepared: form)
                }
                if isNew {
                    transaction.report.applied += 1
                } else {
                    transaction.report.duplicates += 1
                }
            }
            // The records the changes touch, loaded in key order first: their rows and tails are then read walking
            // the record table and the change log's index once, not at a random page per change (a record named
            // twice is loaded once: the transaction holds it).
            try transaction.load(changes.map(\.record).sorted())
            for change in changes {
                try checkSchema(change)
                _ = try? transaction.clock.receive(change.clock, wallMillis: now)
                if try transaction.apply(change, isLocal: change.id.replica == replicaID) {
                    transaction.report.applied += 1
                } else {
                    transaction.report.duplicates += 1
                }
            }
            if let checkpoint {
                try db.execute(sql: "UPDATE replica SET checkpoint = ? WHERE id = 1", arguments: [checkpoint])
            }
            try transaction.finish(now: now)
            // A removal may delete any record of the patients removed.
            let written = removed.isEmpty ? transaction.writtenRecords : nil
            var applied = AppliedPage(
                report: transaction.report,
                preloadedUsed: transaction.preloadedUsed,
                writtenAtOnce: transaction.writtenAtOnce
            )
            transaction.releaseHeldAside()
            if !removed.isEmpty {
                applied.report.removedPatients += try remove(removed, leftScope: leftScope.map(Set.init), db: db)
            }
            return (applied, written)
        }
    }

    /// Removes the patients (and the records they own) and the records `removed` names, in the page's transaction;
    /// returns how many patients this store held of them. Pending local changes stay in the outbox.
    ///
    /// Of a patient in `leftScope` (it left the scope, and was not purged), this replica's changes to its records
    /// are kept in `retried_change`, unsent, with the patient's id: a server restored from a backup taken before it
    /// stored them lacks them, and after a restore only a change's author sends it again
    /// (``adoptServerEpoch(_:serverHolds:)``). Those still in the outbox are kept too: pushed after the removal
    /// (``SyncEngine`` pushes edits made while the removal was on its way), their log rows outlive their record, and
    /// `outpost compact` drops such rows.
    ///
    /// Any other id is a purge: nothing of it is kept. Every record of it this store knows (those it holds, and those
    /// whose changes it kept, or held aside refused, when the patient left) loses its kept and refused copies and the
    /// acknowledged rows of its change log, held or not. `leftScope` `nil` is a server that does not say which
    /// removals are purges (before `leftScope`, or a page in binary layout 4 or older): the records go, and nothing
    /// is kept or dropped besides, as before `leftScope`.
    private func remove(_ removed: [String], leftScope: Set<String>?, db: Database) throws -> Int {
        let acked = try Int64.fetchOne(db, sql: "SELECT ackedCounter FROM replica WHERE id = 1") ?? 0
        var patients = 0
        for id in removed {
            // A patient goes with the records it owns. Another record is named when a purge erased it on the
            // server after this device pulled part of it without an owner (protocol/README.md, "Erased
            // patients"): it goes alone.
            let type = RecordType(idPrefixOf: id)
            let isPatient = (type ?? .patient) == .patient
            let held = try Row.fetchAll(
                db,
                sql: isPatient
                    ? "SELECT type, id FROM record WHERE (type = 'patient' AND id = ?1) OR owner = ?1"
                    : "SELECT type, id FROM record WHERE id = ?1 AND type = ?2",
                arguments: isPatient ? [id] : [id, type?.rawValue]
            ).map { RecordRef(type: $0["type"], id: $0["id"]) }
            if !held.isEmpty && isPatient { patients += 1 }
            if let leftScope, isPatient && leftScope.contains(id) {
                for record in held { try seal(record, of: id, db: db) }
            } else if leftScope != nil {
                var known = Set(held)
                known.insert(RecordRef(type: type?.rawValue ?? RecordType.patient.rawValue, id: id))
                if isPatient {
                    for row in try Row.fetchAll(
                        db,
                        sql: """
                            SELECT type, id FROM retried_change WHERE patient = ?1
                            UNION SELECT type, id FROM refused_change WHERE patient = ?1
                            """,
                        arguments: [id]
                    ) {
                        known.insert(RecordRef(type: row["type"], id: row["id"]))
                    }
                    try db.execute(sql: "DELETE FROM retried_change WHERE patient = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM refused_change WHERE patient = ?", arguments: [id])
                }
                for record in known {
                    let arguments: StatementArguments = [record.type, record.id]
                    try db.execute(sql: "DELETE FROM retried_change WHERE type = ? AND id = ?", arguments: arguments)
                    try db.execute(sql: "DELETE FROM refused_change WHERE type = ? AND id = ?", arguments: arguments)
                }
                // The log rows of records no longer held (those held go below).
                for record in known.subtracting(held) {
                    try db.execute(
                        sql: "DELETE FROM change WHERE type = ? AND id = ? AND NOT (isLocal = 1 AND maxCounter > ?)",
                        arguments: [record.type, record.id, acked]
                    )
                }
            }
            for record in held {
                let arguments: StatementArguments = [record.type, record.id]
                try db.execute(
                    sql: "DELETE FROM change WHERE type = ? AND id = ? AND NOT (isLocal = 1 AND maxCounter > ?)",
                    arguments: [record.type, record.id, acked]
                )
                try db.execute(sql: "DELETE FROM conflict WHERE type = ? AND id = ?", arguments: arguments)
                try db.execute(sql: "DELETE FROM record WHERE type = ? AND id = ?", arguments: arguments)
                try Projection.remove(record, db: db)
            }
        }
        return patients
    }

    /// Keeps a copy of each of this replica's changes to `record` in its change log, acknowledged or still in the
    /// outbox, as `patient`'s in `retried_change` (`sealed`: sent again only after a restore, and only when above
    /// what the restored store holds), and marks as `patient`'s the copies kept already (a retried change's), for
    /// its purge to find (``remove(_:leftScope:db:)``), and so the changes held aside after a refusal, or
    /// discarded: those stay as the clinician left them, and are not copied.
    private func seal(_ record: RecordRef, of patient: String, db: Database) throws {
        for table in ["retried_change", "refused_change"] {
            try db.execute(
                sql: "UPDATE \(table) SET patient = ? WHERE type = ? AND id = ?",
                arguments: [patient, record.type, record.id]
            )
        }
        let payloads = try Data.fetchAll(
            db,
            sql: "SELECT payload FROM change WHERE type = ? AND id = ? AND isLocal = 1",
            arguments: [record.type, record.id]
        )
        for payload in payloads {
            for change in try codec.decodeChanges(payload, of: record) where change.id.replica == replicaID {
                try db.execute(
                    sql: """
                        INSERT INTO retried_change (counter, type, id, payload, patient, sealed)
                        SELECT ?1, ?2, ?3, ?4, ?5, 1 WHERE NOT EXISTS (SELECT 1 FROM refused_change WHERE counter = ?1)
                        ON CONFLICT (counter) DO UPDATE SET patient = excluded.patient
                        """,
                    arguments: [
                        Int64(change.id.counter), record.type, record.id, try codec.encode([change], of: record),
                        patient,
                    ]
                )
            }
        }
    }

    /// For `records` in strictly increasing key order as SQLite compares the record table's key (type, then id, by
    /// their UTF-8 bytes; then no record is named twice, byte for byte), each type's run as the range of its ids,
    /// first to last, for ``StoreTransaction/heldRecords(in:)``; `nil` when they are not so ordered.
    static func orderedRanges(_ records: [SnapshotRecord]) -> [StoreTransaction.IDRange]? {
        guard let first = records.first?.record else { return [] }
        var ranges = [StoreTransaction.IDRange(type: first.type, low: first.id, high: first.id)]
        for index in records.indices.dropFirst() {
            let previous = records[index - 1].record
            let record = records[index].record
            let types = SQLiteText.order(previous.type, record.type)
            if types > 0 || (types == 0 && SQLiteText.order(previous.id, record.id) >= 0) { return nil }
            if types == 0 {
                ranges[ranges.count - 1].high = record.id
            } else {
                ranges.append(StoreTransaction.IDRange(type: record.type, low: record.id, high: record.id))
            }
        }
        return ranges
    }

    /// Re-stamps pending changes whose clock is more than `maxSkewMillis` ahead of `serverMillis` (the server
    /// refused them as clock skew): each gets a new clock from the server's time, in counter order, in its
    /// log entry and in its record's state. The server never accepted these changes, so no other replica
    /// holds them. Returns how many were re-stamped.
    public func restampPending(serverMillis: UInt64, maxSkewMillis: UInt64) throws(ClientError) -> Int {
        try write(doing: "re-stamp pending changes") { db in
            let transaction = try StoreTransaction(db: db, store: self)
            let acked = try Int64.fetchOne(db, sql: "SELECT ackedCounter FROM replica WHERE id = 1") ?? 0
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT seq, type, id, payload FROM change WHERE isLocal = 1 AND maxCounter > ? ORDER BY seq",
                arguments: [acked]
            )
            var pending: [(seq: Int64, record: RecordRef, changes: [Change])] = []
            for row in rows {
                let record = RecordRef(type: row["type"], id: row["id"])
                pending.append((row["seq"], record, try codec.decodeChanges(row["payload"], of: record)))
            }
            let limit = serverMillis + maxSkewMillis
            let skewed =
                pending.flatMap(\.changes)
                .filter { $0.id.counter > UInt64(acked) && $0.clock.millis > limit }
                .sorted { $0.id.counter < $1.id.counter }
            guard !skewed.isEmpty else { return 0 }
            // The replica's clock restarts from the server's time; each skewed change gets the next tick.
            var clock = HybridLogicalClock(latest: Timestamp(millis: serverMillis, counter: 0))
            var stamps: [ChangeID: Timestamp] = [:]
            for change in skewed { stamps[change.id] = clock.tick(wallMillis: serverMillis) }
            transaction.clock = clock
            for entry in pending where entry.changes.contains(where: { stamps[$0.id] != nil }) {
                let changes = entry.changes.map { change in
                    var change = change
                    if let stamp = stamps[change.id] { change.clock = stamp }
                    return change
                }
                try db.execute(
                    sql: "UPDATE change SET payload = ? WHERE seq = ?",
                    arguments: [try codec.encode(changes, of: entry.record), entry.seq]
                )
                var fields: [String: FieldState] = [:]
                for field in try transaction.state(of: entry.record).sortedFields {
                    let live = field.state.live.map { write in
                        var write = write
                        if let stamp = stamps[write.id] { write.clock = stamp }
                        return write
                    }
                    fields[field.name] = FieldState(live: live, superseded: field.state.superseded) ?? field.state
                }
                try transaction.replace(entry.record, with: RecordState(fields: fields))
            }
            try transaction.finish(now: transaction.now)
            return skewed.count
        }
    }
}

extension LocalStore {
    /// How far the server's clock is from this device's wall clock, in milliseconds (the server's minus the
    /// device's), as learned at the last sync session; 0 until then, and while the two agree.
    public func clockOffsetMillis() throws(ClientError) -> Int64 {
        try read(doing: "read the clock offset") { db in
            try Int64.fetchOne(db, sql: "SELECT clockOffsetMillis FROM replica WHERE id = 1") ?? 0
        }
    }

    /// Records the offset to the server's clock; every later local edit is stamped with the device's wall
    /// clock plus `offset`. The replica's clock never moves backwards: an edit is always stamped after every
    /// clock this replica issued or accepted.
    public func setClockOffset(millis offset: Int64) throws(ClientError) {
        try write(doing: "save the clock offset") { db in
            try db.execute(sql: "UPDATE replica SET clockOffsetMillis = ? WHERE id = 1", arguments: [offset])
        }
    }

    /// The current time as this replica stamps it: the wall clock corrected by ``clockOffsetMillis()``.
    public func now() throws(ClientError) -> UInt64 {
        Self.corrected(configuration.wallClock.nowMillis(), by: try clockOffsetMillis())
    }

    static func corrected(_ wallMillis: UInt64, by offset: Int64) -> UInt64 {
        offset >= 0
            ? wallMillis &+ UInt64(offset)
            : (UInt64(offset.magnitude) > wallMillis ? 0 : wallMillis - UInt64(offset.magnitude))
    }
}
