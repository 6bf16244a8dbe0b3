import OutpostCRDT
import OutpostModel
import Testing

/// The care rules apps reuse: task transitions, the worklist's order, a patient's team and sites, and which
/// scopes hold a patient or a record.
struct CareRuleTests {
    let patientID = Fixture.id(.patient, 4)
    let teamA = Fixture.id(.team, 3)
    let teamB = Fixture.id(.team, 6)
    let siteA = Fixture.id(.site, 7)
    let siteB = Fixture.id(.site, 8)

    func task(
        _ seed: UInt64,
        status: String? = "requested",
        priority: String? = nil,
        due: String? = nil
    ) throws -> TaskView {
        var fields: [String: FieldValue] = [:]
        if let status { fields["status"] = .single(.string(status), isConflict: false) }
        if let priority { fields["priority"] = .single(.string(priority), isConflict: false) }
        if let due { fields["dueDate"] = .single(.string(due), isConflict: false) }
        return try #require(TaskView(MaterializedRecord(type: .task, id: Fixture.id(.task, seed), fields: fields)))
    }

    // MARK: Task transitions

    @Test func transitionsSetTheirStatusOnAnOpenTask() throws {
        let expected: [TaskTransition: String] = [
            .start: "in-progress", .hold: "on-hold", .done: "completed", .cancel: "cancelled",
        ]
        for open in ["requested", "accepted", "in-progress", "on-hold"] {
            let view = try task(1, status: open)
            for transition in TaskTransition.allCases {
                #expect(view.allows(transition))
                #expect(try view.status(after: transition) == expected[transition])
            }
        }
        // A task with no status yet is open.
        #expect(try task(1, status: nil).status(after: .start) == "in-progress")
    }

    @Test func aClosedTaskRefusesEveryTransitionAndSaysHowToReopen() throws {
        for closed in ["completed", "cancelled", "failed", "entered-in-error"] {
            let view = try task(2, status: closed)
            for transition in TaskTransition.allCases {
                #expect(!view.allows(transition))
                let error = try #require(modelError { () throws(ModelError) in _ = try view.status(after: transition) })
                #expect(error.code == .closedTask)
                #expect(error.field == "task.status")
                #expect(error.record?.id == view.id.rawValue)
                #expect(error.message.contains("is \(closed)"))
                #expect(error.message.contains("set its status"))
            }
        }
    }

    // MARK: Worklist order

    @Test func worklistPutsOverdueFirstThenPriorityThenDueDateThenID() throws {
        let today = try #require(CalendarDate("2026-06-01"))
        let overdueRoutine = try task(1, priority: "routine", due: "2026-05-01")
        let overdueStat = try task(2, priority: "stat", due: "2026-05-20")
        let stat = try task(3, priority: "stat", due: "2026-07-01")
        let urgentSoon = try task(4, priority: "urgent", due: "2026-06-02")
        let urgentLater = try task(5, priority: "urgent", due: "2026-06-30")
        let urgentUndated = try task(6, priority: "urgent")
        let unranked = try task(7, priority: nil, due: "2026-06-01")
        let expected = [overdueStat, overdueRoutine, stat, urgentSoon, urgentLater, urgentUndated, unranked]
        for seed in 0..<8 {
            var generator = SeededGenerator(seed: UInt64(seed))
            let shuffled = expected.shuffled(using: &generator)
            #expect(shuffled.sorted { $0.precedesOnWorklist($1, today: today) }.map(\.id) == expected.map(\.id))
        }
        // Due today is not overdue; ties fall to the id, so the order is total.
        #expect(!unranked.isOverdue(today: today))
        let twin = try task(8, priority: "urgent", due: "2026-06-02")
        #expect(urgentSoon.precedesOnWorklist(twin, today: today) == (urgentSoon.id < twin.id))
        #expect(!urgentSoon.precedesOnWorklist(urgentSoon, today: today))
    }

    @Test func aClosedTaskIsNeverOverdue() throws {
        let today = try #require(CalendarDate("2026-06-01"))
        #expect(try task(1, status: "in-progress", due: "2026-05-01").isOverdue(today: today))
        #expect(try !task(1, status: "completed", due: "2026-05-01").isOverdue(today: today))
    }

    // MARK: A patient's team and sites

    /// A patient's state written by `changes` (field, value, operation, replica, millis).
    func patientState(_ writes: [(String, String, Operation, String, UInt64)]) throws -> RecordState {
        var document = Document(schema: CareModel.schema)
        let ref = RecordRef(type: RecordType.patient.rawValue, id: patientID)
        var counters: [String: UInt64] = [:]
        for (field, value, operation, replica, millis) in writes {
            counters[replica, default: 0] += 1
            try document.apply(
                Change(
                    id: ChangeID(replica: ReplicaID(unchecked: replica), counter: counters[replica]!),
                    record: ref,
                    field: field,
                    operation: operation,
                    value: .string(value),
                    replaces: [],
                    clock: Timestamp(millis: millis),
                    author: "per_a",
                    site: nil
                )
            )
        }
        return try #require(document.records[ref])
    }

    @Test func scopeKeysReadTheTeamAndSitesFromStateAndViewAlike() throws {
        let state = try patientState([
            ("primaryTeam", teamA, .assign, "a", 10), ("sites", siteB, .add, "a", 11), ("sites", siteA, .add, "a", 12),
            ("sites", siteA, .add, "b", 13),
        ])
        let keys = PatientView.ScopeKeys(state: state)
        #expect(keys.team == teamA)
        #expect(keys.sites == [siteA, siteB].sorted())
        let record = MaterializedRecord(type: .patient, id: patientID, state: state)
        #expect(PatientView.ScopeKeys(record) == keys)
        let view = try #require(PatientView(record))
        #expect(view.sites.map(\.rawValue) == keys.sites)
        #expect(view.scopeKeys == keys)
        #expect(PatientView.ScopeKeys(state: RecordState()) == PatientView.ScopeKeys(team: nil, sites: []))
    }

    @Test func aTeamInConflictPlacesThePatientByItsProvisionalWinner() throws {
        // Two concurrent assigns of the review register: both kept, the later one shown until resolved.
        let state = try patientState([
            ("primaryTeam", teamA, .assign, "a", 10), ("primaryTeam", teamB, .assign, "b", 20),
        ])
        let record = MaterializedRecord(type: .patient, id: patientID, state: state)
        #expect(record.conflictedFields == ["primaryTeam"])
        #expect(PatientView.ScopeKeys(state: state).team == record.string("primaryTeam"))
        #expect(PatientView.ScopeKeys(state: state).team != nil)
    }

    // MARK: Scopes

    @Test func aScopeHoldsAPatientByTeamOrBySite() {
        let keys = PatientView.ScopeKeys(team: teamA, sites: [siteA])
        #expect(keys.isIn(sites: [String](), teams: [String]()), "the whole practice holds everyone")
        #expect(keys.isIn(sites: [], teams: [teamA]))
        #expect(keys.isIn(sites: [siteA], teams: []))
        #expect(keys.isIn(sites: [siteB], teams: [teamA]), "a team match is enough")
        #expect(keys.isIn(sites: [siteA], teams: [teamB]), "a site match is enough")
        #expect(!keys.isIn(sites: [siteB], teams: [teamB]))
        let unplaced = PatientView.ScopeKeys(team: nil, sites: [])
        #expect(!unplaced.isIn(sites: [siteA], teams: [teamA]))
        #expect(unplaced.isIn(sites: [String](), teams: [String]()))
    }

    @Test func aScopeHoldsTheStructureAlwaysAndARecordWithItsOwner() {
        let held: Set<String> = [patientID]
        let task = Fixture.id(.task, 9)
        #expect(CareModel.scopeHolds(type: "patient", id: patientID, owner: nil, holdsPatient: held.contains))
        #expect(
            !CareModel.scopeHolds(type: "patient", id: Fixture.id(.patient, 5), owner: nil, holdsPatient: held.contains)
        )
        #expect(CareModel.scopeHolds(type: "task", id: task, owner: patientID, holdsPatient: held.contains))
        #expect(
            !CareModel.scopeHolds(type: "task", id: task, owner: Fixture.id(.patient, 5), holdsPatient: held.contains)
        )
        #expect(
            !CareModel.scopeHolds(type: "task", id: task, owner: nil, holdsPatient: held.contains),
            "owner unknown yet"
        )
        for structure in ["site", "person", "team", "subgroup"] {
            #expect(CareModel.scopeHolds(type: structure, id: "x", owner: nil, holdsPatient: { _ in false }))
        }
    }
}
