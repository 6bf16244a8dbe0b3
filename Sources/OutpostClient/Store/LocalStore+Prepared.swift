import Foundation
import GRDB
import OutpostCRDT
public import OutpostProtocol
import OutpostSQLite

/// A projected row of a record new to the store: its table (its place in ``Projection/allTables``) and its values,
/// in stored form (``LocalStore/projectionInserts(of:_:)``), inserted by ``StoreTransaction/insert(_:)``.
typealias ProjectionInsert = (table: Int, values: [DatabaseValue])

/// A record new to the store, made ready to be written: its encoded (sealed, in an encrypted store) state, its
/// owner, its projected rows in their stored form, and its fields in conflict; for a snapshot page's record, also
/// its writes' clocks counted. Everything here is computed from the record's state alone, so it can be computed
/// before the write transaction, off SQLite's one writer (``LocalStore/prepare(_:)``): a bootstrap prepares page
/// N+1 while it writes page N.
struct PreparedRecord: Sendable {
    /// The values of the record table's insert: type, id, owner, state.
    var row: [DatabaseValue]
    /// Each projected row: its table and its values.
    var projection: [ProjectionInsert]
    /// The register fields whose concurrent values await review.
    var conflicts: [String]
    /// How many live writes the state holds and their latest millisecond (``RecordState/liveClockSummary``), counted
    /// for a snapshot page's record (``LocalStore/prepare(_:)``; `nil` for one prepared inside the write): the
    /// device's clock receives them from these when they are behind its wall clock, without reading them on the
    /// writer, whether the record is new to the store or merged.
    var clocks: (count: Int, latestMillis: UInt64)?
}

/// A snapshot page's records with each one prepared for a store that does not hold it
/// (``LocalStore/prepare(_:)``).
public struct PreparedSnapshot: Sendable {
    /// The page's records.
    public let records: [SnapshotRecord]
    /// The prepared form of each record, in the same order; `nil` where preparing failed (the record is then
    /// prepared again inside the write, where the failure is reported).
    let forms: [PreparedRecord?]

    /// How many records were prepared (the others are prepared again inside the write).
    public var preparedCount: Int { forms.count { $0 != nil } }
}

extension LocalStore {
    /// Prepares a snapshot page's records for ``applySnapshot(_:checkpoint:)-(PreparedSnapshot,_)``: the work
    /// that depends on a record's state alone, done outside the write transaction (and on another thread than
    /// the one writing the previous page). A record the store turns out to hold is merged as usual: of its
    /// prepared form only its counted clocks (how many, and the latest millisecond) are used.
    public func prepare(_ records: [SnapshotRecord]) -> PreparedSnapshot {
        PreparedSnapshot(
            records: records,
            forms: records.map { try? prepare($0.record, $0.state, countingClocks: true) }
        )
    }

    /// Merges one prepared page of a snapshot and removes the patients it names in `removed` (its first page's
    /// ``SnapshotPage/removed``, with ``SnapshotPage/leftScope``), as a pull page does; with `checkpoint`, also records where to pull from
    /// afterwards.
    @discardableResult
    public func applySnapshot(
        _ page: PreparedSnapshot,
        removed: [String] = [],
        leftScope: [String]? = nil,
        checkpoint: String?
    ) throws(ClientError) -> ApplyReport {
        try applyPage(
            changes: [],
            records: page.records,
            forms: page.forms,
            removed: removed,
            leftScope: leftScope,
            checkpoint: checkpoint
        ).report
    }

    /// The form `record` is written in when the store does not hold it and its state is `state`; with
    /// `countingClocks`, its writes' clocks counted too (a snapshot page's record, prepared off the writer).
    func prepare(_ record: RecordRef, _ state: RecordState, countingClocks: Bool = false) throws -> PreparedRecord {
        let bytes = try codec.encode(state, of: record)
        return PreparedRecord(
            row: [
                record.type.databaseValue, record.id.databaseValue, owner(of: record, state).databaseValue,
                bytes.databaseValue,
            ],
            projection: try projectionInserts(of: record, state),
            conflicts: conflictedFields(of: record, state),
            clocks: countingClocks ? state.liveClockSummary : nil
        )
    }

    /// The inserts that project a record new to the store whose state is `state`: each row's table and its values,
    /// in stored form (sealed, in an encrypted store). A snapshot's records and an import's are projected by these,
    /// computed before the write (``prepare(_:_:)``, ``RecordDrafter``).
    func projectionInserts(of record: RecordRef, _ state: RecordState) throws -> [ProjectionInsert] {
        // Each row given up to its encoding: a plain store's takes the row's values as they are.
        var rows = Projection.rows(of: record, state)
        var inserts: [ProjectionInsert] = []
        inserts.reserveCapacity(rows.count)
        for index in rows.indices {
            guard let position = Projection.position(ofTable: rows[index].table) else { continue }
            inserts.append(
                (position, try codec.projection.encode(taking: &rows[index], table: Projection.allTables[position]))
            )
        }
        return inserts
    }

    /// The patient `record` belongs to in `state` (its type's owner field, read as a register), which scopes
    /// and purges select records by.
    func owner(of record: RecordRef, _ state: RecordState) -> String? {
        guard let field = configuration.ownerField[record.type] else { return nil }
        return state[field].resolution(under: .lww).winner?.value.stringValue
    }

    /// The register fields of `record` whose concurrent values await review in `state`, sorted by name.
    func conflictedFields(of record: RecordRef, _ state: RecordState) -> [String] {
        state.conflictedFields { configuration.schema.policy(type: record.type, field: $0) }
    }
}

// MARK: - Indexes built once after a bulk load

extension LocalStore {
    /// The setting that holds the store's index definitions while a bootstrap has them dropped.
    static let deferredIndexesSetting = "bootstrap.deferredIndexes"

    /// The tables whose secondary indexes a bulk load into an empty store builds once, at its end: records,
    /// the change log and the projection.
    static let bulkLoadTables = ["record", "change"] + Projection.allTables.map(\.name)

    /// Drops the secondary indexes of ``bulkLoadTables`` and returns their definitions (`CREATE INDEX`
    /// statements, as SQLite keeps them), for ``buildIndexes(_:db:)``. SQLite then inserts a bulk load's rows
    /// without updating each index at a random place per row, and builds each index once, sorted.
    static func dropIndexes(db: Database) throws -> [String] {
        let indexes = try Row.fetchAll(
            db,
            sql: """
                SELECT name, sql FROM sqlite_master
                WHERE type = 'index' AND sql IS NOT NULL
                AND tbl_name IN (\(bulkLoadTables.map { _ in "?" }.joined(separator: ", ")))
                ORDER BY name
                """,
            arguments: StatementArguments(bulkLoadTables)
        )
        for row in indexes {
            let name: String = row["name"]
            try db.execute(sql: "DROP INDEX \"\(name.replacingOccurrences(of: "\"", with: "\"\""))\"")
        }
        return indexes.map { $0["sql"] as String }
    }

    /// Builds the indexes ``dropIndexes(db:)`` dropped.
    static func buildIndexes(_ definitions: [String], db: Database) throws {
        for sql in definitions { try db.execute(sql: sql) }
    }

    /// Drops the store's secondary indexes for the bootstrap of a store that holds no record, saving their
    /// definitions in the store (a bootstrap is one transaction per page); ``restoreIndexes()`` builds them
    /// once at the end. A bootstrap cut short (a crash, a lost network) leaves them saved: opening the store
    /// builds them again, before anything else.
    ///
    /// Does nothing when the store holds records (their indexes stay exact) or the indexes are already dropped.
    /// Returns whether it dropped them.
    @discardableResult
    public func deferIndexes() throws(ClientError) -> Bool {
        try write(doing: "prepare the store for a bootstrap") { db in
            guard try !(Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM record)") ?? false),
                try Self.savedIndexes(db: db) == nil
            else { return false }
            let definitions = try Self.dropIndexes(db: db)
            guard !definitions.isEmpty else { return false }
            let saved = String(decoding: try JSONEncoder().encode(definitions), as: UTF8.self)
            try db.execute(
                sql: "INSERT INTO setting (key, value) VALUES (?, ?)",
                arguments: [Self.deferredIndexesSetting, saved]
            )
            return true
        }
    }

    /// The definitions of the indexes a bootstrap dropped, as saved in the store (``deferIndexes()``); `nil`
    /// when none are dropped.
    static func savedIndexes(db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [deferredIndexesSetting])
    }

    /// Builds the indexes ``deferIndexes()`` dropped, in one transaction; does nothing when none are dropped.
    public func restoreIndexes() throws(ClientError) {
        try write(doing: "index the store") { db in try Self.restoreIndexes(db: db, path: path) }
    }

    /// ``restoreIndexes()`` inside a transaction; opening a store runs it before migrating, so that a migration
    /// finds the indexes the version that dropped them had.
    static func restoreIndexes(db: Database, path: String) throws {
        guard let saved = try savedIndexes(db: db) else { return }
        guard let definitions = try? JSONDecoder().decode([String].self, from: Data(saved.utf8)) else {
            throw ClientError(
                code: .storeCorrupt,
                message: "the indexes saved in \(path) during a bootstrap cannot be read: the store is damaged; "
                    + "restore it from a backup, or create a new one with 'outpost init' and sync it"
            )
        }
        try buildIndexes(definitions, db: db)
        try db.execute(sql: "DELETE FROM setting WHERE key = ?", arguments: [deferredIndexesSetting])
    }

    /// The indexes a store made by this version has and this one lacks (their `CREATE INDEX` statements):
    /// none, unless a bulk load or bootstrap was cut short in a way nothing mended, or the file was edited.
    static func missingIndexes(db: Database) throws -> [String] {
        let fresh = try DatabaseQueue()
        try migrator.migrate(fresh)
        let expected = try fresh.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
        let present = Set(
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
        return expected.filter { !present.contains($0) }.sorted()
    }
}
