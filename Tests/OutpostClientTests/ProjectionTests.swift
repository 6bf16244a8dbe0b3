import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

/// The store's projection equals a recomputation from the record states after every kind of write, and the
/// lists read through it equal the same lists filtered in memory from every record.
struct ProjectionTests {
    /// Two replicas of a small care practice, edited at random; identifiers drawn from small pools so that
    /// edits meet (conflicts, purges of patients with tasks).
    struct World {
        var random: SeededGenerator
        let clock = ManualWallClock(millis: 1_780_000_000_000)
        let laptop: LocalStore
        let school: LocalStore
        var patients: [String] = []
        var tasks: [String] = []
        var observations: [String] = []
        var encounters: [String] = []
        let teams: [String]
        let people: [String]
        let sites: [String]
        let subgroups: [String]
        /// The stores' key when they are encrypted (the projection is then tokens and sealed blobs).
        let key: StoreKeySource?

        init(seed: UInt64, encrypted: Bool = false) throws {
            random = SeededGenerator(seed: seed)
            key = encrypted ? testStoreKey : nil
            let configuration = CareStore.configuration(wallClock: clock, key: key)
            laptop = try LocalStore.create(
                at: temporaryStorePath(),
                replicaID: ReplicaID("laptop"),
                configuration: configuration
            )
            school = try LocalStore.create(
                at: temporaryStorePath(),
                replicaID: ReplicaID("school"),
                configuration: configuration
            )
            var ids = random
            func make(_ type: RecordType, _ count: Int) -> [String] {
                (0..<count).map { index in type.makeID(millis: 1_700_000_000_000 + UInt64(index), using: &ids) }
            }
            teams = make(.team, 3)
            people = make(.person, 3)
            sites = make(.site, 3)
            subgroups = make(.subgroup, 2)
            random = ids
        }

        mutating func pick<T>(_ values: [T]) -> T? {
            values.isEmpty ? nil : values[Int(random.next() % UInt64(values.count))]
        }

        mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }

        mutating func newID(_ type: RecordType) -> String {
            clock.set(millis: clock.nowMillis() + 1 + random.next() % 1000)
            return type.makeID(millis: clock.nowMillis(), using: &random)
        }

        mutating func date() -> Value {
            .string("2026-0\(1 + random.next() % 9)-1\(random.next() % 10)")
        }

        /// Edits that create a new record of a random projected type (with a few fields left out).
        mutating func creation() -> (RecordRef, [Edit])? {
            switch random.next() % 5 {
            case 0:
                let ref = RecordRef(type: "patient", id: newID(.patient))
                patients.append(ref.id)
                var edits: [Edit] = [.assign(ref, "givenName", "Ana"), .assign(ref, "status", "active")]
                if let team = pick(teams), chance(80) { edits.append(.assign(ref, "primaryTeam", .string(team))) }
                if let subgroup = pick(subgroups), chance(80) {
                    edits.append(.assign(ref, "subgroup", .string(subgroup)))
                }
                if let site = pick(sites) { edits.append(.add(ref, "sites", .string(site))) }
                if chance(50) { edits.append(.add(ref, "careGaps", "a1c-overdue")) }
                if chance(60) { edits.append(.add(ref, "conditions", .string(pick(["E11.9", "I10"]) ?? ""))) }
                return (ref, edits)
            case 1, 2:
                guard let patient = pick(patients) else { return nil }
                let ref = RecordRef(type: "task", id: newID(.task))
                tasks.append(ref.id)
                let kind = pick(["outreach", "ed-follow-up", "screening", "referral"]) ?? ""
                var edits: [Edit] = [
                    .assign(ref, "patient", .string(patient)),
                    .assign(
                        ref,
                        "title",
                        .string(
                            pick(["Call", "HbA1c [gap:a1c-due:none]", "x [gap:bp-due:none] [gap:a1c-due:none]"]) ?? ""
                        )
                    ),
                    .assign(ref, "status", .string(pick(["requested", "in-progress", "completed"]) ?? "requested")),
                    .assign(ref, "kind", .string(kind)),
                ]
                // A referral's dates: projected for the scorecard (`v10-projection-scorecard`).
                if kind == "referral" {
                    edits.append(.assign(ref, "referralSentOn", date()))
                    if chance(50) { edits.append(.assign(ref, "resultReceivedOn", date())) }
                }
                if let team = pick(teams) { edits.append(.assign(ref, "team", .string(team))) }
                if chance(70) { edits.append(.assign(ref, "priority", .string(pick(["routine", "stat"]) ?? ""))) }
                if chance(70) { edits.append(.assign(ref, "dueDate", date())) }
                if let person = pick(people), chance(50) { edits.append(.assign(ref, "assignee", .string(person))) }
                return (ref, edits)
            case 3:
                guard let patient = pick(patients) else { return nil }
                let ref = RecordRef(type: "observation", id: newID(.observation))
                observations.append(ref.id)
                return (
                    ref,
                    [
                        .assign(ref, "patient", .string(patient)),
                        .assign(ref, "code", .string(pick(["4548-4", "8480-6", "8462-4"]) ?? "")),
                        .assign(
                            ref,
                            "effectiveAt",
                            .string(pick(["2025-06-01T10:00:00Z", "2026-03-01T10:00:00Z"]) ?? "")
                        ), .assign(ref, "status", "final"),
                        .assign(ref, "value", .string(pick(["7.1", "85", "150"]) ?? "")),
                    ]
                )
            default:
                guard let patient = pick(patients) else { return nil }
                let ref = RecordRef(type: "encounter", id: newID(.encounter))
                encounters.append(ref.id)
                return (
                    ref,
                    [
                        .assign(ref, "patient", .string(patient)),
                        .assign(ref, "kind", .string(pick(["ed-visit", "admission", "office"]) ?? "")),
                        .assign(
                            ref,
                            "occurredAt",
                            .string(pick(["2026-04-20T10:00:00Z", "2026-04-28T08:00:00Z"]) ?? "")
                        ), .assign(ref, "status", "finished"),
                        .assign(ref, "costCents", .int(Int64(random.next() % 90_000))),
                    ]
                )
            }
        }

        /// An edit of a held record (or an append to a new one, which creates it through the tail).
        mutating func edit() -> Edit? {
            switch random.next() % 12 {
            case 0, 1, 2:
                guard let task = pick(tasks) else { return nil }
                let ref = RecordRef(type: "task", id: task)
                switch random.next() % 6 {
                case 0:
                    return .assign(
                        ref,
                        "status",
                        .string(pick(["requested", "in-progress", "on-hold", "completed", "cancelled"]) ?? "")
                    )
                case 1: return .assign(ref, "team", .string(pick(teams) ?? ""))
                case 2: return .assign(ref, "assignee", .string(pick(people) ?? ""))
                case 3: return .assign(ref, "priority", .string(pick(["routine", "urgent", "asap", "stat"]) ?? ""))
                case 4: return chance(50) ? .assign(ref, "dueDate", date()) : .assign(ref, "referralSentOn", date())
                default: return chance(50) ? .append(ref, "notes", "called") : .assign(ref, "resultReceivedOn", date())
                }
            case 3, 4, 5, 6:
                guard let patient = pick(patients) else { return nil }
                let ref = RecordRef(type: "patient", id: patient)
                switch random.next() % 9 {
                case 7:
                    // A merge into another patient (chains and cycles included) or an unmerge.
                    return .assign(ref, "mergedInto", chance(70) ? .string(pick(patients) ?? "") : .null)
                case 0: return .assign(ref, "subgroup", .string(pick(subgroups) ?? ""))
                case 1: return .assign(ref, "primaryTeam", .string(pick(teams) ?? ""))
                case 2: return .assign(ref, "riskTier", .string(pick(["low", "high"]) ?? ""))
                case 3:
                    return chance(70)
                        ? .assign(ref, "status", .string(pick(["active", "inactive", "deceased"]) ?? ""))
                        : .assign(ref, "deceasedOn", .string(pick(["2026-05-02", "2025-01-10"]) ?? ""))
                case 4: return .add(ref, "sites", .string(pick(sites) ?? ""))
                case 5: return .remove(ref, "sites", .string(pick(sites) ?? ""))
                case 6:
                    return chance(50)
                        ? Edit.add(ref, "careGaps", "bp-overdue") : Edit.remove(ref, "careGaps", "a1c-overdue")
                default:
                    switch random.next() % 3 {
                    case 0: return .add(ref, "conditions", .string(pick(["E11.9", "I10", "J45"]) ?? ""))
                    case 1: return .remove(ref, "conditions", .string(pick(["E11.9", "I10"]) ?? ""))
                    default: return .append(ref, "notes", "visited")
                    }
                }
            case 7:
                guard let observation = pick(observations) else { return nil }
                let ref = RecordRef(type: "observation", id: observation)
                return chance(60)
                    ? .assign(ref, "status", .string(pick(["final", "entered-in-error"]) ?? ""))
                    : .assign(ref, "value", .string(pick(["6.5", "9.4", "120", "95"]) ?? ""))
            case 8:
                guard let encounter = pick(encounters) else { return nil }
                let ref = RecordRef(type: "encounter", id: encounter)
                return chance(60)
                    ? .assign(ref, "status", .string(pick(["finished", "cancelled"]) ?? ""))
                    : .assign(ref, "costCents", .int(Int64(random.next() % 50_000)))
            case 9:
                // An append to a task no replica holds yet: the record is created by its tail alone.
                let ref = RecordRef(type: "task", id: newID(.task))
                tasks.append(ref.id)
                return .append(ref, "notes", "first")
            default:
                // One field of a new record: a record may be held with only some of its fields.
                guard let (_, edits) = creation() else { return nil }
                return pick(edits)
            }
        }

        /// One random write on `store` (the other replica is `other`); returns its name.
        mutating func step(on store: LocalStore, other: LocalStore) throws -> String {
            switch random.next() % 8 {
            case 0, 1:
                var edits: [Edit] = []
                for _ in 0..<(1 + random.next() % 4) { if let edit = edit() { edits.append(edit) } }
                if let (_, created) = creation(), chance(30) { edits += created }
                try store.commit(edits, author: "per_x", site: nil)
                return "local edit"
            case 2:
                var records: [(RecordRef, [Edit])] = []
                for _ in 0..<(1 + random.next() % 3) { if let record = creation() { records.append(record) } }
                try store.create(author: "per_x", site: nil, totalEdits: records.reduce(0) { $0 + $1.1.count }) {
                    _,
                    creator in
                    for (ref, edits) in records { try creator.create(ref, edits) }
                }
                return "bulk create"
            case 3:
                try store.applyRemote(try other.pendingChanges(), checkpoint: "c\(random.next() % 100)")
                return "received page"
            case 4:
                var records: [SnapshotRecord] = []
                for id in patients + tasks + observations + encounters where chance(40) {
                    let type = String(RecordType(idPrefixOf: id)?.rawValue ?? "")
                    let ref = RecordRef(type: type, id: id)
                    if let state = try other.record(ref) { records.append(SnapshotRecord(record: ref, state: state)) }
                }
                // Half the pages are prepared first, as a bootstrap prepares them off the writer.
                if chance(50) {
                    try store.applySnapshot(store.prepare(records), checkpoint: nil)
                    return "prepared snapshot page"
                }
                try store.applySnapshot(records, checkpoint: nil)
                return "snapshot page"
            case 5:
                guard let patient = pick(patients) else { return "nothing" }
                let incoming = try other.pendingChanges().filter { _ in chance(50) }
                try store.applyPage(changes: incoming, records: [], removed: [patient], checkpoint: "p")
                return "scope purge"
            case 6:
                guard let conflict = pick(try store.conflicts()) else { return "nothing" }
                let chosen = conflict.conflict.values[Int(random.next() % UInt64(conflict.conflict.values.count))]
                let ref = conflict.conflict.record
                try store.commit(
                    [
                        .assign(ref, conflict.conflict.field, chosen.value),
                        .append(ref, "resolutions", .string("\(conflict.conflict.field): chosen")),
                    ],
                    author: "per_x",
                    site: nil
                )
                return "conflict resolution"
            default:
                _ = try store.restampPending(serverMillis: clock.nowMillis() - 5000, maxSkewMillis: 0)
                return "re-stamp"
            }
        }
    }

    /// Odd seeds run on encrypted stores.
    @Test(arguments: 0..<300 as Range<UInt64>)
    func theProjectionEqualsARecomputationAfterEveryKindOfWrite(seed: UInt64) throws {
        var world = try World(seed: seed, encrypted: seed % 2 == 1)
        for step in 0..<14 {
            let onLaptop = world.chance(60)
            let (store, other) = onLaptop ? (world.laptop, world.school) : (world.school, world.laptop)
            let name = try world.step(on: store, other: other)
            #expect(try store.checkProjection() == [], "seed \(seed) step \(step): \(name)")
        }
        // Delivering everything both ways converges, and every conflict shows in the projection's values too.
        try world.laptop.applyRemote(try world.school.pendingChanges())
        try world.school.applyRemote(try world.laptop.pendingChanges())
        for store in [world.laptop, world.school] {
            #expect(try store.checkProjection() == [], "seed \(seed): after converging")
            try checkLists(store, &world, seed: seed)
        }
    }

    /// The lists read through the projection equal the same lists filtered from every record in memory.
    func checkLists(_ store: LocalStore, _ world: inout World, seed: UInt64) throws {
        let care = try CareStore.open(at: store.path, key: world.key)
        #expect(store.isEncrypted == (world.key != nil))
        let all = try care.records(.task)
        for _ in 0..<4 {
            let query = TaskQuery(
                patient: world.chance(30) ? world.pick(world.patients) : nil,
                status: world.chance(30) ? "requested" : nil,
                team: world.chance(50) ? world.pick(world.teams) : nil,
                assignee: world.chance(30) ? world.pick(world.people) : nil
            )
            // A patient's tasks follow merges, as `outpost task list --patient` reads them.
            let held = try query.patient.map { try care.records(.task, followingPatient: $0) } ?? all
            let expected = held.filter { task in
                (query.status == nil || task.string("status") == query.status)
                    && (query.team == nil || task.string("team") == query.team)
                    && (query.assignee == nil || task.string("assignee") == query.assignee)
            }
            #expect(try care.tasks(query) == expected, "seed \(seed): \(query)")
            // The projected rows read as the whole records do: the same views, the same printed fields.
            let rows = try care.taskRows(query)
            #expect(rows.map(\.id) == expected.map(\.id), "seed \(seed): \(query)")
            #expect(rows.compactMap(TaskView.init) == expected.compactMap(TaskView.init), "seed \(seed): \(query)")
            for (row, task) in zip(rows, expected) {
                for field in ["patient", "kind", "priority", "status", "dueDate", "assignee", "title"] {
                    #expect(row.string(field) == task.string(field), "seed \(seed): \(field)")
                    #expect(row.fields[field]?.isConflict ?? false == task.fields[field]?.isConflict ?? false)
                }
            }
            // A list's cells, made with no record per task, read as the whole records' fields (and a column the
            // projection does not hold is empty).
            let columns = ["patient", "kind", "priority", "status", "dueDate", "assignee", "title", "notes"]
            let mark = { (text: String?, isConflict: Bool) in (text ?? "") + (isConflict ? " (!)" : "") }
            let cells = try care.taskCells(query, columns: columns, cell: mark)
            #expect(
                cells
                    == expected.map { task in
                        [task.id]
                            + columns.map { column in
                                column == "notes"
                                    ? "" : mark(task.string(column), task.fields[column]?.isConflict ?? false)
                            }
                    },
                "seed \(seed): \(query)"
            )
        }
        let today = CalendarDate(year: 2026, month: 5, day: 1) ?? CalendarDate(daysSinceEpoch: 0)
        let site = world.pick(world.sites)
        let team = world.chance(50) ? world.pick(world.teams) : nil
        let patientsAtSite = Set(
            try care.records(.patient).filter { $0.values("sites").contains(.string(site ?? "")) }.map(\.id)
        )
        let expected = all.compactMap(TaskView.init).filter { task in
            !task.isClosed && (team == nil || task.team?.rawValue == team)
                && patientsAtSite.contains(task.patient?.rawValue ?? "")
        }.sorted { $0.precedesOnWorklist($1, today: today) }
        #expect(try care.worklist(team: team, site: site, today: today).map(\.task) == expected, "seed \(seed)")
        #expect(try care.worklistViews(team: team, site: site, today: today) == expected, "seed \(seed)")
        // The panel, the gaps and the scorecard, each read from the projection with what it decodes, equal the
        // same computed from every record whole and every record's history.
        var history: [Change] = []
        for type in [RecordType.patient, .task] {
            for record in try care.records(type) {
                history += try store.history(of: RecordRef(type: type.rawValue, id: record.id))
            }
        }
        let everything = ScorecardData(
            records: try RecordType.allCases.flatMap { try care.records($0) },
            changes: history
        )
        #expect(PanelSummary(try care.panelData()) == PanelSummary(everything), "seed \(seed): the panel")
        #expect(
            GapRules.find(try care.gapsData(), today: today) == GapRules.find(everything, today: today),
            "seed \(seed): the gaps"
        )
        let scorecardData = try care.scorecardData()
        for period in ["2026-Q2", "2026"] {
            let chosen = try #require(ScorecardPeriod(period))
            for grouping in [Scorecard.Grouping.subgroup, .team, .site] {
                #expect(
                    Scorecard.compute(scorecardData, period: chosen, by: grouping)
                        == Scorecard.compute(everything, period: chosen, by: grouping),
                    "seed \(seed): the scorecard of \(period) by \(grouping)"
                )
            }
        }
        var exported: [UInt8] = []
        try care.exportCanonicalJSON { exported += $0 }
        #expect(
            String(decoding: exported, as: UTF8.self) == (try care.exportCanonicalJSON()),
            "seed \(seed): the export"
        )
        #expect(
            try store.status().recordCounts
                == Dictionary(grouping: try recordTypes(care), by: { $0 }).mapValues(\.count)
        )
    }

    func recordTypes(_ care: CareStore) throws -> [String] {
        try RecordType.allCases.flatMap { type in try care.records(type).map { _ in type.rawValue } }
    }
}
