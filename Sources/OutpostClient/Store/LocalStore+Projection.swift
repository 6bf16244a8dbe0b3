import Foundation
import GRDB
import OutpostCRDT
import OutpostModel
import OutpostProtocol
import OutpostSQLite
import Synchronization

/// The store's projection: indexed tables of the fields that lists filter and sort on, derived from the
/// merged states of tasks, patients, observations and encounters (docs/store.md, "The projection").
///
/// It is derived data, written in the same transaction as the record states it comes from (every local edit,
/// received page, snapshot page, scope purge and conflict resolution), created by the `v6-projection`
/// migration, filled when the store is opened after it (``LocalStore/fillProjectionIfStale()``: the fill
/// decodes the states, which needs an encrypted store's key) and rebuilt by ``LocalStore/rebuildProjection()``.
/// The values come from the model's views (``TaskView``, ``PatientView``, ``MaterializedRecord``), so the
/// rule that reads a field is the model's, in one place.
///
/// No names, birth dates, phones, addresses or free text are projected. In a plain store the values are in
/// clear; in an encrypted store only record ids are, the rest being tokens and sealed blobs
/// (``ProjectionCodec``).
enum Projection {
    /// How a column is stored in an encrypted store (``ProjectionCodec``).
    enum Kind {
        /// A record id: in clear.
        case identifier
        /// Filtered by equality: a keyed token.
        case equality
        /// Ordered or ranged on, or free text: NULL, the value in the sealed blob.
        case sealed
    }

    /// One projected table: its name and columns; the first column is the record's id.
    struct Table: Sendable {
        var name: String
        var columns: [String]
        /// Whether the table has a `sealed` column after its columns (the main table of a record type).
        var hasSealed = false

        /// How `column` is stored in an encrypted store.
        func kind(of column: String) -> Kind {
            if Projection.identifierColumns.contains(column) { return .identifier }
            return Projection.sealedColumns.contains(column) ? .sealed : .equality
        }

        /// The columns, then `sealed` for a main table: what is selected and inserted.
        var storedColumns: [String] { columns + (hasSealed ? ["sealed"] : []) }

        /// How many ``storedColumns`` there are, without making their list (a bulk write sizes every row by it).
        var storedColumnCount: Int { columns.count + (hasSealed ? 1 : 0) }
    }

    /// Columns holding record ids, in clear in every store.
    static let identifierColumns: Set<String> = [
        "id", "patient", "team", "assignee", "subgroup", "mergedInto", "site", "task",
    ]
    /// Columns ordered or ranged on, and the task's text a list prints (its title, and the fields it shows
    /// without filtering on them): only in the sealed blob in an encrypted store.
    static let sealedColumns: Set<String> = [
        "dueDate", "effectiveAt", "occurredAt", "title", "channel", "referralStatus", "conflicts",
        // What the scorecard and gaps read (`v10-projection-scorecard`): dates, a patient's conditions, an
        // observation's value, an encounter's cost.
        "referralSentOn", "resultReceivedOn", "deceasedOn", "conditions", "value", "costCents",
    ]

    static let task = Table(
        name: "task_view",
        columns: [
            "id", "patient", "team", "assignee", "status", "isOpen", "priority", "dueDate", "kind", "title", "channel",
            "referralStatus", "conflicts", "statusHistory", "referralSentOn", "resultReceivedOn",
        ],
        hasSealed: true
    )
    static let taskGap = Table(name: "task_gap", columns: ["task", "key"])
    static let patient = Table(
        name: "patient_view",
        columns: [
            "id", "team", "subgroup", "mergedInto", "status", "riskTier", "isRetired", "isAwaiting", "deceasedOn",
            "conditions",
        ],
        hasSealed: true
    )
    static let patientSite = Table(name: "patient_site", columns: ["patient", "site"])
    static let patientGap = Table(name: "patient_gap", columns: ["patient", "gap"])
    static let observation = Table(
        name: "observation_view",
        columns: ["id", "patient", "code", "effectiveAt", "status", "value", "unit"],
        hasSealed: true
    )
    static let encounter = Table(
        name: "encounter_view",
        columns: ["id", "patient", "kind", "occurredAt", "status", "costCents"],
        hasSealed: true
    )

    /// The tables of each projected record type.
    static let tables: [String: [Table]] = [
        RecordType.task.rawValue: [task, taskGap],
        RecordType.patient.rawValue: [patient, patientSite, patientGap],
        RecordType.observation.rawValue: [observation],
        RecordType.encounter.rawValue: [encounter],
    ]

    /// Every projected table, in a fixed order.
    static let allTables = [task, taskGap, patient, patientSite, patientGap, observation, encounter]

    /// The schema, created by the `v6-projection` migration. Never edit once shipped: add a migration
    /// (``scorecardColumnsSQL``, `v10-projection-scorecard`).
    static let schemaSQL = """
        CREATE TABLE task_view (
            id TEXT PRIMARY KEY NOT NULL,
            patient TEXT,
            team TEXT,
            assignee TEXT,
            status TEXT,
            isOpen,
            priority TEXT,
            dueDate TEXT,
            kind TEXT,
            title TEXT,
            channel TEXT,
            referralStatus TEXT,
            conflicts TEXT,
            sealed BLOB
        ) WITHOUT ROWID;
        CREATE INDEX task_view_patient ON task_view (patient);
        CREATE INDEX task_view_team ON task_view (team, isOpen, dueDate);
        CREATE INDEX task_view_assignee ON task_view (assignee, isOpen, dueDate);
        CREATE INDEX task_view_status ON task_view (status);
        CREATE TABLE task_gap (
            task TEXT NOT NULL,
            key TEXT NOT NULL,
            PRIMARY KEY (task, key)
        ) WITHOUT ROWID;
        CREATE INDEX task_gap_key ON task_gap (key);
        CREATE TABLE patient_view (
            id TEXT PRIMARY KEY NOT NULL,
            team TEXT,
            subgroup TEXT,
            mergedInto TEXT,
            status TEXT,
            riskTier TEXT,
            isRetired,
            isAwaiting,
            sealed BLOB
        ) WITHOUT ROWID;
        CREATE INDEX patient_view_team ON patient_view (team, subgroup);
        CREATE INDEX patient_view_subgroup ON patient_view (subgroup);
        CREATE TABLE patient_site (
            patient TEXT NOT NULL,
            site TEXT NOT NULL,
            PRIMARY KEY (patient, site)
        ) WITHOUT ROWID;
        CREATE INDEX patient_site_site ON patient_site (site, patient);
        CREATE TABLE patient_gap (
            patient TEXT NOT NULL,
            gap TEXT NOT NULL,
            PRIMARY KEY (patient, gap)
        ) WITHOUT ROWID;
        CREATE INDEX patient_gap_gap ON patient_gap (gap, patient);
        CREATE TABLE observation_view (
            id TEXT PRIMARY KEY NOT NULL,
            patient TEXT,
            code TEXT,
            effectiveAt TEXT,
            status TEXT,
            sealed BLOB
        ) WITHOUT ROWID;
        CREATE INDEX observation_view_patient ON observation_view (patient, code, effectiveAt);
        CREATE INDEX observation_view_code ON observation_view (code, effectiveAt);
        CREATE TABLE encounter_view (
            id TEXT PRIMARY KEY NOT NULL,
            patient TEXT,
            kind TEXT,
            occurredAt TEXT,
            status TEXT,
            sealed BLOB
        ) WITHOUT ROWID;
        CREATE INDEX encounter_view_patient ON encounter_view (patient, occurredAt);
        CREATE INDEX encounter_view_kind ON encounter_view (kind, occurredAt);
        CREATE TABLE projection_stale (id INTEGER PRIMARY KEY CHECK (id = 1));
        """

    /// The columns the scorecard and gaps read, added by the `v10-projection-scorecard` migration: whether a
    /// task's status was ever written more than once (only such a task's completion can be dated, by its
    /// change log: `Scorecard.completionDay`), a referral's sent and result dates, a patient's date of death
    /// and conditions (sorted, one per line), an observation's value, an encounter's cost. Never edit once
    /// shipped: add a migration.
    static let scorecardColumnsSQL = """
        ALTER TABLE task_view ADD COLUMN statusHistory;
        ALTER TABLE task_view ADD COLUMN referralSentOn TEXT;
        ALTER TABLE task_view ADD COLUMN resultReceivedOn TEXT;
        ALTER TABLE patient_view ADD COLUMN deceasedOn TEXT;
        ALTER TABLE patient_view ADD COLUMN conditions TEXT;
        ALTER TABLE observation_view ADD COLUMN value TEXT;
        ALTER TABLE encounter_view ADD COLUMN costCents INTEGER;
        """

    /// An observation's unit, added by the `v17-observation-unit` migration: the scorecard reads an HbA1c in
    /// mmol/mol converted to % (``CareModel/percentHbA1c(_:unit:)``). Never edit once shipped: add a migration.
    static let observationUnitSQL = """
        ALTER TABLE observation_view ADD COLUMN unit TEXT;
        """

    /// How a patient's conditions are held in one column: sorted, each once, one per line (codes hold no
    /// line breaks; `nil` when there are none).
    static func joinedConditions(_ record: RecordFields) -> String? {
        let conditions = Set(record.values("conditions").compactMap(\.stringValue)).sorted()
        return conditions.isEmpty ? nil : conditions.joined(separator: "\n")
    }

    /// The fields whose writes may change a record's projected rows (``rows(of:_:)``), by projected type: the
    /// fields the rows read and, for a task, every register that can be in conflict (its `conflicts` column names
    /// them; a last-writer-wins register never is, ``FieldState/resolution(under:)``). A write to any other field
    /// of the record (a note appended to a task, a patient's phone, a task's outreach attempts) leaves its rows as
    /// they are: ``StoreTransaction`` then makes them neither before nor after the write (``unprojected(by:)``).
    /// `UnprojectedFieldsTests` writes every other field of every projected type in random states, concurrently
    /// too, and checks that the rows stay the same.
    static let fieldsProjected: [String: Set<String>] = [
        RecordType.task.rawValue: Set(
            CareModel.fields(of: .task).filter { $0.isRegister && $0.policy != .lww }.map(\.name)
        ).union([
            "patient", "team", "assignee", "status", "priority", "dueDate", "kind", "title", "channel",
            "referralStatus", "referralSentOn", "resultReceivedOn",
        ]),
        RecordType.patient.rawValue: PatientView.ScopeKeys.fields.union(
            ["subgroup", "mergedInto", "status", "riskTier", "deceasedOn", "conditions", "careGaps"]
        ).union(CareModel.fields(of: .patient).filter(\.isPlacement).map(\.name)),
        RecordType.observation.rawValue: ["patient", "code", "effectiveAt", "status", "value", "unit"],
        RecordType.encounter.rawValue: ["patient", "kind", "occurredAt", "status", "costCents"],
    ]

    /// Whether a write of `field` may change the projected rows of a record of `type` (``fieldsProjected``); a type
    /// that is not projected has no rows to change.
    static func mayChange(_ type: String, field: String) -> Bool {
        fieldsProjected[type]?.contains(field) ?? false
    }

    /// Whether any of `changes` (of one record of `type`) writes a field its projected rows read.
    static func mayChange(_ type: String, by changes: some Sequence<Change>) -> Bool {
        guard let fields = fieldsProjected[type] else { return false }
        return changes.contains { fields.contains($0.field) }
    }

    /// The records of a projected type that `changes` touch, every one of whose changes there writes a field its
    /// projected rows do not read (``mayChange(_:field:)``), but those the same page `carries` whole (a state
    /// merged may change any field): their rows stay as they are. What a received page's write
    /// (``LocalStore/applyPage(changes:records:forms:removed:checkpoint:preloaded:unprojected:)``) and its read ahead
    /// (``LocalStore/preload(_:unprojected:)``) make no rows for.
    static func unprojected(by changes: [Change], carrying carried: [SnapshotRecord] = []) -> Set<RecordRef> {
        // With no changes, no record is changed only in unprojected fields (a snapshot page: its records are not
        // hashed).
        guard !changes.isEmpty else { return [] }
        var projecting = Set(carried.lazy.map(\.record))
        var others = Set<RecordRef>()
        for change in changes where tables[change.record.type] != nil {
            if mayChange(change.record.type, field: change.field) {
                projecting.insert(change.record)
            } else {
                others.insert(change.record)
            }
        }
        return others.subtracting(projecting)
    }

    /// One row of a projected table, as its values (whatever the store's codec writes for them).
    struct Row: Hashable, Sendable {
        var table: String
        var values: [DatabaseValue]
        /// A main row's list that is also in its side table: a task's gap keys, a patient's open care gaps
        /// (an encrypted store reads them back from the main row's sealed blob).
        var extra: [String] = []
    }

    /// The rows that project `record` in `state`: none for a type that is not projected; otherwise one row of
    /// the type's main table (every record has one, with NULLs where the view reads nothing), a task's gap
    /// keys, and a patient's sites and open care gaps, one row each.
    static func rows(of record: RecordRef, _ state: RecordState) -> [Row] {
        guard tables[record.type] != nil, let type = RecordType(rawValue: record.type) else { return [] }
        // Only the fields the rows hold are read (RecordFields reads them as MaterializedRecord would).
        let reader = RecordFields(type: type, state: state)
        // Values made as what they are: no existential box per column (a row is made for every record a
        // snapshot, an import or a received change touches, twice for a held one).
        func row(_ table: Table, _ values: [DatabaseValue]) -> Row {
            Row(table: table.name, values: values)
        }
        func text(_ value: String?) -> DatabaseValue { value?.databaseValue ?? .null }
        func text(field: String) -> DatabaseValue { text(reader.string(field)) }
        switch type {
        case .task:
            // Filters compare a register's text, as the in-memory lists did (`task.string("team") == team`);
            // what `TaskView` reads is all projected (the fields with concurrent values as `conflicts`, names
            // joined by commas), so that lists print tasks without decoding their states.
            // Read as `TaskView` reads them, without making one (its ids' checks are most of its cost): a task
            // whose id is not a task id has no view, so it reads as open and without gap keys.
            let isTask = TaskID(record.id) != nil
            let title = reader.string("title")
            let isClosed = isTask && (reader.string("status").map(TaskView.isClosed(status:)) ?? false)
            let conflicts = reader.conflictedFields
            // The gap keys of its title (GapRules.keys(inTitle:)): the title is free text, never projected.
            let keys = isTask ? Set(GapRules.keys(inTitle: title ?? "")).sorted() : []
            var main = row(
                task,
                [
                    record.id.databaseValue, text(field: "patient"), text(field: "team"),
                    text(field: "assignee"), text(field: "status"), (!isClosed).databaseValue,
                    text(field: "priority"), text(field: "dueDate"), text(field: "kind"),
                    text(title), text(field: "channel"),
                    text(field: "referralStatus"),
                    conflicts.isEmpty ? .null : conflicts.joined(separator: ",").databaseValue,
                    // More than one write of the status ever seen (live or replaced): every assignment in the
                    // change log is one of them, so a task without is never dated as completed.
                    (state["status"].live.count + state["status"].superseded.count > 1).databaseValue,
                    text(field: "referralSentOn"), text(field: "resultReceivedOn"),
                ]
            )
            main.extra = keys
            return [main] + keys.map { row(taskGap, [record.id.databaseValue, $0.databaseValue]) }
        case .patient:
            // What the panel reads (PanelSummary): registers' text, care gaps' text, the model's predicates.
            // Its team and sites as every scope reads them (PatientView.ScopeKeys): `--team` and `--site` select
            // on these columns by the same rule.
            let scopeKeys = PatientView.ScopeKeys(state: state)
            let gaps = Set(reader.values("careGaps").compactMap(\.stringValue)).sorted()
            var main = row(
                patient,
                [
                    record.id.databaseValue, text(scopeKeys.team), text(field: "subgroup"),
                    text(field: "mergedInto"), text(field: "status"),
                    text(field: "riskTier"), reader.isRetired.databaseValue,
                    CareModel.isAwaitingAssignment(reader).databaseValue, text(field: "deceasedOn"),
                    text(joinedConditions(reader)),
                ]
            )
            main.extra = gaps
            var rows = [main]
            for site in scopeKeys.sites {
                rows.append(row(patientSite, [record.id.databaseValue, site.databaseValue]))
            }
            for gap in gaps { rows.append(row(patientGap, [record.id.databaseValue, gap.databaseValue])) }
            return rows
        case .observation:
            return [
                row(
                    observation,
                    [
                        record.id.databaseValue, text(field: "patient"), text(field: "code"),
                        text(field: "effectiveAt"), text(field: "status"),
                        text(field: "value"), text(field: "unit"),
                    ]
                )
            ]
        case .encounter:
            return [
                row(
                    encounter,
                    [
                        record.id.databaseValue, text(field: "patient"), text(field: "kind"), text(field: "occurredAt"),
                        text(field: "status"),
                        reader.value("costCents")?.intValue?.databaseValue ?? .null,
                    ]
                )
            ]
        default:
            return []
        }
    }

    /// Writes the projection of `record` (replacing what was there), in `codec`'s form; a no-op for types not
    /// projected. When the rows before the write are known, ``update(_:from:to:codec:db:)`` writes less.
    static func write(_ record: RecordRef, _ state: RecordState, codec: ProjectionCodec, db: Database) throws {
        guard let tables = tables[record.type] else { return }
        try remove(record, tables: tables, db: db)
        try insert(rows(of: record, state), codec: codec, db: db)
    }

    /// Writes the projection of `record` as its state goes to `new` from a state whose rows were `oldRows`
    /// (``rows(of:_:)`` of the state as loaded: what the projection holds, since it equals a recomputation
    /// from the states; nothing is read back), writing only what changed: nothing when the rows are the same
    /// (most remote changes touch fields that are not projected), the changed columns of the main row, the
    /// side rows added and removed. `oldRows` is `nil` for a record the store did not hold: it has no rows
    /// yet, so they are inserted and nothing is deleted.
    static func update(
        _ record: RecordRef,
        from oldRows: [Row]?,
        to new: RecordState,
        codec: ProjectionCodec,
        db: Database
    ) throws {
        guard let tables = tables[record.type] else { return }
        defer { KillPoint.projected() }
        let newRows = rows(of: record, new)
        guard let oldRows else {
            try insert(newRows, codec: codec, db: db)
            return
        }
        guard oldRows != newRows else { return }
        // The main row (first of both lists: every projected record has one): its changed columns only, so
        // that SQLite updates only the indexes on them.
        let main = tables[0]
        if let before = oldRows.first, let after = newRows.first, before != after {
            var changed = main.columns.indices.dropFirst().filter { before.values[$0] != after.values[$0] }
            if codec.isEncrypted && main.hasSealed { changed.append(main.columns.count) }
            let stored = try codec.encode(after, table: main)
            let names = main.storedColumns
            // Nothing to set in a plain store when only the main row's list changed (its side rows hold it).
            if !changed.isEmpty {
                try db.execute(
                    cached: "UPDATE \(main.name) SET \(changed.map { "\(names[$0]) = ?" }.joined(separator: ", ")) "
                        + "WHERE \(names[0]) = ?",
                    values: changed.map { stored[$0] } + [stored[0]]
                )
            }
        }
        // Side rows: each is its whole key, so a changed one is a removal and an insertion.
        let before = Set(oldRows.dropFirst())
        let after = Set(newRows.dropFirst())
        for row in before.subtracting(after) {
            guard let table = tables.first(where: { $0.name == row.table }) else { continue }
            try db.execute(
                cached: "DELETE FROM \(table.name) WHERE \(table.columns[0]) = ? AND \(table.columns[1]) = ?",
                values: Array(try codec.encode(row, table: table).prefix(2))
            )
        }
        try insert(newRows.dropFirst().filter { !before.contains($0) }, codec: codec, db: db)
    }

    /// Removes the projection of `record` (a purged record); a no-op for types not projected.
    static func remove(_ record: RecordRef, db: Database) throws {
        guard let tables = tables[record.type] else { return }
        try remove(record, tables: tables, db: db)
    }

    private static func remove(_ record: RecordRef, tables: [Table], db: Database) throws {
        for table in tables {
            try db.cachedStatement(sql: "DELETE FROM \(table.name) WHERE \(table.columns[0]) = ?")
                .execute(arguments: [record.id])
        }
    }

    private static func insert(_ rows: some Sequence<Row>, codec: ProjectionCodec, db: Database) throws {
        for row in rows {
            guard let position = position(ofTable: row.table) else { continue }
            try db.execute(cached: insertSQL[position], values: try codec.encode(row, table: allTables[position]))
        }
    }

    /// Where the table named `name` is in ``allTables`` (table names are unique across the projection).
    static func position(ofTable name: String) -> Int? {
        allTables.firstIndex { $0.name == name }
    }

    /// The insert statement of each table, by its place in ``allTables``.
    static let insertSQL: [String] = allTables.map { table in
        "INSERT INTO \(table.name) (\(table.storedColumns.joined(separator: ", "))) VALUES ("
            + Array(repeating: "?", count: table.storedColumns.count).joined(separator: ", ") + ")"
    }
}

/// A fault point for the kill tests (`ProjectionKillTests`): with `OUTPOST_TEST_KILL_AFTER_PROJECTED=N` in its
/// environment, the process kills itself (SIGKILL) once the projection of its N-th record has been written,
/// which is always inside a write transaction, before it commits: a crash at a chosen point of a received
/// page, a snapshot page or a conflict resolution, without timing. Unset (always, outside the tests), it is
/// one comparison per projected record.
enum KillPoint {
    private static let limit = ProcessInfo.processInfo.environment["OUTPOST_TEST_KILL_AFTER_PROJECTED"].flatMap {
        Int($0)
    }
    private static let count = Atomic<Int>(0)

    static func projected() {
        guard let limit else { return }
        if count.add(1, ordering: .relaxed).newValue >= limit { kill(getpid(), SIGKILL) }
    }
}

extension LocalStore {
    /// Empties the projection and projects every held record again, reading the record table as a stream,
    /// and clears the stale mark; builds any index the store lacks (``missingIndexes(db:)``).
    func rebuildProjection(db: Database) throws {
        try Self.buildIndexes(try Self.missingIndexes(db: db), db: db)
        for table in Projection.allTables { try db.execute(sql: "DELETE FROM \(table.name)") }
        try forEachProjectedState(db: db) { record, state in
            try Projection.update(record, from: nil, to: state, codec: codec.projection, db: db)
        }
        try db.execute(sql: "DELETE FROM projection_stale")
    }

    /// Calls `body` with every held record of a projected type and its state (tail folded in), one at a time.
    func forEachProjectedState(db: Database, _ body: (RecordRef, RecordState) throws -> Void) throws {
        for type in Projection.tables.keys.sorted() {
            // Ids first, then one record at a time: a statement cannot run while a cursor on another is open,
            // and folding a tail reads the change log.
            let ids = try String.fetchAll(
                db,
                sql: "SELECT id FROM record WHERE type = ? ORDER BY id",
                arguments: [type]
            )
            for id in ids {
                let record = RecordRef(type: type, id: id)
                guard let state = try loadState(record, db: db) else { continue }
                try body(record, state)
            }
        }
    }

    /// The differences between the projection and a recomputation from the record states: one line per
    /// table and record whose rows differ (identifiers only), empty when they agree. Sealed blobs are
    /// compared opened (their nonces differ), tokens as they are.
    func checkProjection(db: Database) throws -> [String] {
        let projection = codec.projection
        var expected: [String: Set<[DatabaseValue]>] = [:]
        var owners: [[DatabaseValue]: String] = [:]
        let tables = Dictionary(uniqueKeysWithValues: Projection.allTables.map { ($0.name, $0) })
        try forEachProjectedState(db: db) { record, state in
            for row in Projection.rows(of: record, state) {
                guard let table = tables[row.table] else { continue }
                let comparable = try projection.encode(row, table: table, sealing: false)
                expected[row.table, default: []].insert(comparable)
                owners[comparable] = record.id
            }
        }
        var problems: [String] = []
        for table in Projection.allTables {
            var found = Set<[DatabaseValue]>()
            var unreadable = Set<String>()
            let cursor = try GRDB.Row.fetchCursor(
                db,
                sql: "SELECT \(table.storedColumns.joined(separator: ", ")) FROM \(table.name)"
            )
            while let row = try cursor.next() {
                let stored = table.storedColumns.indices.map { row[$0] as DatabaseValue }
                do {
                    found.insert(try projection.comparable(stored, table: table))
                } catch {
                    unreadable.insert(String.fromDatabaseValue(stored[0]) ?? "?")
                }
            }
            let want = expected[table.name] ?? []
            var records = unreadable
            for row in want.subtracting(found) { records.insert(owners[row] ?? "?") }
            for row in found.subtracting(want) { records.insert(String.fromDatabaseValue(row[0]) ?? "?") }
            for id in records.sorted() {
                problems.append("projection table \(table.name) disagrees with the record state of \(id)")
            }
        }
        return problems
    }

    /// Empties the projection and recomputes it from every record's state, in one transaction
    /// (`outpost doctor --rebuild`). Safe at any time: the projection is derived data.
    public func rebuildProjection() throws(ClientError) {
        try write(doing: "rebuild the projection") { db in try rebuildProjection(db: db) }
    }

    /// Fills the projection when the `v6-projection` migration (or a fill cut short) left it marked stale;
    /// called by ``open(at:configuration:)`` once the store is unlocked.
    func fillProjectionIfStale() throws(ClientError) {
        try write(doing: "fill the projection") { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM projection_stale)") == true else {
                return
            }
            try rebuildProjection(db: db)
        }
    }

    /// Compares the projection with a recomputation from the record states; returns one line per table and
    /// record that disagree (identifiers only, no field values), empty when they agree (`outpost doctor`).
    public func checkProjection() throws(ClientError) -> [String] {
        try read(doing: "check the projection") { db in try checkProjection(db: db) }
    }

    /// Records held, by type: counted on the projection for the projected types (small rows) and on the
    /// record table's key for the others, so that no record state is read.
    static func recordCounts(db: Database) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        var previous = ""
        // Walks the distinct types through the record table's primary key (one seek per type).
        while let type = try String.fetchOne(
            db.cachedStatement(sql: "SELECT min(type) FROM record WHERE type > ?"),
            arguments: [previous]
        ) {
            previous = type
            let table = Projection.tables[type]?.first
            let sql =
                table.map { "SELECT count(*) FROM \($0.name)" } ?? "SELECT count(*) FROM record WHERE type = ?"
            counts[type] = try Int.fetchOne(db, sql: sql, arguments: table == nil ? [type] : []) ?? 0
        }
        return counts
    }
}
