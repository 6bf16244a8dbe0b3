import Foundation
import GRDB
public import OutpostCRDT
import OutpostSQLite

/// What applying a batch of changes did.
public struct ApplyReport: Sendable, Hashable {
    /// Changes that were new to this replica.
    public var applied: Int
    /// Changes this replica had already seen (retries, duplicates).
    public var duplicates: Int
    /// Conflicts that opened in this batch.
    public var newConflicts: Int
    /// Conflicts that this batch resolved.
    public var resolvedConflicts: Int
    /// Patients the page removed (``LocalStore/applyPage(changes:records:removed:checkpoint:)``) that this
    /// replica held: a patient it held no record of is not counted.
    public var removedPatients: Int

    /// An empty report.
    public init(
        applied: Int = 0,
        duplicates: Int = 0,
        newConflicts: Int = 0,
        resolvedConflicts: Int = 0,
        removedPatients: Int = 0
    ) {
        self.applied = applied
        self.duplicates = duplicates
        self.newConflicts = newConflicts
        self.resolvedConflicts = resolvedConflicts
        self.removedPatients = removedPatients
    }
}

extension LocalStore {
    /// Turns edits into changes and writes them in one transaction; returns the changes.
    ///
    /// Each edit is stamped with this replica's next counter and clock and names what it replaces as this
    /// store holds it now: for an assignment, every current value of the field (so it resolves any
    /// conflict there); for a removal, the element's tags.
    ///
    /// - Throws: ``ClientError`` `invalidEdit` when the schema refuses an edit (nothing is written), or a
    ///   storage error.
    @discardableResult
    public func commit(_ edits: [Edit], author: String, site: String?) throws(ClientError) -> [Change] {
        try commit(author: author, site: site) { _ in edits }
    }

    /// Builds edits from the store's current state and writes them, all in one transaction.
    ///
    /// `build` runs inside the transaction, so what it reads (``TransactionContext``) cannot change before
    /// its edits are written; it validates and returns the edits, or throws to write nothing. `progress`
    /// is told how many edits have been applied, every 1,000 edits and at the end.
    @discardableResult
    public func commit(
        author: String,
        site: String?,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil,
        _ build: (TransactionContext) throws -> [Edit]
    ) throws(ClientError) -> [Change] {
        try write(doing: "save the edit") { db in
            let transaction = try StoreTransaction(db: db, store: self)
            let now = transaction.now
            let edits = try build(TransactionContext(transaction: transaction))
            var changes: [Change] = []
            changes.reserveCapacity(edits.count)
            for (index, edit) in edits.enumerated() {
                // An append to a record this transaction has not loaded is written as a change-log row only
                // (the record's tail): its cost does not grow with the length of the record's log.
                if edit.operation == .append, !transaction.isLoaded(edit.record) {
                    transaction.counter += 1
                    let change = Change(
                        id: ChangeID(replica: replicaID, counter: transaction.counter),
                        record: edit.record,
                        field: edit.field,
                        operation: .append,
                        value: edit.value,
                        replaces: [],
                        clock: transaction.clock.tick(wallMillis: now),
                        author: author,
                        site: site
                    )
                    try checkSchema(change)
                    transaction.appendToTail(change)
                    changes.append(change)
                    if let progress, (index + 1) % 1000 == 0 { progress(index + 1, edits.count) }
                    continue
                }
                // Read in a scope of its own: a copy of the field kept alive while the change is applied would
                // make the merge copy the field's whole history (a log of n entries would cost n per append).
                let replaces: [ChangeID] = try {
                    let current = try transaction.state(of: edit.record)[edit.field]
                    switch edit.operation {
                    case .assign: return edit.isConcurrent ? [] : current.liveIDs
                    case .remove: return current.tags(of: edit.value)
                    case .add, .append: return []
                    }
                }()
                transaction.counter += 1
                let change = Change(
                    id: ChangeID(replica: replicaID, counter: transaction.counter),
                    record: edit.record,
                    field: edit.field,
                    operation: edit.operation,
                    value: edit.value,
                    replaces: replaces,
                    clock: transaction.clock.tick(wallMillis: now),
                    author: author,
                    site: site
                )
                try checkSchema(change)
                try transaction.apply(change, isLocal: true)
                changes.append(change)
                if let progress, (index + 1) % 1000 == 0 { progress(index + 1, edits.count) }
            }
            try transaction.finish(now: now)
            progress?(edits.count, edits.count)
            return changes
        }
    }

    /// Creates records this store does not hold, in one transaction, writing each record as it is created.
    ///
    /// The bulk path of an import: `build` runs inside the transaction and hands each new record's edits to
    /// ``RecordCreator/create(_:_:)``, which turns them into changes (this replica's next counters and
    /// clock), and writes the record's state and its change-log row at once; nothing of the record is kept
    /// in memory afterwards, so the memory used does not grow with the number of records. The result is the
    /// same as ``commit(author:site:progress:_:)`` with the same edits. `progress` is told how many of
    /// `totalEdits` edits have been written, every 1,000 edits and at the end.
    ///
    /// Into a store that holds no record, the store's secondary indexes are dropped for the load and built once
    /// at its end, in the same transaction (``dropIndexes(db:)``): a failed load leaves them as they were.
    ///
    /// - Returns: how many changes were written.
    /// - Throws: ``ClientError`` `invalidEdit` when the schema refuses an edit or a record is already held
    ///   (nothing is written), or a storage error.
    @discardableResult
    public func create(
        author: String,
        site: String?,
        totalEdits: Int,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil,
        _ build: (TransactionContext, inout RecordCreator) throws -> Void
    ) throws(ClientError) -> Int {
        try write(doing: "save the edit") { db in
            let transaction = try StoreTransaction(db: db, store: self)
            let isEmpty = try !(Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM record)") ?? false)
            let dropped = isEmpty ? try Self.dropIndexes(db: db) : []
            var creator = RecordCreator(
                transaction: transaction,
                author: author,
                site: site,
                total: totalEdits,
                progress: progress
            )
            try build(TransactionContext(transaction: transaction), &creator)
            try transaction.finish(now: transaction.now)
            try Self.buildIndexes(dropped, db: db)
            progress?(creator.done, max(totalEdits, creator.done))
            return creator.done
        }
    }

    /// Applies changes received from elsewhere (the server, an import) in one transaction, optionally
    /// advancing the sync checkpoint in the same transaction.
    ///
    /// Changes already seen are counted as duplicates and change nothing, so a retried page is harmless.
    /// A received clock ahead of this device's wall clock by more than the skew bound does not move the
    /// local clock (the change is still applied: nothing is lost).
    ///
    /// - Throws: ``ClientError`` `invalidEdit` when the schema refuses a change (nothing is written).
    @discardableResult
    public func applyRemote(_ changes: [Change], checkpoint: String? = nil) throws(ClientError) -> ApplyReport {
        try applyPage(changes: changes, records: [], removed: [], checkpoint: checkpoint)
    }

    /// Drops local changes up to `counter` from the outbox: the server has stored them.
    public func acknowledge(upTo counter: UInt64) throws(ClientError) {
        // Touches no record: a page read ahead beside it is still as read.
        try writeTouching(doing: "record the server's acknowledgement") { db in
            try db.execute(
                sql: "UPDATE replica SET ackedCounter = max(ackedCounter, ?) WHERE id = 1",
                arguments: [Int64(counter)]
            )
            return ((), [])
        }
    }

    func checkSchema(_ change: Change) throws(ClientError) {
        do {
            _ = try configuration.schema.check(change)
        } catch {
            throw ClientError(code: .invalidEdit, message: error.message, cause: error)
        }
    }

    /// Runs `body` in one write transaction, wrapping every failure in a ``ClientError``.
    ///
    /// Every such transaction adds one to the replica's `generation` as it commits, so the number names the state
    /// each commit left: records read on a reader beside the writer (``preload(_:unprojected:)``) are used by a
    /// later write only when the writes committed in between are known not to have changed them (``WriteLog``). A
    /// write made by this one says it may have changed any record.
    func write<T>(doing action: String, _ body: (Database) throws -> T) throws(ClientError) -> T {
        try writeTouching(doing: action) { db in (try body(db), nil) }
    }

    /// ``write(doing:_:)`` for a `body` that also returns the records it may have changed (`nil`: any), as
    /// ``preload(_:unprojected:)`` understands it: their rows in the record table, their change-log rows, their
    /// projected rows.
    func writeTouching<T>(
        doing action: String,
        _ body: (Database) throws -> (T, [RecordRef]?)
    ) throws(ClientError) -> T {
        var committed: (generation: Int64, touched: [RecordRef]?)?
        do {
            let result = try writer.write { db in
                let (result, touched) = try body(db)
                // Two statements, not `RETURNING` (SQLite 3.35): the system SQLite of older distributions lacks it.
                try db.execute(cached: "UPDATE replica SET generation = generation + 1 WHERE id = 1", values: [])
                let generation = try Int64.fetchOne(
                    db.cachedStatement(sql: "SELECT generation FROM replica WHERE id = 1")
                )
                committed = generation.map { ($0, touched) }
                return result
            }
            // Logged once committed: a write that looks for it before then takes nothing read ahead.
            if let committed { writeLog.record(committed.generation, committed.touched) }
            return result
        } catch {
            throw Self.wrap(error, path: path, doing: action)
        }
    }
}

/// What the `build` closure of ``LocalStore/commit(author:site:progress:_:)`` can read: the store's
/// state inside the transaction.
public struct TransactionContext {
    let transaction: StoreTransaction

    /// Whether the store holds `record` (read without loading the record's state when not loaded yet).
    public func exists(_ record: RecordRef) -> Bool {
        (try? transaction.holds(record)) ?? false
    }

    /// Whether the store held no record at all when the transaction started (then no record needs looking
    /// up before it is created).
    public func storeWasEmpty() throws(ClientError) -> Bool {
        do {
            return try transaction.storeWasEmpty()
        } catch {
            throw LocalStore.wrap(error, path: transaction.store.path, doing: "read the records")
        }
    }

    /// Whether the store holds `record`, without keeping its state in the transaction (for checks over
    /// many records).
    public func holds(_ record: RecordRef) throws(ClientError) -> Bool {
        do {
            return try transaction.holds(record)
        } catch {
            throw LocalStore.wrap(error, path: transaction.store.path, doing: "read a record")
        }
    }

    /// The ids of every record of `type` the store holds (as of the transaction's start).
    public func ids(ofType type: String) throws(ClientError) -> [String] {
        do {
            return try String.fetchAll(
                transaction.db,
                sql: "SELECT id FROM record WHERE type = ? ORDER BY id",
                arguments: [type]
            )
        } catch {
            throw LocalStore.wrap(error, path: transaction.store.path, doing: "read the records")
        }
    }

    /// The merged state of `record` (empty when the store does not hold it).
    public func state(of record: RecordRef) throws(ClientError) -> RecordState {
        do {
            return try transaction.state(of: record)
        } catch {
            throw LocalStore.wrap(error, path: transaction.store.path, doing: "read a record")
        }
    }
}

/// Writes new records inside ``LocalStore/create(author:site:totalEdits:progress:_:)``.
///
/// A record is drafted (``RecordDrafter``: its changes stamped, encoded and projected) and then written. The
/// two steps can run on different threads: an import drafts on its reader thread with ``drafter()`` and
/// writes here, in order.
public struct RecordCreator {
    let transaction: StoreTransaction
    let author: String
    let site: String?
    let total: Int
    let progress: ((_ done: Int, _ total: Int) -> Void)?
    /// Edits written so far.
    public private(set) var done = 0

    /// Creates `record` from `edits` (all of them of `record`), and writes it.
    ///
    /// - Throws: ``ClientError`` `invalidEdit` when an edit names another record or the schema refuses it,
    ///   or a storage error when the store already holds the record.
    public mutating func create(_ record: RecordRef, _ edits: [Edit]) throws(ClientError) {
        var drafter = drafter()
        try write(try drafter.draft(record, edits))
    }

    /// A drafter that stamps changes from where this creator's writes have left the replica's counter and
    /// clock. Its drafts must be written (``write(_:)``) in the order it made them, each once, before
    /// anything else is created.
    public func drafter() -> RecordDrafter {
        RecordDrafter(
            store: transaction.store,
            author: author,
            site: site,
            now: transaction.now,
            counter: transaction.counter,
            clock: transaction.clock
        )
    }

    /// Writes a drafted record.
    ///
    /// - Throws: ``ClientError`` when the store already holds the record or it was written in this
    ///   transaction, when the draft is out of order (see ``drafter()``), or a storage error.
    public mutating func write(_ drafted: DraftedRecord) throws(ClientError) {
        do {
            try transaction.write(drafted)
        } catch {
            throw LocalStore.wrap(error, path: transaction.store.path, doing: "save the edit")
        }
        guard let progress else {
            done += drafted.edits
            return
        }
        let before = done
        done += drafted.edits
        if done / 1000 > before / 1000 { progress(done / 1000 * 1000, max(total, done)) }
    }
}

/// A record made from the edits that create it, ready to be written (``RecordCreator/write(_:)``): its
/// change-log row, its record row, its projection and its conflicts, computed from the edits and the
/// replica's counter and clock alone (``RecordDrafter``), off SQLite's one writer if need be.
public struct DraftedRecord: Sendable {
    /// The record.
    public let record: RecordRef
    /// How many edits made it (none: nothing is written).
    public let edits: Int
    /// The replica's counter before and after its changes.
    let counters: (before: UInt64, after: UInt64)
    /// The replica's clock after its changes.
    let clock: HybridLogicalClock
    /// The change-log row's payload: the changes, encoded (sealed, in an encrypted store).
    let payload: Data
    /// The record row's owner.
    let owner: String?
    /// The record row's state: the record's, or an empty one when `isTail` (the change-log row is its tail).
    let state: Data
    /// Whether the change-log row is the record's tail.
    let isTail: Bool
    /// The projection's inserts (``LocalStore/projectionInserts(of:_:)``).
    let projection: [ProjectionInsert]
    /// The register fields whose concurrent values await review.
    let conflicts: [String]
}

/// Drafts new records (``DraftedRecord``): stamps each edit with the replica's next counter and clock, checks
/// it against the schema, and encodes and projects what the record will be stored as. It reads nothing from
/// the store, so an import drafts on a thread of its own while the transaction writes (``RecordCreator``).
public struct RecordDrafter: Sendable {
    let store: LocalStore
    let author: String
    let site: String?
    let now: UInt64
    var counter: UInt64
    var clock: HybridLogicalClock

    /// Drafts `record` from `edits` (all of them of `record`).
    ///
    /// - Throws: ``ClientError`` `invalidEdit` when an edit names another record or the schema refuses it, or
    ///   an encoding error.
    public mutating func draft(_ record: RecordRef, _ edits: [Edit]) throws(ClientError) -> DraftedRecord {
        do {
            return try draftRecord(record, edits)
        } catch {
            // A ClientError (a refused edit) passes through as it is.
            throw LocalStore.wrap(error, path: store.path, doing: "save the edit")
        }
    }

    private mutating func draftRecord(_ record: RecordRef, _ edits: [Edit]) throws -> DraftedRecord {
        let before = counter
        var state = RecordState()
        var changes: [Change] = []
        changes.reserveCapacity(edits.count)
        for edit in edits {
            guard edit.record == record else {
                throw ClientError(
                    code: .invalidEdit,
                    message: "an edit of \(edit.record) was given to create \(record); create each record from its "
                        + "own edits"
                )
            }
            let replaces: [ChangeID]
            switch edit.operation {
            case .assign: replaces = state[edit.field].liveIDs
            case .remove: replaces = state[edit.field].tags(of: edit.value)
            case .add, .append: replaces = []
            }
            counter += 1
            let change = Change(
                id: ChangeID(replica: store.replicaID, counter: counter),
                record: record,
                field: edit.field,
                operation: edit.operation,
                value: edit.value,
                replaces: replaces,
                clock: clock.tick(wallMillis: now),
                author: author,
                site: site
            )
            try store.checkSchema(change)
            state.apply(change)
            changes.append(change)
        }
        guard !changes.isEmpty else {
            return DraftedRecord(
                record: record,
                edits: 0,
                counters: (before, before),
                clock: clock,
                payload: Data(),
                owner: nil,
                state: Data(),
                isTail: false,
                projection: [],
                conflicts: []
            )
        }
        // The record's state is its creation row as a tail (``StoreTransaction/extendTail(of:with:seq:bytes:)``):
        // the changes are written once, not a second time as a state, unless the row is larger than a tail may be.
        let payload = try store.codec.encode(changes, of: record)
        let emptyState = try store.codec.encode(RecordState(), of: record)
        let isTail = payload.count <= emptyState.count + StoreTransaction.tailAllowance
        return DraftedRecord(
            record: record,
            edits: edits.count,
            counters: (before, counter),
            clock: clock,
            payload: payload,
            owner: store.owner(of: record, state),
            state: isTail ? emptyState : try store.codec.encode(state, of: record),
            isTail: isTail,
            projection: try store.projectionInserts(of: record, state),
            conflicts: store.conflictedFields(of: record, state)
        )
    }
}

/// The working state of one write transaction: records loaded once, written back once.
final class StoreTransaction {
    let db: Database
    let store: LocalStore
    var counter: UInt64
    var clock: HybridLogicalClock
    /// The time this transaction stamps with: the device's wall clock corrected by the offset to the
    /// server's clock learned at the last sync (``LocalStore/clockOffsetMillis()``).
    let now: UInt64
    var report = ApplyReport()

    /// What the transaction holds of one record, in one entry: a change or a record costs one look-up of its
    /// record, not one per thing held of it.
    final class Held {
        /// The record's state, once loaded (or taken from a snapshot, or replaced); `nil` before.
        var state: RecordState?
        /// Whether the store held the record when it was loaded.
        var existing = false
        /// Remote changes this transaction logs.
        var logged: [Change] = []
        /// Local changes this transaction logs.
        var localLogged: [Change] = []
        /// The fields whose conflict status may have changed (``finish(now:)`` checks them); `nil` for none.
        var touched: Set<String>?
        /// New to the store and taken whole from a snapshot: written from its prepared form
        /// (``LocalStore/prepare(_:_:)``), with no set of field names made for it (a new device's bootstrap
        /// takes a whole practice so).
        var takenWhole = false
        /// The form of a record taken whole prepared before the transaction (``LocalStore/prepare(_:)``), used
        /// when nothing else in the transaction touched the record.
        var prepared: PreparedRecord?
        /// The ids already in the log (or logged by this transaction), loaded when a change leaves the state
        /// unchanged.
        var loggedIDs: Set<ChangeID>?
        /// Whether the state changed by a state merge (a snapshot) with no change to log, or its tail was folded
        /// in when loaded (the state is written whole again).
        var merged = false
        /// Local appends logged while the record was not loaded: added to its tail, and applied when loaded.
        var tailed: [Change]?
        /// The sizes of the stored state and tail as loaded, and whether it has a tail.
        var size: (state: Int, tail: Int, hasTail: Bool)?
        /// The owner in the record's row as loaded: a row is written with its owner only when it changes, so
        /// that SQLite leaves the owner's index entry alone (it rewrites one for every column a statement sets).
        var storedOwner: String??
        /// The projected rows as loaded (what the projection holds), for a held record of a projected type, so
        /// that ``finish(now:)`` writes only the rows that changed (``Projection/update(_:from:to:codec:db:)``).
        /// Rows, not the state: keeping the loaded state would make the first change copy it.
        var projected: [Projection.Row]?

        /// Whether this transaction logs a change of the record.
        var logs: Bool { !logged.isEmpty || !localLogged.isEmpty }
    }

    /// The store's write generation when this transaction began (``LocalStore/write(doing:_:)``); it commits
    /// `generation + 1`.
    let generation: Int64
    /// Records read before this transaction on a reader, still as the store holds them
    /// (``LocalStore/usable(_:generation:written:)``): ``loaded(_:)`` takes one from here instead of reading it.
    var preloaded: [RecordRef: LocalStore.LoadedRecord?] = [:]
    /// How many records ``loaded(_:)`` took from ``preloaded``.
    private(set) var preloadedUsed = 0

    /// Records whose projected rows ``loaded(_:)`` does not make: every change the transaction is to apply to them
    /// writes a field their rows do not read (``Projection/unprojected(by:)``, a page of remote changes). Such a
    /// record's rows are left as they are, or written whole if something else changes it after all
    /// (``finish(now:)``).
    var unprojected: Set<RecordRef> = []

    /// Every record this transaction has held anything of.
    private var held: [RecordRef: Held] = [:]
    /// ``bulk()``, once looked up (GRDB's cached statements, held with the transaction).
    private var bulkStatements: BulkStatements?
    /// The insert of each projected table, by its place in ``Projection/allTables``, once run
    /// (``insertRows(of:projection:conflicts:)``).
    private var projectionStatements = [Statement?](repeating: nil, count: Projection.allTables.count)
    /// Whether any record's fields were touched (``Held/touched``).
    private var anyTouched = false

    /// Hands what the transaction holds to ``BackgroundRelease`` to be freed, once it is written
    /// (``finish(now:)``): a page's thousands of states, changes and projected rows took about a tenth of the
    /// device's apply to free, inside the write transaction. The transaction holds nothing afterwards.
    func releaseHeldAside() {
        let held = self.held
        self.held = [:]
        BackgroundRelease.drop(held)
        if !preloaded.isEmpty {
            let left = preloaded
            preloaded = [:]
            BackgroundRelease.drop(left)
        }
    }

    /// The record's entry, made when the transaction holds nothing of it yet.
    private func entry(_ record: RecordRef) -> Held {
        if let entry = held[record] { return entry }
        let entry = Held()
        held[record] = entry
        return entry
    }

    /// Adds fields to the record's touched fields.
    private func touch(_ entry: Held, _ fields: some Sequence<String>) {
        if entry.touched == nil { entry.touched = [] }
        entry.touched!.formUnion(fields)
        anyTouched = true
    }

    init(db: Database, store: LocalStore) throws {
        self.db = db
        self.store = store
        guard
            let row = try Row.fetchOne(
                db,
                sql:
                    "SELECT counter, clockMillis, clockCounter, clockOffsetMillis, generation FROM replica WHERE id = 1"
            )
        else {
            throw ClientError(code: .storeCorrupt, message: "the store at \(store.path) has no replica row")
        }
        counter = UInt64(row["counter"] as Int64)
        clock = HybridLogicalClock(
            latest: Timestamp(
                millis: UInt64(row["clockMillis"] as Int64),
                counter: UInt32(row["clockCounter"] as Int64)
            )
        )
        now = LocalStore.corrected(store.configuration.wallClock.nowMillis(), by: row["clockOffsetMillis"] as Int64)
        generation = row["generation"]
    }

    /// The records this transaction has held anything of, and those it wrote new (``writeNew(_:_:_:)``): those it
    /// may have written.
    var writtenRecords: [RecordRef] {
        var records: [RecordRef] = []
        records.reserveCapacity(held.count + writtenNew.count)
        records.append(contentsOf: held.keys)
        records.append(contentsOf: writtenNew)
        return records
    }

    /// Records new to the store that ``writeNew(_:_:_:)`` wrote, held by no entry.
    private var writtenNew: [RecordRef] = []

    /// How many records ``writeNew(_:_:_:)`` wrote.
    var writtenAtOnce: Int { writtenNew.count }

    /// Writes a record new to the store, taken whole from a snapshot page, from its form prepared before the
    /// transaction (``LocalStore/prepare(_:)``): its row, its projected rows and its conflicts, at once, with no
    /// entry made, looked up or sorted for it, as ``finish(now:)`` would write it. Returns whether it wrote it
    /// (not an empty state, which holds nothing).
    ///
    /// For a page of a snapshot only (``LocalStore/applyPage(changes:records:forms:removed:checkpoint:preloaded:unprojected:)``):
    /// the caller has found that the store does not hold the record and that the page names it once, and the
    /// transaction logs no change, so the record's tail starts after the change log's last row as it stands.
    func writeNew(_ record: RecordRef, _ state: RecordState, _ form: PreparedRecord) throws -> Bool {
        guard !state.isEmpty else { return false }
        assert(held[record] == nil, "a record written new that the transaction holds")
        try insertWhole(record, form)
        writtenNew.append(record)
        return true
    }

    /// Writes a record new to the store, taken whole, from `form`: its row, its tail starting after this
    /// transaction (every change it takes later joins the tail, with no write to its row, as an imported record's
    /// do), its projected rows and its conflicts.
    private func insertWhole(_ record: RecordRef, _ form: PreparedRecord) throws {
        try db.execute(try bulk().wholeRecord, values: form.row + [try afterThisTransaction().databaseValue])
        try insertRows(of: record, projection: form.projection, conflicts: form.conflicts)
    }

    /// The first change-log number after this transaction's rows (the log's numbers are never reused:
    /// AUTOINCREMENT), read once: after the transaction has logged its changes (``finish(now:)``), or in one that
    /// logs none (``writeNew(_:_:_:)``).
    private func afterThisTransaction() throws -> Int64 {
        if let nextSeq { return nextSeq }
        let next = (try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'change'") ?? 0) + 1
        nextSeq = next
        return next
    }

    /// ``afterThisTransaction()``, once read.
    private var nextSeq: Int64?

    func state(of record: RecordRef) throws -> RecordState {
        try loaded(record).state!
    }

    /// The record's entry with its state loaded.
    private func loaded(_ record: RecordRef) throws -> Held {
        let entry = entry(record)
        if entry.state != nil { return entry }
        var state = RecordState()
        let found: LocalStore.LoadedRecord?
        if let ahead = preloaded.removeValue(forKey: record) {
            found = ahead
            preloadedUsed += 1
        } else {
            found = try store.loadStateAndTail(record, db: db).map {
                LocalStore.LoadedRecord(record, $0, projecting: !unprojected.contains(record))
            }
        }
        if let found {
            let stored = found.held
            state = stored.state
            entry.existing = true
            entry.size = (stored.stateBytes, stored.tailBytes, stored.hasTail)
            entry.storedOwner = .some(stored.owner)
            entry.projected = found.projected
        }
        // Appends this transaction sent to the tail before the record was loaded (they are logged already).
        if let appended = entry.tailed {
            entry.tailed = nil
            for change in appended { state.apply(change) }
        }
        entry.state = state
        return entry
    }

    /// Loads the records' states, in the order given (``loaded(_:)``); one already loaded is not read again.
    func load(_ records: [RecordRef]) throws {
        for record in records { _ = try loaded(record) }
    }

    /// Whether this transaction has loaded `record`'s state.
    func isLoaded(_ record: RecordRef) -> Bool {
        held[record]?.state != nil
    }

    /// Logs a local append to a record this transaction has not loaded, without loading its state: the
    /// change-log row is written and the record's tail grows (``finish(now:)``).
    func appendToTail(_ change: Change) {
        let entry = entry(change.record)
        if entry.tailed == nil { entry.tailed = [] }
        entry.tailed!.append(change)
        entry.localLogged.append(change)
    }

    /// Merges a record's state from a snapshot; returns whether it changed anything. The snapshot's writes
    /// are not logged as changes: history on this replica starts at the snapshot.
    ///
    /// With `isHeld` false the caller has read that the store does not hold the record (a snapshot page's
    /// records are looked up once per page, ``heldRecords(among:)``): its state is not read, and merging into
    /// nothing is the incoming state itself.
    ///
    /// `form` is the record's form prepared from `incoming` for a store that does not hold it; it is written
    /// as is when that is what the record is at the end of the transaction.
    @discardableResult
    func merge(
        _ record: RecordRef,
        _ incoming: RecordState,
        isHeld: Bool = true,
        prepared form: PreparedRecord? = nil
    ) throws -> Bool {
        let known = held[record]
        if !isHeld, known?.state == nil, known?.tailed == nil {
            guard !incoming.isEmpty else { return false }
            let entry = entry(record)
            entry.state = incoming
            entry.merged = true
            entry.takenWhole = true
            if let form { entry.prepared = form }
            return true
        }
        let entry = try loaded(record)
        var state = entry.state!
        let before = state
        state.merge(incoming)
        guard state != before else { return false }
        entry.state = state
        entry.merged = true
        touch(entry, incoming.sortedFields.lazy.map(\.name))
        return true
    }

    /// Replaces a record's state outright (re-stamped pending writes, a discarded change withdrawn); its fields'
    /// conflicts are looked at again.
    func replace(_ record: RecordRef, with state: RecordState) throws {
        let entry = try loaded(record)
        let before = entry.state!
        entry.state = state
        entry.merged = true
        touch(entry, before.fieldNames + state.fieldNames)
    }

    /// Applies one change; returns whether it was new.
    @discardableResult
    func apply(_ change: Change, isLocal: Bool) throws -> Bool {
        let entry = try loaded(change.record)
        // Mutated in place: a copy taken out of the entry would copy the record's fields on every change.
        let changed = entry.state!.apply(change)
        if !changed {
            // Unchanged state: a duplicate, or a new change that arrived after the change that replaced it
            // (the merge is right either way). The latter still belongs in the history: look it up in the log.
            if entry.state![change.field].live.contains(where: { $0.id == change.id }) { return false }
            if try loggedIDs(of: change.record, entry).contains(change.id) { return false }
        }
        entry.loggedIDs?.insert(change.id)
        if isLocal {
            entry.localLogged.append(change)
        } else {
            entry.logged.append(change)
        }
        touch(entry, CollectionOfOne(change.field))
        return true
    }

    /// Writes a record the store does not hold, drafted from the edits that create it (``RecordDrafter``): its
    /// change-log row, its record row, its projection and its conflicts, at once, without keeping it: the bulk
    /// path of an import. A record the store already holds fails on the record table's primary key (the
    /// transaction is rolled back).
    func write(_ drafted: DraftedRecord) throws {
        guard drafted.edits > 0 else { return }
        let record = drafted.record
        if let entry = held[record], let state = entry.state, !state.isEmpty || entry.logs {
            throw ClientError(
                code: .invalidEdit,
                message: "\(record) was already written in this transaction; create it once"
            )
        }
        // Its changes' counters follow the ones written before: a draft written twice, out of order, or after
        // other writes would reuse change ids.
        guard drafted.counters.before == counter else {
            throw ClientError(
                code: .invalidEdit,
                message: "\(record) was drafted after counter \(drafted.counters.before) and the replica is at "
                    + "\(counter); write drafts in the order they were made, each once"
            )
        }
        // Bound as what they are, through statements looked up once (``bulk()``): with GRDB's arguments and its
        // statement cache, which hashes a statement's text at each look-up, this method took about twice the time
        // in a profile of an import (docs/sync.md, "Thirtieth session").
        let statements = try bulk()
        let type = record.type.databaseValue
        let id = record.id.databaseValue
        try db.execute(
            statements.change,
            values: [
                type, id, true.databaseValue, Int64(drafted.counters.after).databaseValue,
                drafted.payload.databaseValue,
            ]
        )
        if drafted.isTail {
            try db.execute(
                statements.tailRecord,
                values: [
                    type, id, drafted.owner.databaseValue, drafted.state.databaseValue,
                    db.lastInsertedRowID.databaseValue,
                    drafted.payload.count.databaseValue,
                ]
            )
        } else {
            try db.execute(
                statements.record,
                values: [type, id, drafted.owner.databaseValue, drafted.state.databaseValue]
            )
        }
        // A new record (the insert above would have failed otherwise): its rows are inserted, none deleted.
        try insertRows(of: record, projection: drafted.projection, conflicts: drafted.conflicts)
        counter = drafted.counters.after
        clock = drafted.clock
        // A state cached before (an existence check) is stale now: the next read loads the written one.
        if let entry = held[record] {
            entry.state = nil
            entry.existing = false
            entry.loggedIDs = nil
        }
    }

    /// The inserts a transaction runs once per record (an import's ``write(_:)``, a page's change-log rows and new
    /// records in ``finish(now:)``), looked up in GRDB's cache once per transaction: the cache hashes a statement's
    /// text at each look-up.
    struct BulkStatements {
        /// The change-log row of a record's creation.
        let change: Statement
        /// A change-log row of ``finish(now:)``, local or received.
        let loggedChange: Statement
        /// A record row whose creation row is its tail.
        let tailRecord: Statement
        /// A record row with its state.
        let record: Statement
        /// A record row taken whole from a snapshot, its tail starting after the transaction.
        let wholeRecord: Statement
        /// A field in conflict.
        let conflict: Statement
    }

    /// ``BulkStatements``, looked up the first time.
    private func bulk() throws -> BulkStatements {
        if let bulkStatements { return bulkStatements }
        let statements = BulkStatements(
            change: try db.cachedStatement(
                sql: "INSERT INTO change (type, id, isLocal, maxCounter, payload, creates) VALUES (?, ?, ?, ?, ?, 1)"
            ),
            loggedChange: try db.cachedStatement(
                sql: "INSERT INTO change (type, id, isLocal, maxCounter, payload, creates) VALUES (?, ?, ?, ?, ?, ?)"
            ),
            tailRecord: try db.cachedStatement(
                sql: "INSERT INTO record (type, id, owner, state, tailStart, tailBytes) VALUES (?, ?, ?, ?, ?, ?)"
            ),
            record: try db.cachedStatement(sql: "INSERT INTO record (type, id, owner, state) VALUES (?, ?, ?, ?)"),
            wholeRecord: try db.cachedStatement(
                sql: "INSERT INTO record (type, id, owner, state, tailStart) VALUES (?, ?, ?, ?, ?)"
            ),
            conflict: try db.cachedStatement(
                sql: "INSERT INTO conflict (type, id, field, detectedAt) VALUES (?, ?, ?, ?)"
            )
        )
        bulkStatements = statements
        return statements
    }

    /// Inserts the projected rows (``LocalStore/projectionInserts(of:_:)``) and the conflicts of a record new to
    /// the store, counting once at the projection's kill point when it has rows.
    private func insertRows(of record: RecordRef, projection: [ProjectionInsert], conflicts: [String]) throws {
        for (table, values) in projection {
            let statement: Statement
            if let known = projectionStatements[table] {
                statement = known
            } else {
                statement = try db.cachedStatement(sql: Projection.insertSQL[table])
                projectionStatements[table] = statement
            }
            try db.execute(statement, values: values)
        }
        if !projection.isEmpty { KillPoint.projected() }
        for field in conflicts { try insertConflict(record, field) }
    }

    /// Records that `field` of `record` awaits review (a row of the conflict inbox).
    private func insertConflict(_ record: RecordRef, _ field: String) throws {
        try db.execute(
            try bulk().conflict,
            values: [record.type.databaseValue, record.id.databaseValue, field.databaseValue, Int64(now).databaseValue]
        )
        report.newConflicts += 1
    }

    /// Adds a just-written change-log row (`seq`, `bytes` long) to the tail of a record this transaction did
    /// not load. A record the store does not hold yet is written whole; a tail that outgrows the record's
    /// state is folded into it (so reading a record costs at most about twice its state, and an append
    /// costs the same, amortized, whatever the log's length).
    private func extendTail(of record: RecordRef, with appended: [Change], seq: Int64, bytes: Int) throws {
        try db.cachedStatement(
            sql: """
                UPDATE record SET tailStart = coalesce(tailStart, ?), tailBytes = tailBytes + ?
                WHERE type = ? AND id = ?
                """
        ).execute(arguments: [seq, bytes, record.type, record.id])
        let isNew = db.changesCount == 0
        let outgrown: Bool
        if isNew {
            // Appends that create their record: the row that logs them says so (``pendingBatch(after:limit:)``).
            try db.cachedStatement(sql: "UPDATE change SET creates = 1 WHERE seq = ?").execute(arguments: [seq])
            outgrown = true
        } else {
            outgrown =
                try Bool.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT tailBytes > length(state) + ? FROM record WHERE type = ? AND id = ?"
                    ),
                    arguments: [Self.tailAllowance, record.type, record.id]
                ) ?? true
        }
        guard outgrown else { return }
        // The held state with its whole tail (this row included), or a new record's appends.
        var state = try store.loadStateAndTail(record, db: db)?.state ?? RecordState()
        if isNew { for change in appended { state.apply(change) } }
        if isNew {
            try Projection.update(record, from: nil, to: state, codec: store.codec.projection, db: db)
        } else {
            try Projection.write(record, state, codec: store.codec.projection, db: db)
        }
        let owner = store.owner(of: record, state)
        let bytes = try store.codec.encode(state, of: record)
        if isNew {
            try db.execute(
                try bulk().record,
                values: [
                    record.type.databaseValue, record.id.databaseValue, owner?.databaseValue ?? .null,
                    bytes.databaseValue,
                ]
            )
        } else {
            try db.cachedStatement(
                sql: "UPDATE record SET state = ?, owner = ?, tailStart = NULL, tailBytes = 0 WHERE type = ? AND id = ?"
            ).execute(arguments: [bytes, owner, record.type, record.id])
        }
    }

    /// How many bytes a record's tail may exceed its state by before it is folded in.
    static let tailAllowance = 4096

    private var wasEmpty: Bool?

    /// Whether the record table was empty when this transaction first asked (asked before any write).
    func storeWasEmpty() throws -> Bool {
        if let wasEmpty { return wasEmpty }
        let empty = try !(Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM record)") ?? false)
        wasEmpty = empty
        return empty
    }

    /// Which of `records` the store holds, read with one range query per record type (a page's records are
    /// sorted by type and id, so each range is the page's own records and the few held between them).
    func heldRecords(among records: some Sequence<RecordRef>) throws -> Set<RecordRef> {
        // Each type's lowest and highest id; a page holds a few types, so they are found by a scan, not hashed.
        var ranges: [IDRange] = []
        for record in records {
            guard let place = ranges.firstIndex(where: { $0.type == record.type }) else {
                ranges.append(IDRange(type: record.type, low: record.id, high: record.id))
                continue
            }
            // SQLite compares text by its UTF-8 bytes.
            if SQLiteText.precedes(record.id, ranges[place].low) { ranges[place].low = record.id }
            if SQLiteText.precedes(ranges[place].high, record.id) { ranges[place].high = record.id }
        }
        return try heldRecords(in: ranges)
    }

    /// A record type's ids from `low` to `high`, both included, in SQLite's order.
    struct IDRange {
        let type: String
        var low: String
        var high: String
    }

    /// Which records of `ranges` the store holds, read with one range query each.
    func heldRecords(in ranges: [IDRange]) throws -> Set<RecordRef> {
        var held = Set<RecordRef>()
        for range in ranges {
            let ids = try String.fetchCursor(
                db.cachedStatement(sql: "SELECT id FROM record WHERE type = ? AND id >= ? AND id <= ?"),
                arguments: [range.type, range.low, range.high]
            )
            while let id = try ids.next() { held.insert(RecordRef(type: range.type, id: id)) }
        }
        return held
    }

    /// Whether the store holds `record`, without loading (or caching) its state.
    func holds(_ record: RecordRef) throws -> Bool {
        if let state = held[record]?.state { return !state.isEmpty }
        if held[record]?.tailed != nil { return true }
        return try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT 1 FROM record WHERE type = ? AND id = ?"),
            arguments: [record.type, record.id]
        ) ?? false
    }

    /// The ids of the changes of `record` already in the log (or logged by this transaction).
    private func loggedIDs(of record: RecordRef, _ entry: Held) throws -> Set<ChangeID> {
        if let ids = entry.loggedIDs { return ids }
        var ids = Set<ChangeID>()
        for payload in try Data.fetchAll(
            db,
            sql: "SELECT payload FROM change WHERE type = ? AND id = ?",
            arguments: [record.type, record.id]
        ) {
            for change in try store.codec.decodeChanges(payload, of: record) { ids.insert(change.id) }
        }
        for change in entry.logged + entry.localLogged { ids.insert(change.id) }
        entry.loggedIDs = ids
        return ids
    }

    func finish(now: UInt64) throws {
        let schema = store.configuration.schema
        // The change-log rows first: a record's new rows may become its tail.
        var written: [ObjectIdentifier: (firstSeq: Int64, bytes: Int)] = [:]
        // In key order: the record table, the change log's index by record and the projection are keyed by the
        // record, so their writes then walk each B-tree once instead of jumping to a page at random per record.
        let held = self.held.sorted { $0.key < $1.key }
        for (record, entry) in held where entry.logs {
            precondition(nextSeq == nil, "a change logged after the change log's next number was read")
            for (isLocal, changes) in [(true, entry.localLogged), (false, entry.logged)] where !changes.isEmpty {
                let payload = try store.codec.encode(changes, of: record)
                let maxCounter = isLocal ? changes.map(\.id.counter).max().map { Int64($0) } : nil
                // A local row creates its record when the store did not hold it (an append to a record not loaded
                // is marked by ``extendTail(of:with:seq:bytes:)`` when it finds no row to extend).
                let creates = isLocal && !entry.existing && entry.tailed == nil
                try db.execute(
                    try bulk().loggedChange,
                    values: [
                        record.type.databaseValue, record.id.databaseValue, isLocal.databaseValue,
                        maxCounter.databaseValue, payload.databaseValue, creates.databaseValue,
                    ]
                )
                if isLocal, let appended = entry.tailed {
                    try extendTail(of: record, with: appended, seq: db.lastInsertedRowID, bytes: payload.count)
                } else {
                    let seq = db.lastInsertedRowID
                    let key = ObjectIdentifier(entry)
                    let previous = written[key]
                    written[key] = (min(previous?.firstSeq ?? seq, seq), (previous?.bytes ?? 0) + payload.count)
                }
            }
        }
        for (record, entry) in held where entry.logs || entry.merged {
            guard let state = entry.state else { continue }
            if entry.takenWhole {
                // New to the store: its prepared form, unless something after the snapshot changed the record
                // in this transaction (then its form is prepared from the state it has now).
                let form =
                    try (!anyTouched || entry.touched == nil ? entry.prepared : nil)
                    ?? store.prepare(record, state)
                try insertWhole(record, form)
                continue
            }
            if entry.existing, entry.projected == nil, Projection.tables[record.type] != nil {
                // Loaded without its rows (``unprojected``): they stay as they are unless the transaction changed
                // a field they read after all, or merged a state into the record; then they are written whole.
                if entry.merged || Projection.mayChange(record.type, by: [entry.logged, entry.localLogged].joined()) {
                    try Projection.write(record, state, codec: store.codec.projection, db: db)
                }
                // Its projection is settled, as ``Projection/update(_:from:to:codec:db:)`` counts each record.
                KillPoint.projected()
            } else {
                // A held record's rows as loaded are its projection now (`projected`); a new one has none.
                try Projection.update(
                    record,
                    from: entry.existing ? entry.projected : nil,
                    to: state,
                    codec: store.codec.projection,
                    db: db
                )
            }
            let owner = store.owner(of: record, state)
            // A held record changed only by logged changes keeps its stored state: its new rows join its tail,
            // until the tail would outgrow the state (then the state is written whole, the tail folded in).
            // The owner column only when it changes (`storedOwner`: a held record's row as loaded).
            let ownerStays = entry.storedOwner.map { $0 == owner } ?? false
            let setOwner = ownerStays ? "" : ", owner = ?"
            // The SET's owner, then the key: what every UPDATE of the row below ends with.
            func ownerAndKey() -> [DatabaseValue] {
                (ownerStays ? [] : [owner.databaseValue]) + [record.type.databaseValue, record.id.databaseValue]
            }
            if entry.existing, !entry.merged, let rows = written[ObjectIdentifier(entry)],
                let size = entry.size, size.tail + rows.bytes <= size.state + Self.tailAllowance
            {
                // A record that has a tail already takes the new rows into it (their seq is above `tailStart`)
                // with no write to its row: edits spread over a practice would otherwise rewrite most of the
                // record table's pages. Its `tailBytes` then counts fewer bytes than the tail holds. That count
                // decides only when a local append to a record no transaction loaded folds the tail
                // (``extendTail(of:with:seq:bytes:)``); a transaction that loads the record counts the tail as it
                // reads it and folds it here once it outgrows the state. So a tail stays under about twice the
                // state and the allowance.
                if size.hasTail && ownerStays { continue }
                try db.execute(
                    cached: "UPDATE record SET tailStart = coalesce(tailStart, ?), tailBytes = ?\(setOwner) "
                        + "WHERE type = ? AND id = ?",
                    values: [rows.firstSeq.databaseValue, (size.tail + rows.bytes).databaseValue] + ownerAndKey()
                )
                continue
            }
            let bytes = try store.codec.encode(state, of: record)
            if entry.existing {
                try db.execute(
                    cached: "UPDATE record SET state = ?, tailStart = NULL, tailBytes = 0\(setOwner) "
                        + "WHERE type = ? AND id = ?",
                    values: [bytes.databaseValue] + ownerAndKey()
                )
            } else {
                try db.execute(
                    try bulk().record,
                    values: [
                        record.type.databaseValue, record.id.databaseValue, owner.databaseValue, bytes.databaseValue,
                    ]
                )
            }
        }
        // Most stores have no open conflict: then no touched field was in conflict, and no lookup is needed.
        let inboxIsEmpty = try !(Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM conflict)") ?? false)
        func check(_ record: RecordRef, existing: Bool, _ field: String, _ fieldState: FieldState) throws {
            guard let policy = schema.policy(type: record.type, field: field), policy.isRegister else { return }
            let isConflict = fieldState.resolution(under: policy).isConflict
            let wasConflict =
                try !inboxIsEmpty && existing
                && Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM conflict WHERE type = ? AND id = ? AND field = ?"),
                    arguments: [record.type, record.id, field]
                ) ?? false
            if isConflict && !wasConflict {
                try insertConflict(record, field)
            } else if !isConflict && wasConflict {
                try db.cachedStatement(sql: "DELETE FROM conflict WHERE type = ? AND id = ? AND field = ?").execute(
                    arguments: [record.type, record.id, field])
                report.resolvedConflicts += 1
            }
        }
        // A record taken whole is new to the store: its conflicts were recorded with it, from its final state.
        for (record, entry) in held where !entry.takenWhole {
            guard let fields = entry.touched, let state = entry.state else { continue }
            for field in fields { try check(record, existing: entry.existing, field, state[field]) }
        }
        try db.execute(
            sql: "UPDATE replica SET counter = ?, clockMillis = ?, clockCounter = ? WHERE id = 1",
            arguments: [Int64(counter), Int64(clock.latest.millis), Int64(clock.latest.counter)]
        )
    }
}
