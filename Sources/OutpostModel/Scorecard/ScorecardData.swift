import OutpostCRDT

/// What a scorecard is computed from: a practice's materialized records and the part of the change log
/// that dates what the merged state cannot (a patient's subgroup and status over time, when a care gap
/// closed, when a task was completed).
///
/// Practices, sites, teams, subgroups and patients are records; tasks, observations and encounters, tens of
/// thousands in a practice, are typed rows holding only the fields the scorecard, the gap rules and the
/// panel read (``ScorecardTask``, ``ScorecardObservation``, ``ScorecardEncounter``).
///
/// Reading the store is the caller's job (`CareStore.scorecardData()` in OutpostClient); everything here
/// is pure, so two replicas holding the same records and changes compute the same scorecard.
public struct ScorecardData: Sendable {
    /// The fields whose changes the scorecard reads, by record type.
    public static let historyFields: [RecordType: Set<String>] = [
        .patient: ["subgroup", "status", "careGaps"],
        .task: ["status"],
    ]

    /// Records of the types other than task, observation and encounter, by type, each list sorted by id.
    public let records: [RecordType: [MaterializedRecord]]
    /// Tasks, sorted by id.
    public let tasks: [ScorecardTask]
    /// Observations, sorted by id.
    public let observations: [ScorecardObservation]
    /// Encounters, sorted by id.
    public let encounters: [ScorecardEncounter]
    /// Changes of ``historyFields`` by record id, earliest first (clock, then change id).
    public let changes: [String: [Change]]

    /// Creates the input from records of every type and changes; changes of other fields are ignored.
    public init(records: some Sequence<MaterializedRecord>, changes: some Sequence<Change>) {
        var others: [MaterializedRecord] = []
        var tasks: [ScorecardTask] = []
        var observations: [ScorecardObservation] = []
        var encounters: [ScorecardEncounter] = []
        for record in records {
            switch record.type {
            case .task: tasks.append(ScorecardTask(record))
            case .observation: observations.append(ScorecardObservation(record))
            case .encounter: encounters.append(ScorecardEncounter(record))
            default: others.append(record)
            }
        }
        self.init(
            records: others,
            tasks: tasks,
            observations: observations,
            encounters: encounters,
            changes: changes
        )
    }

    /// Creates the input from the records of the other types, the tasks, observations and encounters as rows,
    /// and changes; changes of other fields are ignored, and so are records of the row types in `records`.
    ///
    /// Merged duplicate patients (``PatientMerges``) are left out and their tasks, observations and
    /// encounters count for their survivor, so a scorecard or a panel counts each person once.
    public init(
        records: some Sequence<MaterializedRecord>,
        tasks: [ScorecardTask],
        observations: [ScorecardObservation],
        encounters: [ScorecardEncounter],
        changes: some Sequence<Change>
    ) {
        var byType: [RecordType: [MaterializedRecord]] = [:]
        for record in records where ![.task, .observation, .encounter].contains(record.type) {
            byType[record.type, default: []].append(record)
        }
        var tasks = tasks
        var observations = observations
        var encounters = encounters
        let merges = PatientMerges(byType[.patient] ?? [])
        if !merges.isEmpty {
            byType[.patient]?.removeAll { merges.isMerged($0.id) }
            func follow(_ patient: inout String?) {
                if let held = patient, merges.isMerged(held) { patient = merges.survivor(of: held) }
            }
            for index in tasks.indices { follow(&tasks[index].patient) }
            for index in observations.indices { follow(&observations[index].patient) }
            for index in encounters.indices { follow(&encounters[index].patient) }
        }
        // The store reads records in id order: sorted only when they are not.
        self.records = byType.mapValues(Self.sortedByID)
        self.tasks = Self.sortedByID(tasks)
        self.observations = Self.sortedByID(observations)
        self.encounters = Self.sortedByID(encounters)
        var byRecord: [String: [Change]] = [:]
        for change in changes {
            guard let type = RecordType(rawValue: change.record.type),
                Self.historyFields[type]?.contains(change.field) == true
            else { continue }
            byRecord[change.record.id, default: []].append(change)
        }
        self.changes = byRecord.mapValues { $0.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) } }
    }

    private static func sortedByID<Row: IdentifiedRow>(_ list: [Row]) -> [Row] {
        list.indices.dropFirst().allSatisfy { list[$0 - 1].id < list[$0].id } ? list : list.sorted { $0.id < $1.id }
    }

    /// The input for a practice dump with no history (a generated practice): every patient is in their
    /// subgroup and status from the day of their id, and no task completion has a date.
    public init(dump: PracticeDump) {
        let records = dump.records.compactMap { record -> MaterializedRecord? in
            guard let type = RecordType(rawValue: record.type) else { return nil }
            var fields: [String: FieldValue] = [:]
            for (name, field) in record.fields {
                guard let spec = CareModel.spec(type, name) else { continue }
                switch (field, spec.policy) {
                case (.value(let value), .lww), (.value(let value), .review), (.value(let value), .status):
                    fields[name] = .single(value, isConflict: false)
                case (.list(let values), .set):
                    fields[name] = .set(Array(Set(values)).sorted { $0.sortKey < $1.sortKey })
                default:
                    continue
                }
            }
            return MaterializedRecord(type: type, id: record.id, fields: fields)
        }
        self.init(records: records, changes: [])
    }

    /// The records of `type` (not a task, observation or encounter: those are ``tasks``, ``observations`` and
    /// ``encounters``), sorted by id.
    public func records(_ type: RecordType) -> [MaterializedRecord] { records[type] ?? [] }

    /// The day a record was created: the time in its sortable id (ids are made when a record is created,
    /// and an imported practice keeps its source's ids); `nil` for a malformed id.
    public static func creationDay(of id: String) -> CalendarDate? {
        guard let separator = id.firstIndex(of: "_"),
            let millis = SortableID.millis(of: id[id.index(after: separator)...])
        else { return nil }
        return CalendarDate(millis: millis)
    }
}

extension Value {
    fileprivate var sortKey: String {
        switch self {
        case .null: ""
        case .bool(let flag): flag ? "true" : "false"
        case .int(let number): String(number)
        case .string(let text): text
        }
    }
}

/// One patient's membership over time: which subgroup they are in on each day, and whether they are a
/// member (on the panel, status `active`, alive) that day.
struct PatientTimeline: Sendable {
    /// Subgroup from a day on, earliest first.
    var subgroups: [(from: CalendarDate, subgroup: String)]
    /// Status from a day on, earliest first.
    var statuses: [(from: CalendarDate, status: String)]
    /// The first day of membership (the record's creation day).
    var created: CalendarDate
    /// The day of death, if recorded: not a member from that day on.
    var deceasedOn: CalendarDate?

    /// Builds the timeline from the patient's current fields and its changes of subgroup and status.
    ///
    /// Before its first recorded assignment a field holds that first value (an import records the
    /// current value on the import day; the patient has held it since their record was created).
    init(patient: MaterializedRecord, changes: [Change]) {
        let created =
            ScorecardData.creationDay(of: patient.id)
            ?? changes.first.map { CalendarDate(millis: $0.clock.millis) } ?? CalendarDate(daysSinceEpoch: 0)
        self.created = created
        deceasedOn = patient.string("deceasedOn").flatMap { CalendarDate($0) }
        let history = CareModel.subgroupHistory(changes)
        if history.isEmpty {
            subgroups = patient.string("subgroup").map { [(created, $0)] } ?? []
        } else {
            subgroups = history.enumerated().map { index, entry in
                (index == 0 ? min(created, entry.from) : entry.from, entry.subgroup)
            }
        }
        let statusChanges = changes.filter { $0.field == "status" && $0.operation == .assign }
        if statusChanges.isEmpty {
            statuses = patient.string("status").map { [(created, $0)] } ?? []
        } else {
            statuses = statusChanges.enumerated().compactMap { index, change in
                guard let status = change.value.stringValue else { return nil }
                let day = CalendarDate(millis: change.clock.millis)
                return (index == 0 ? min(created, day) : day, status)
            }
        }
    }

    /// The subgroup on `day` (`nil` before the first assignment).
    func subgroup(on day: CalendarDate) -> String? {
        subgroups.last { $0.from <= day }?.subgroup
    }

    /// Whether the patient is a member on `day`: created by then, status `active` that day, not yet
    /// deceased. A patient whose status is `deceased` with a date of death counts as a member until that
    /// date (an import records the status as of the import, the date says when membership ended).
    func isMember(on day: CalendarDate) -> Bool {
        guard day >= created else { return false }
        if let deceasedOn, day >= deceasedOn { return false }
        switch statuses.last(where: { $0.from <= day })?.status {
        case "active": return true
        case "deceased": return deceasedOn != nil
        default: return false
        }
    }
}
