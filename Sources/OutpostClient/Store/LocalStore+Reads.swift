import Foundation
import GRDB
public import OutpostCRDT
import OutpostSQLite

/// A conflict waiting in the inbox.
public struct StoredConflict: Sendable, Hashable {
    /// The conflict: record, field and every concurrent value with its provenance.
    public var conflict: FieldConflict
    /// When this replica first saw it (milliseconds since 1970, this device's clock).
    public var detectedAtMillis: UInt64
}

/// A summary of a replica's state, for `outpost status`.
public struct StoreStatus: Sendable, Hashable {
    /// This replica's id.
    public var replicaID: ReplicaID
    /// Local changes the server has not acknowledged yet.
    public var pendingChanges: Int
    /// Conflicts awaiting review.
    public var openConflicts: Int
    /// Records held, by type.
    public var recordCounts: [String: Int]
    /// The server this replica syncs with, if one is set.
    public var serverURL: String?
    /// When the last sync completed (milliseconds since 1970), if ever.
    public var lastSyncAtMillis: UInt64?
    /// The latest clock reading of this replica.
    public var clock: Timestamp
    /// Local changes the server refused, held aside or marked for retry (not those discarded).
    public var refusedChanges = 0
    /// Whether the last sync began and stopped before its end with no checkpoint (the server's epoch recorded, no
    /// bootstrap ended): a new laptop's first sync stopped part way (killed, the link lost), whose store may hold
    /// only part of the practice, or a first push cut off, or a bootstrap after a lost checkpoint. Not after
    /// `outpost remote set` or a discard that forgot the checkpoint without a sync beginning.
    public var syncUnfinished = false
}

extension LocalStore {
    func loadState(_ record: RecordRef, db: Database) throws -> RecordState? {
        try loadStateAndTail(record, db: db)?.state
    }

    /// A record's state with its tail folded in (the change-log rows appended since the state was last
    /// written whole), and whether there was a tail.
    func loadStateAndTail(_ record: RecordRef, db: Database) throws -> HeldRecord? {
        var held: (bytes: Data, tailStart: Int64?, owner: String?)?
        try db.forEachRow(
            cached: "SELECT state, tailStart, owner FROM record WHERE type = ? AND id = ?",
            values: [record.type.databaseValue, record.id.databaseValue]
        ) { row in
            held = (row.data(0), row.isNull(1) ? nil : row.int64(1), row.text(2))
        }
        guard let held else { return nil }
        var state = try codec.decodeState(held.bytes, of: record)
        var tailBytes = 0
        if let tailStart = held.tailStart {
            tailBytes = try foldTail(into: &state, of: record, from: tailStart, db: db)
        }
        return HeldRecord(
            state: state,
            stateBytes: held.bytes.count,
            tailBytes: tailBytes,
            hasTail: held.tailStart != nil,
            owner: held.owner
        )
    }

    /// A record as loaded: its state with the tail folded in, the sizes of its stored state and of the tail rows
    /// read (counted as read: the row's `tailBytes` may count fewer, ``StoreTransaction/finish(now:)``), whether
    /// it has a tail, and its row's owner.
    struct HeldRecord: Sendable {
        var state: RecordState
        var stateBytes: Int
        var tailBytes: Int
        var hasTail: Bool
        var owner: String?
    }

    /// Applies the record's change-log rows from `tailStart` on to `state`; returns their size in bytes.
    @discardableResult
    func foldTail(
        into state: inout RecordState,
        of record: RecordRef,
        from tailStart: Int64,
        db: Database
    ) throws -> Int {
        var bytes = 0
        try db.forEachRow(
            cached: "SELECT payload FROM change WHERE type = ? AND id = ? AND seq >= ? ORDER BY seq",
            values: [record.type.databaseValue, record.id.databaseValue, tailStart.databaseValue]
        ) { row in
            let payload = row.data(0)
            bytes += payload.count
            let changes = try codec.decodeChanges(payload, of: record)
            // A record imported or created here is an empty state and its creation's changes: room for their fields
            // at once, not grown by doubling as they come.
            if state.isEmpty { state.reserveFields(changes.count) }
            for change in changes { state.apply(change) }
        }
        return bytes
    }

    /// Runs `body` in a read transaction, wrapping every failure in a ``ClientError``.
    func read<T>(doing action: String, _ body: (Database) throws -> T) throws(ClientError) -> T {
        do {
            return try writer.read(body)
        } catch {
            throw Self.wrap(error, path: path, doing: action)
        }
    }

    /// The merged state of one record, or `nil` when this replica does not hold it.
    public func record(_ ref: RecordRef) throws(ClientError) -> RecordState? {
        try read(doing: "read a record") { db in try loadState(ref, db: db) }
    }

    /// Every record of `type` (optionally only those owned by `owner`), sorted by id.
    public func records(
        ofType type: String,
        owner: String? = nil
    ) throws(ClientError) -> [(
        id: String, state: RecordState
    )] {
        try read(doing: "list records") { db in
            let rows: RowCursor
            if let owner {
                rows = try Row.fetchCursor(
                    db,
                    sql: "SELECT id, state, tailStart FROM record WHERE type = ? AND owner = ? ORDER BY id",
                    arguments: [type, owner]
                )
            } else {
                rows = try Row.fetchCursor(
                    db,
                    sql: "SELECT id, state, tailStart FROM record WHERE type = ? ORDER BY id",
                    arguments: [type]
                )
            }
            var result: [(id: String, state: RecordState)] = []
            var tails: [(index: Int, tailStart: Int64)] = []
            while let row = try rows.next() {
                let data: Data = row["state"]
                if let tailStart = row["tailStart"] as Int64? { tails.append((result.count, tailStart)) }
                result.append((row["id"], try codec.decodeState(data, of: RecordRef(type: type, id: row["id"]))))
            }
            // Tails are read once the cursor is done (a statement cannot run while the cursor is open).
            for (index, tailStart) in tails {
                let record = RecordRef(type: type, id: result[index].id)
                try foldTail(into: &result[index].state, of: record, from: tailStart, db: db)
            }
            return result
        }
    }

    /// Every change this replica has seen of one record, earliest first (by clock, then change id).
    public func history(of ref: RecordRef) throws(ClientError) -> [Change] {
        try read(doing: "read a record's history") { db in
            let payloads = try Data.fetchAll(
                db,
                sql: "SELECT payload FROM change WHERE type = ? AND id = ? ORDER BY seq",
                arguments: [ref.type, ref.id]
            )
            var changes: [Change] = []
            for payload in payloads {
                changes.append(contentsOf: try codec.decodeChanges(payload, of: ref))
            }
            return changes.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) }
        }
    }

    /// Local changes the server has not acknowledged, in counter order, at most `limit`; with `after`, only
    /// those numbered above it (the next batch of a push still in flight).
    public func pendingChanges(after: UInt64? = nil, limit: Int = .max) throws(ClientError) -> [Change] {
        try pendingBatch(after: after, limit: limit).changes
    }

    /// ``pendingChanges(after:limit:)``, and the records of those changes the server may not hold yet: one a
    /// change of the batch creates (its change-log row says so), or a change sent from its own copy names (held
    /// aside after a refusal). A push names every other record by abbreviation (binary layout 3). `more` says
    /// whether pending changes follow the batch.
    ///
    /// With `wholeRecords`, a batch does not end inside a run of changes to a record this outbox creates that goes
    /// on past it (a record's creation writes its fields in order, one counter each): it ends before the run, unless
    /// the run begins the push (`beginsPush`: no retried change comes before the batch), as a run longer than a
    /// push is split. A server given part of a new record cannot tell whose it is until its owner field arrives; it
    /// holds that part without an owner, out of every scoped device's sight, and a device that pulls it meanwhile
    /// holds a task of no patient (protocol/README.md, "Erased patients"). Runs of edits to records the server
    /// holds are cut anywhere, as before.
    public func pendingBatch(
        after: UInt64? = nil,
        limit: Int = .max,
        wholeRecords: Bool = false,
        beginsPush: Bool = true
    ) throws(ClientError) -> (changes: [Change], unsent: Set<RecordRef>, more: Bool) {
        try read(doing: "read the outbox") { db in
            let stored = try Int64.fetchOne(db, sql: "SELECT ackedCounter FROM replica WHERE id = 1") ?? 0
            let acked = max(stored, Int64(clamping: after ?? 0))
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT type, id, payload, creates FROM change WHERE isLocal = 1 AND maxCounter > ?
                    ORDER BY maxCounter
                    """,
                arguments: [acked]
            )
            // A replica's counters are consecutive, so the first `limit` pending changes are those numbered
            // acked+1 ... acked+limit. Rows (one per record per commit) are read in order of their highest
            // counter; rows of one commit may interleave, so reading stops once every counter of that range
            // has been seen, not at the first `limit` changes. A gap in the counters only means reading on. One
            // change more is read, to tell whether the outbox goes on past the batch, and with what.
            let reading = limit < Int.max ? limit + 1 : limit
            var last = UInt64(acked) &+ UInt64(max(0, min(reading, Int(Int64.max))))
            // Above the acknowledgement (after a server restored from a backup put the outbox back:
            // LocalStore+Epoch.swift), changes held aside after a refusal are not in the outbox, and those sent
            // from their own copies (retried: LocalStore+Refusals.swift) are taken from them, in their place:
            // each held one in the range moves its end by one.
            let copies = try copiesToSend(db: db).filter { $0.id.counter > UInt64(acked) }
            let copied = Set(copies.map(\.id.counter))
            let held = Set(
                try Int64.fetchAll(
                    db,
                    sql: "SELECT counter FROM refused_change WHERE counter > ? AND state <> 'retry'",
                    arguments: [acked]
                ).map { UInt64($0) }
            )
            for counter in held.sorted() where counter <= last { last &+= 1 }
            var changes = copies
            // Records named by changes held aside (whose first change may be one of them) stay named in full.
            var unsent = Set(copies.map(\.record))
            for row in try Row.fetchAll(
                db,
                sql: "SELECT DISTINCT type, id FROM refused_change WHERE state <> 'discarded'"
            ) {
                unsent.insert(RecordRef(type: row["type"], id: row["id"]))
            }
            var inRange = copies.filter { $0.id.counter <= last }.count
            var created: Set<RecordRef> = []
            while inRange < reading, let row = try rows.next() {
                let record = RecordRef(type: row["type"], id: row["id"])
                let creates: Bool = row["creates"]
                for change in try codec.decodeChanges(row["payload"], of: record)
                where change.id.counter > UInt64(acked) && !held.contains(change.id.counter)
                    && !copied.contains(change.id.counter)
                {
                    changes.append(change)
                    if creates {
                        unsent.insert(record)
                        created.insert(record)
                    }
                    if change.id.counter <= last { inRange += 1 }
                }
            }
            changes.sort { $0.id.counter < $1.id.counter }
            let more = changes.count > limit
            var batch = Array(changes.prefix(limit))
            if wholeRecords, more, let end = batch.last, changes[limit].record == end.record,
                created.contains(end.record)
            {
                var start = batch.count - 1
                while start > 0 && batch[start - 1].record == end.record { start -= 1 }
                if start > 0 || !beginsPush { batch.removeSubrange(start...) }
            }
            return (batch, unsent, more)
        }
    }

    /// Every open conflict, sorted by record and field.
    public func conflicts() throws(ClientError) -> [StoredConflict] {
        let schema = configuration.schema
        return try read(doing: "read the conflict inbox") { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT type, id, field, detectedAt FROM conflict ORDER BY type, id, field"
            )
            var result: [StoredConflict] = []
            for row in rows {
                let ref = RecordRef(type: row["type"], id: row["id"])
                let field: String = row["field"]
                guard let state = try loadState(ref, db: db),
                    let policy = schema.policy(type: ref.type, field: field),
                    let conflict = FieldConflict(record: ref, field: field, state: state[field], policy: policy)
                else { continue }
                result.append(StoredConflict(conflict: conflict, detectedAtMillis: UInt64(row["detectedAt"] as Int64)))
            }
            return result
        }
    }

    /// Whether the store holds no record.
    public func isEmpty() throws(ClientError) -> Bool {
        try read(doing: "read whether the store holds records") { db in
            try !(Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM record)") ?? false)
        }
    }

    /// The number of local changes the server has not acknowledged: one row read, unlike ``status()``.
    public func pendingCount() throws(ClientError) -> Int {
        try read(doing: "count the outbox") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT counter, ackedCounter FROM replica WHERE id = 1") else {
                throw ClientError(code: .storeCorrupt, message: "the store at \(path) has no replica row")
            }
            return Int((row["counter"] as Int64) - (row["ackedCounter"] as Int64))
        }
    }

    /// A summary of the replica: pending changes, open conflicts, record counts, sync position.
    public func status() throws(ClientError) -> StoreStatus {
        try read(doing: "read the store's status") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM replica WHERE id = 1") else {
                throw ClientError(code: .storeCorrupt, message: "the store at \(path) has no replica row")
            }
            let acked: Int64 = row["ackedCounter"]
            let counter: Int64 = row["counter"]
            let conflicts = try Int.fetchOne(db, sql: "SELECT count(*) FROM conflict") ?? 0
            let counts = try Self.recordCounts(db: db)
            let lastSync: Int64? = row["lastSyncAt"]
            var status = StoreStatus(
                replicaID: replicaID,
                pendingChanges: Int(counter - acked),
                openConflicts: conflicts,
                recordCounts: counts,
                serverURL: row["serverURL"],
                lastSyncAtMillis: lastSync.map { UInt64($0) },
                clock: Timestamp(
                    millis: UInt64(row["clockMillis"] as Int64),
                    counter: UInt32(row["clockCounter"] as Int64)
                )
            )
            status.refusedChanges =
                try Int.fetchOne(db, sql: "SELECT count(*) FROM refused_change WHERE state <> 'discarded'") ?? 0
            let started = try String.fetchOne(
                db,
                sql: "SELECT value FROM setting WHERE key = ?",
                arguments: [SyncEngine.syncStartedSetting]
            ).flatMap { Int64($0) }
            status.syncUnfinished =
                (row["serverEpoch"] as String?) != nil && (row["checkpoint"] as String?) == nil
                && started.map { started in lastSync.map { started > $0 } ?? true } ?? false
            return status
        }
    }

    /// Checks the database file's integrity (SQLite's `integrity_check`), that it has every index this version
    /// makes, and that every stored record and change decodes; returns the problems found (empty when sound).
    public func verifyIntegrity() throws(ClientError) -> [String] {
        try read(doing: "check the store's integrity") { db in
            var problems = try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
            for index in try Self.missingIndexes(db: db) {
                problems.append("an index is missing (\(index)); 'outpost doctor --rebuild' builds it")
            }
            let states = try Row.fetchCursor(db, sql: "SELECT type, id, state FROM record")
            while let row = try states.next() {
                let record = RecordRef(type: row["type"], id: row["id"])
                if (try? codec.decodeState(row["state"], of: record)) == nil {
                    problems.append("record \(row["type"] as String)/\(row["id"] as String) does not decode")
                }
            }
            let changes = try Row.fetchCursor(db, sql: "SELECT seq, type, id, payload FROM change")
            while let row = try changes.next() {
                let record = RecordRef(type: row["type"], id: row["id"])
                if (try? codec.decodeChanges(row["payload"], of: record)) == nil {
                    problems.append("change row \(row["seq"] as Int64) does not decode")
                }
            }
            return problems
        }
    }
}

extension LocalStore {
    /// A replica setting (for example the default author), or `nil` when unset.
    public func setting(_ key: String) throws(ClientError) -> String? {
        try read(doing: "read a setting") { db in
            try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [key])
        }
    }

    /// Sets (or, with `nil`, clears) a replica setting.
    public func setSetting(_ key: String, to value: String?) throws(ClientError) {
        try write(doing: "save a setting") { db in
            if let value {
                try db.execute(
                    sql:
                        "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    arguments: [key, value]
                )
            } else {
                try db.execute(sql: "DELETE FROM setting WHERE key = ?", arguments: [key])
            }
        }
    }
}
