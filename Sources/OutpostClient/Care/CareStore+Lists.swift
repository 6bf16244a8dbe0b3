import Foundation
import GRDB
public import OutpostCRDT
public import OutpostModel
import Synchronization

/// Which care tasks a list shows; `nil` filters match everything.
public struct TaskQuery: Sendable, Hashable {
    /// Only this patient's tasks.
    public var patient: String?
    /// Only tasks with this status.
    public var status: String?
    /// Only this team's tasks.
    public var team: String?
    /// Only tasks assigned to this person.
    public var assignee: String?
    /// Only tasks of patients seen at this site.
    public var site: String?
    /// Only open tasks (not closed: ``TaskView/isClosed``).
    public var isOpenOnly: Bool

    /// Creates a query.
    public init(
        patient: String? = nil,
        status: String? = nil,
        team: String? = nil,
        assignee: String? = nil,
        site: String? = nil,
        isOpenOnly: Bool = false
    ) {
        self.patient = patient
        self.status = status
        self.team = team
        self.assignee = assignee
        self.site = site
        self.isOpenOnly = isOpenOnly
    }
}

/// Which patients a list shows; `nil` filters match everything.
public struct PatientQuery: Sendable, Hashable {
    /// Only patients in one of these subgroups (ids).
    public var subgroups: Set<String>?
    /// Only patients whose primary team is this team.
    public var team: String?
    /// Only patients seen at this site.
    public var site: String?
    /// Only patients of this risk tier.
    public var riskTier: String?
    /// Retired patients too (by their status, or merged into another patient).
    public var includesRetired: Bool

    /// Creates a query.
    public init(
        subgroups: Set<String>? = nil,
        team: String? = nil,
        site: String? = nil,
        riskTier: String? = nil,
        includesRetired: Bool = false
    ) {
        self.subgroups = subgroups
        self.team = team
        self.site = site
        self.riskTier = riskTier
        self.includesRetired = includesRetired
    }
}

/// One task of a worklist: the fields the order reads, and the whole record.
public struct WorklistEntry: Sendable, Hashable {
    /// The task as worklists read it.
    public var task: TaskView
    /// The task's record.
    public var record: MaterializedRecord
}

extension CareStore {
    /// The tasks `query` selects, sorted by id: selected on the store's projection (indexed), then read one
    /// by one, so that only the matching tasks are ever decoded. A patient's tasks include those of the
    /// duplicates merged into it (docs/model.md, "Duplicate merges").
    ///
    /// - Throws: ``ClientError`` when the store cannot be read.
    public func tasks(_ query: TaskQuery) throws(ClientError) -> [MaterializedRecord] {
        let (clauses, arguments) = try taskFilter(query)
        let sql =
            "SELECT id FROM task_view" + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
            + " ORDER BY id"
        return try store.records(ofType: RecordType.task.rawValue, selectedBy: sql, arguments: arguments).map {
            MaterializedRecord(type: .task, id: $0.id, state: $0.state)
        }
    }

    /// The tasks `query` selects, sorted by id, as the projection holds them: records with only the fields
    /// ``TaskView`` reads (patient, team, kind, title, status, priority, due date, assignee, channel, referral
    /// status; a field with concurrent values is marked in conflict). No task's state is decoded: what lists
    /// print, read in a few milliseconds. ``tasks(_:)`` gives the whole records.
    public func taskRows(_ query: TaskQuery) throws(ClientError) -> [MaterializedRecord] {
        let names = Self.projectedTaskFields
        var result: [MaterializedRecord] = []
        try forEachProjectedTask(query, fields: names) { id, values, conflicts in
            var fields = [String: FieldValue](minimumCapacity: names.count)
            for name in conflicts { fields[name] = .single(nil, isConflict: true) }
            for (name, value) in zip(names, values) {
                guard let value else { continue }
                fields[name] = .single(.string(value), isConflict: conflicts.contains(name))
            }
            result.append(MaterializedRecord(type: .task, id: id, fields: fields))
        }
        return result
    }

    /// The tasks `query` selects, sorted by id, as a table's rows: the task's id, then a cell for each of
    /// `columns`, made by `cell` from the field's projected text (`nil` when unset or not projected) and whether
    /// it has concurrent values. The same values as ``taskRows(_:)``'s fields (`ProjectionTests`), with no
    /// dictionary of fields made per task: what `outpost task list` prints.
    public func taskCells(
        _ query: TaskQuery,
        columns: [String],
        cell: (_ text: String?, _ isConflict: Bool) -> String
    ) throws(ClientError) -> [[String]] {
        let names = columns.filter(Self.projectedTaskFields.contains)
        let positions = columns.map { names.firstIndex(of: $0) }
        var result: [[String]] = []
        try forEachProjectedTask(query, fields: names) { id, values, conflicts in
            var cells = [id]
            cells.reserveCapacity(columns.count + 1)
            for (column, position) in zip(columns, positions) {
                cells.append(cell(position.flatMap { values[$0] }, conflicts.contains(column)))
            }
            result.append(cells)
        }
        return result
    }

    /// The task fields the projection holds as text (``taskRows(_:)``).
    private static let projectedTaskFields = [
        "patient", "team", "assignee", "status", "priority", "dueDate", "kind", "title", "channel", "referralStatus",
    ]

    /// Calls `body` with each task `query` selects, sorted by id, from the projection: its id, the text of each
    /// of `fields` (projected task columns), and the fields with concurrent values.
    private func forEachProjectedTask(
        _ query: TaskQuery,
        fields names: [String],
        _ body: (_ id: String, _ values: [String?], _ conflicts: Set<String>) -> Void
    ) throws(ClientError) {
        let (clauses, arguments) = try taskFilter(query)
        let filter = clauses.isEmpty ? nil : (clauses.joined(separator: " AND "), StatementArguments(arguments))
        try store.read(doing: "list tasks") { db in
            // Positional: the id, the conflicts, then the fields.
            try store.forEachProjectedRow(
                of: Projection.task,
                columns: ["id", "conflicts"] + names,
                side: nil,
                filter: filter,
                db: db
            ) { row, _ in
                let conflicts = String.fromDatabaseValue(row[1]).map { Set($0.split(separator: ",").map(String.init)) }
                body(
                    String.fromDatabaseValue(row[0]) ?? "",
                    row.dropFirst(2).map { String.fromDatabaseValue($0) },
                    conflicts ?? []
                )
            }
        }
    }

    /// The SQL conditions on `task_view` that select what `query` asks for, and their arguments (equality
    /// values through the projection codec: tokens in an encrypted store).
    private func taskFilter(
        _ query: TaskQuery
    ) throws(ClientError) -> (clauses: [String], arguments: [(any DatabaseValueConvertible)?]) {
        let codec = store.codec.projection
        let table = Projection.task
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        // A task's patient is its record's owner (an immutable lww register, the same value): selected on the
        // record table's owner index, which the store keeps anyway (scope purges), not on an index of its own.
        if let patient = query.patient {
            let owners = [patient] + (try projectedMerges()).duplicates(of: patient)
            clauses.append(
                "id IN (SELECT id FROM record WHERE type = 'task' AND owner IN ("
                    + Array(repeating: "?", count: owners.count).joined(separator: ", ") + "))"
            )
            arguments.append(contentsOf: owners.map { $0 as (any DatabaseValueConvertible)? })
        }
        for (column, value) in [("team", query.team), ("assignee", query.assignee)] {
            guard let value else { continue }
            clauses.append("\(column) = ?")
            arguments.append(value)
        }
        if let status = query.status {
            clauses.append("status = ?")
            arguments.append(codec.match(status, table: table, column: "status"))
        }
        if query.isOpenOnly {
            clauses.append("isOpen = ?")
            arguments.append(codec.match(true, table: table, column: "isOpen"))
        }
        if let site = query.site {
            clauses.append(
                "id IN (SELECT id FROM record WHERE type = 'task' AND owner IN "
                    + "(SELECT patient FROM patient_site WHERE site = ?))"
            )
            arguments.append(site)
        }
        return (clauses, arguments)
    }

    /// The merges of duplicate patients (``PatientMerges``), read from the projection's `mergedInto` links
    /// without decoding a patient.
    public func projectedMerges() throws(ClientError) -> PatientMerges {
        try store.read(doing: "read the merges") { db in
            var links: [String: String] = [:]
            var held = Set<String>()
            let rows = try Row.fetchCursor(db, sql: "SELECT id, mergedInto FROM patient_view")
            while let row = try rows.next() {
                let id: String = row[0]
                held.insert(id)
                if let target = row[1] as String? { links[id] = target }
            }
            return PatientMerges(links: links, held: held)
        }
    }

    /// The open tasks of a team, a person and/or a site's patients, in worklist order as of `today`
    /// (``TaskView/precedesOnWorklist(_:today:)``).
    public func worklist(
        team: String? = nil,
        person: String? = nil,
        site: String? = nil,
        today: CalendarDate
    ) throws(ClientError) -> [WorklistEntry] {
        let records = try tasks(TaskQuery(team: team, assignee: person, site: site, isOpenOnly: true))
        return records.compactMap { record in TaskView(record).map { WorklistEntry(task: $0, record: record) } }
            .sorted { $0.task.precedesOnWorklist($1.task, today: today) }
    }

    /// The tasks of ``worklist(team:person:site:today:)``, in the same order, read from the projection alone
    /// (``taskRows(_:)``): what `outpost worklist` prints, without decoding a task.
    public func worklistViews(
        team: String? = nil,
        person: String? = nil,
        site: String? = nil,
        today: CalendarDate
    ) throws(ClientError) -> [TaskView] {
        try taskRows(TaskQuery(team: team, assignee: person, site: site, isOpenOnly: true)).compactMap(TaskView.init)
            .sorted { $0.precedesOnWorklist($1, today: today) }
    }

    /// The patients `query` selects, sorted by id: selected on the projection, then read one by one.
    public func patients(_ query: PatientQuery) throws(ClientError) -> [MaterializedRecord] {
        let codec = store.codec.projection
        let table = Projection.patient
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if !query.includesRetired {
            clauses.append("isRetired = ?")
            arguments.append(codec.match(false, table: table, column: "isRetired"))
        }
        if let subgroups = query.subgroups {
            clauses.append("subgroup IN (\(Array(repeating: "?", count: subgroups.count).joined(separator: ", ")))")
            arguments.append(contentsOf: subgroups.sorted().map { $0 as (any DatabaseValueConvertible)? })
        }
        if let team = query.team {
            clauses.append("team = ?")
            arguments.append(team)
        }
        if let riskTier = query.riskTier {
            clauses.append("riskTier = ?")
            arguments.append(codec.match(riskTier, table: table, column: "riskTier"))
        }
        if let site = query.site {
            clauses.append("id IN (SELECT patient FROM patient_site WHERE site = ?)")
            arguments.append(site)
        }
        let sql =
            "SELECT id FROM patient_view" + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
            + " ORDER BY id"
        // A merged duplicate is retired by its link (docs/model.md, "Duplicate merges"), as its survivor resolves.
        let merges = query.includesRetired ? PatientMerges(links: [:], held: []) : try projectedMerges()
        return try store.records(ofType: RecordType.patient.rawValue, selectedBy: sql, arguments: arguments).compactMap
        {
            merges.isMerged($0.id) ? nil : MaterializedRecord(type: .patient, id: $0.id, state: $0.state)
        }
    }

    /// What ``PanelSummary`` reads, from the projection: every patient with the fields it projects (primary
    /// team, subgroup, merge link, risk tier, status, care gaps, whether it awaits assignment), and the teams
    /// and subgroups whole. No patient's state is decoded.
    public func panelData() throws(ClientError) -> ScorecardData {
        var records = try self.records(.team) + self.records(.subgroup)
        records.append(contentsOf: try store.projectedPatients())
        return ScorecardData(records: records, changes: [])
    }
}

extension CareStore {
    /// What ``GapRules`` reads, without decoding a record: patients (their primary team, status, merge link and
    /// conditions), observations, encounters and tasks from the projection (a task's title is given as its gap
    /// markers only, ``GapRules/keys(inTitle:)``: all the rules read of it).
    public func gapsData() throws(ClientError) -> ScorecardData {
        // The tasks, the largest part, are read while the rest is.
        let store = store
        let (tasks, (patients, observations, encounters)) = try bothAtOnce { () throws(ClientError) in
            try store.projectedGapTasks()
        } _: { () throws(ClientError) in
            (
                try store.projectedPatients(), try store.projectedObservations(values: false),
                try store.projectedEncounters(costs: false)
            )
        }
        return ScorecardData(
            records: patients,
            tasks: tasks,
            observations: observations,
            encounters: encounters,
            changes: []
        )
    }
}

extension LocalStore {
    /// The records of `type` whose ids `sql` selects (in its order), each read by its key, in one read
    /// transaction.
    func records(
        ofType type: String,
        selectedBy sql: String,
        arguments: [(any DatabaseValueConvertible)?]
    ) throws(ClientError) -> [(id: String, state: RecordState)] {
        try read(doing: "list records") { db in
            let ids = try String.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            var result: [(id: String, state: RecordState)] = []
            result.reserveCapacity(ids.count)
            for id in ids {
                guard let state = try loadState(RecordRef(type: type, id: id), db: db) else { continue }
                result.append((id, state))
            }
            return result
        }
    }

    /// Calls `body` with the values of `columns` of every row of a projected main table (those `filter`, an SQL
    /// condition and its arguments, selects when given), in that order (decoded by the store's projection
    /// codec), and its extra list (gap keys or open care gaps, from the side table `side` in a plain store), in
    /// id order.
    func forEachProjectedRow(
        of table: Projection.Table,
        columns: [String],
        side: (table: String, owner: String, value: String)?,
        filter: (condition: String, arguments: StatementArguments)? = nil,
        db: Database,
        _ body: ([DatabaseValue], [String]) throws -> Void
    ) throws {
        let codec = codec.projection
        var extras: [String: [String]] = [:]
        if let side, !codec.isEncrypted {
            let sql = "SELECT \(side.owner), \(side.value) FROM \(side.table) ORDER BY \(side.owner), \(side.value)"
            for row in try Row.fetchAll(db, sql: sql) { extras[row[0], default: []].append(row[1]) }
        }
        let rows = try Row.fetchCursor(
            db,
            sql: "SELECT \(codec.selection(columns, table: table).joined(separator: ", ")) FROM \(table.name) "
                + (filter.map { "WHERE \($0.condition) " } ?? "") + "ORDER BY id",
            arguments: filter?.arguments ?? StatementArguments()
        )
        guard codec.isEncrypted else {
            while let row = try rows.next() {
                let values = columns.indices.map { row[$0] as DatabaseValue }
                try body(values, extras.isEmpty ? [] : String.fromDatabaseValue(row[0]).flatMap { extras[$0] } ?? [])
            }
            return
        }
        // Sealed rows are opened on every core, a few thousand at a time, and handed on in id order.
        let positions = try codec.positions(of: columns, in: table)
        var sealed: [(id: DatabaseValue, blob: Data?)] = []
        func open() throws {
            let opened = mapOnEveryCore(sealed) { row in
                Result { try codec.open(id: row.id, sealed: row.blob, columns: positions, table: table) }
            }
            for result in opened {
                let (values, extra) = try result.get()
                try body(values, extra)
            }
            sealed.removeAll(keepingCapacity: true)
        }
        while let row = try rows.next() {
            sealed.append((row[0], row[1]))
            if sealed.count == 4096 { try open() }
        }
        try open()
    }

    /// Every task as the gap rules read it from the projection: its patient, kind and status, and its title as
    /// its gap markers.
    func projectedGapTasks() throws(ClientError) -> [ScorecardTask] {
        let side = (table: "task_gap", owner: "task", value: "key")
        let columns = ["patient", "kind", "status"]
        return try projectedRows(of: Projection.task, columns: columns, side: side) { id, values, keys in
            ScorecardTask(
                id: id,
                patient: values[0].text,
                status: values[2].text,
                kind: values[1].text,
                title: keys.isEmpty ? nil : keys.map(GapRules.marker).joined(separator: " ")
            )
        }
    }

    /// Every patient as the projection holds it: the projected registers, care gaps and conditions (and with
    /// `sites`, its sites), as a record. A patient not awaiting assignment whose team or subgroup is not text
    /// holds a null there, so that ``CareModel/isAwaitingAssignment(_:)`` reads of it what it reads of the
    /// whole record.
    func projectedPatients(sites withSites: Bool = false) throws(ClientError) -> [MaterializedRecord] {
        try read(doing: "read the panel") { db in
            var result: [MaterializedRecord] = []
            let side = (table: "patient_gap", owner: "patient", value: "gap")
            let names = [
                ("team", "primaryTeam"), ("subgroup", "subgroup"), ("mergedInto", "mergedInto"),
                ("riskTier", "riskTier"), ("status", "status"), ("deceasedOn", "deceasedOn"),
            ]
            // Site ids are in clear in either store (patient_site), sorted as a set's elements are.
            var sites: [String: [String]] = [:]
            if withSites {
                for row in try Row.fetchAll(db, sql: "SELECT patient, site FROM patient_site ORDER BY patient, site") {
                    sites[row[0], default: []].append(row[1])
                }
            }
            let columns = ["id"] + names.map(\.0) + ["isAwaiting", "conditions"]
            try forEachProjectedRow(of: Projection.patient, columns: columns, side: side, db: db) { values, gaps in
                var fields = [String: FieldValue](minimumCapacity: names.count + 4)
                for (offset, (_, name)) in names.enumerated() {
                    if let value = String.fromDatabaseValue(values[offset + 1]) {
                        fields[name] = .single(.string(value), isConflict: false)
                    }
                }
                let isAwaiting = Int64.fromDatabaseValue(values[names.count + 1]) == 1
                if !isAwaiting {
                    for name in ["primaryTeam", "subgroup"] where fields[name] == nil {
                        fields[name] = .single(.null, isConflict: false)
                    }
                }
                if !gaps.isEmpty { fields["careGaps"] = .set(gaps.map { .string($0) }) }
                if let conditions = String.fromDatabaseValue(values[names.count + 2]) {
                    fields["conditions"] = .set(conditions.split(separator: "\n").map { .string(String($0)) })
                }
                let id = String.fromDatabaseValue(values[0]) ?? ""
                if let held = sites[id] { fields["sites"] = .set(held.map { .string($0) }) }
                result.append(MaterializedRecord(type: .patient, id: id, fields: fields))
            }
            return result
        }
    }
}

extension CareStore {
    /// Writes the canonical JSON dump of ``exportCanonicalJSON()`` piece by piece to `write`, as UTF-8, reading
    /// the records a few thousand at a time, so that the whole practice is never in memory at once. The pieces
    /// joined are the same bytes as ``exportCanonicalJSON()``. An error `write` throws stops the export and
    /// is passed on (inside a ``ClientError`` when thrown while records are read).
    public func exportCanonicalJSON(to write: ([UInt8]) throws -> Void) throws {
        try write(Array(#"{"format":"outpost-export","version":1,"records":["#.utf8) + [0x0A])
        var first = true
        for type in RecordType.allCases.sorted() {
            // Records are decoded and written as JSON on every core, and written here in id order.
            try store.forEachRecord(
                ofType: type.rawValue,
                transform: { id, state in MaterializedRecord.canonicalJSONBytes(type: type, id: id, state: state) },
                body: { json in
                    if !first { try write([0x2C, 0x0A]) }
                    try write(json)
                    first = false
                }
            )
        }
        try write(Array(((first ? "" : "\n") + "]}\n").utf8))
    }
}

extension LocalStore {
    /// Calls `body` with every record of `type` and its state (tail folded in), sorted by id, reading
    /// `batch` records at a time in one read transaction.
    public func forEachRecord(
        ofType type: String,
        batch: Int = 4096,
        _ body: (_ id: String, _ state: RecordState) throws -> Void
    ) throws(ClientError) {
        try forEachRecord(
            ofType: type,
            batch: batch,
            transform: { id, state in HeldState(id: id, state: state) },
            body: { try body($0.id, $0.state) }
        )
    }

    /// A record's id and state, as ``forEachRecord(ofType:batch:_:)`` hands them on.
    private struct HeldState: Sendable {
        var id: String
        var state: RecordState
    }

    /// Calls `body` with `transform` of every record of `type` and its state (tail folded in), sorted by id,
    /// in one read transaction. The stored rows (each record's state, then the change-log rows of its tail)
    /// come from one statement; every `batch` records, decoding them, folding their tails and `transform`
    /// (pure: it sees one record) are shared among the processor's cores; `body` is called in id order, so
    /// what it writes is the same whatever the cores. Batches are a few thousand records: the cores meet once
    /// per batch, and meeting every 512 records cost a third of an export's processor time.
    public func forEachRecord<Output: Sendable>(
        ofType type: String,
        batch: Int = 4096,
        transform: @escaping @Sendable (_ id: String, _ state: RecordState) -> Output,
        body: (Output) throws -> Void
    ) throws(ClientError) {
        let codec = codec
        func decode(_ chunk: [(id: String, state: Data, tail: [Data])]) throws {
            let results = mapOnEveryCore(chunk) { item -> Result<Output, CRDTError> in
                let record = RecordRef(type: type, id: item.id)
                do throws(CRDTError) {
                    var state = try codec.decodeState(item.state, of: record)
                    for payload in item.tail {
                        let changes = try codec.decodeChanges(payload, of: record)
                        if state.isEmpty { state.reserveFields(changes.count) }
                        for change in changes { state.apply(change) }
                    }
                    return .success(transform(item.id, state))
                } catch {
                    return .failure(error)
                }
            }
            for result in results { try body(result.get()) }
        }
        try read(doing: "read the records") { db in
            // The tail's rows come in the log's order (the index's); sorted here should a plan give them otherwise.
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT record.id, record.state, change.seq, change.payload FROM record
                        LEFT JOIN change ON change.type = record.type AND change.id = record.id
                            AND change.seq >= record.tailStart
                        WHERE record.type = ? ORDER BY record.id
                        """
                ),
                arguments: [type]
            )
            var stored: [(id: String, state: Data, tail: [Data])] = []
            var seqs: [Int64] = []
            func close() {
                guard seqs.count > 1, !zip(seqs, seqs.dropFirst()).allSatisfy({ $0 < $1 }) else { return }
                let tail = stored[stored.count - 1].tail
                stored[stored.count - 1].tail = zip(seqs, tail).sorted { $0.0 < $1.0 }.map(\.1)
            }
            while let row = try rows.next() {
                let id: String = row[0]
                if stored.last?.id != id {
                    close()
                    if stored.count == batch {
                        try decode(stored)
                        stored.removeAll(keepingCapacity: true)
                    }
                    stored.append((id, row[1], []))
                    seqs.removeAll(keepingCapacity: true)
                }
                if let seq = row[2] as Int64?, let payload = row[3] as Data? {
                    seqs.append(seq)
                    stored[stored.count - 1].tail.append(payload)
                }
            }
            close()
            if !stored.isEmpty { try decode(stored) }
        }
    }
}

/// `transform` of every item, in the items' order, computed on every core: each core takes a contiguous part.
/// For the reads that decode or open thousands of stored rows (`transform` sees one item, nothing else).
func mapOnEveryCore<Item: Sendable, Output: Sendable>(
    _ items: [Item],
    _ transform: @Sendable (Item) -> Output
) -> [Output] {
    let parts = max(1, min(items.count, ProcessInfo.processInfo.activeProcessorCount))
    let outputs = Mutex<[[Output]]>(Array(repeating: [], count: parts))
    let size = (items.count + parts - 1) / parts
    DispatchQueue.concurrentPerform(iterations: parts) { part in
        let range = min(items.count, part * size)..<min(items.count, (part + 1) * size)
        let results = items[range].map(transform)
        outputs.withLock { $0[part] = results }
    }
    return outputs.withLock { $0 }.flatMap { $0 }
}

extension DatabaseValue {
    /// The text a projected column holds (`nil` for null or a number).
    var text: String? {
        if case .string(let text) = storage { return text }
        return nil
    }
}

/// `first` and `second` run at once, each on a thread of its own, and their results: for the commands that read
/// a whole practice's projection in independent parts (each of the store's reads takes a reader of its own).
/// Each part is its own read transaction, as it would be one after the other.
func bothAtOnce<First: Sendable, Second: Sendable>(
    _ first: @Sendable () throws(ClientError) -> First,
    _ second: @Sendable () throws(ClientError) -> Second
) throws(ClientError) -> (First, Second) {
    let firstResult = Mutex<Result<First, ClientError>?>(nil)
    let secondResult = Mutex<Result<Second, ClientError>?>(nil)
    DispatchQueue.concurrentPerform(iterations: 2) { part in
        if part == 0 {
            let result = Result { () throws(ClientError) in try first() }
            firstResult.withLock { $0 = result }
        } else {
            let result = Result { () throws(ClientError) in try second() }
            secondResult.withLock { $0 = result }
        }
    }
    guard let firstOutcome = firstResult.withLock({ $0 }), let secondOutcome = secondResult.withLock({ $0 }) else {
        preconditionFailure("concurrentPerform returned before both parts ran")
    }
    return (try firstOutcome.get(), try secondOutcome.get())
}
