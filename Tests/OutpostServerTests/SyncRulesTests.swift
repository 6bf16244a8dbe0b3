import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// The sync rules as pure code (``PushJudge``, ``FeedPlanner``): state in, decisions out, no SQL.
struct SyncRulesTests {
    static let admin = TokenEntry(
        id: "tok_admin",
        practice: TinyPractice.practice,
        role: .admin,
        scope: .practice,
        label: "test",
        createdAtMillis: 0
    )

    /// A replica holding the tiny practice, its pending changes, and the state each record has after them.
    func loaded(_ directory: TemporaryDirectory) throws -> (LocalReplica, [Change]) {
        let replica = try LocalReplica("judge", in: directory)
        try TinyPractice.load(into: replica.care)
        return (replica, try replica.store.pendingChanges(limit: 10_000))
    }

    func judge(_ token: TokenEntry = admin) -> PushJudge {
        PushJudge(token: token, now: nowMillis(), maxClockSkewMillis: 60_000)
    }

    @Test func aWholePracticeIsAcceptedIntoAPlanWithItsRecordsScopesAndOwners() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let request = PushRequest(replica: replica.store.replicaID, changes: changes)
        let plan = try judge().judge(request, context: PushContext())
        #expect(plan.accepted.count == changes.count)
        #expect(plan.duplicates == 0)
        #expect(Set(plan.records.map(\.ref)) == Set(changes.map(\.record)))
        #expect(Set(plan.patientScopes.map(\.patient)) == Set(TinyPractice.patients))
        let task = try #require(plan.accepted.first { $0.change.record.id == TinyPractice.task })
        #expect(TinyPractice.patients.contains(task.owner ?? ""), "a task's changes carry its patient")
        #expect(plan.accepted.map(\.change) == changes, "every change, in push order")
    }

    /// A push's changes come a record at a time, by one author from one site: the judge checks a repeated record,
    /// author or site once. One unlike the changes before it is still checked, in the middle of the push: an
    /// unknown author, an unknown site and a malformed record id are each refused at their own change.
    @Test func aChangeUnlikeTheOnesBeforeItIsStillCheckedInTheMiddleOfAPush() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        try #require(changes.count >= 8)
        // Signed by a person of the practice (one the push creates), then by one it lacks.
        let person = try #require(changes.first { $0.record.type == RecordType.person.rawValue }?.record.id)
        var altered = changes.map { change in
            var signed = change
            signed.author = person
            return signed
        }
        altered[3].author = "per_01ARZ3NDEKTSV4RRFFQ69G5FAV"
        altered[5].site = "sit_01ARZ3NDEKTSV4RRFFQ69G5FAV"
        altered[6].record = RecordRef(type: changes[6].record.type, id: "not-an-id")
        let request = PushRequest(replica: replica.store.replicaID, changes: altered)
        let plan = try judge().judge(request, context: PushContext(), perChange: true)
        let fields = Dictionary(plan.refused.map { ($0.id, $0.field) }, uniquingKeysWith: { first, _ in first })
        #expect(fields[altered[3].id] == "author", "\(plan.refused)")
        #expect(fields[altered[5].id] == "site", "\(plan.refused)")
        #expect(fields[altered[6].id] == "record.id", "\(plan.refused)")
        #expect(fields[altered[4].id] == nil, "a change like the first ones is accepted: \(plan.refused)")
    }

    /// The judge finds a record's slot once per run of its changes. A record whose changes come apart, in several
    /// runs with another record's between, is still one record: merged whole, written once, and each of its
    /// changes carries its owner as of the end of the push, even those before the change that names the owner.
    @Test func aRecordWhoseChangesComeApartIsJudgedAsOne() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let taskChanges = changes.filter { $0.record.id == TinyPractice.task }
        let patientField = try #require(taskChanges.first { $0.field == "patient" })
        let rest = taskChanges.filter { $0.id != patientField.id }
        try #require(rest.count >= 2)
        var others = changes.filter { $0.record.id != TinyPractice.task }
        let moved = others.removeLast()
        let half = rest.count / 2
        let apart = others + rest[..<half] + [moved] + rest[half...] + [patientField]
        let replicaID = replica.store.replicaID

        let plan = try judge().judge(PushRequest(replica: replicaID, changes: apart), context: PushContext())
        let inOrder = try judge().judge(PushRequest(replica: replicaID, changes: changes), context: PushContext())
        #expect(plan.accepted.count == changes.count)
        #expect(plan.records.filter { $0.ref.id == TinyPractice.task }.count == 1)
        let states = Dictionary(uniqueKeysWithValues: plan.records.map { ($0.ref, $0.state) })
        #expect(states == Dictionary(uniqueKeysWithValues: inOrder.records.map { ($0.ref, $0.state) }))
        let owners = Set(plan.accepted.filter { $0.change.record.id == TinyPractice.task }.map(\.owner))
        #expect(owners == [patientField.value.stringValue])
    }

    @Test func storedBytesDecideDuplicateOrReusedID() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let request = PushRequest(replica: replica.store.replicaID, changes: changes)
        var context = PushContext()
        for change in changes { context.stored[change.id] = StoredChange.encode(change) }
        let plan = try judge().judge(request, context: context)
        #expect(plan.accepted.isEmpty && plan.duplicates == changes.count)

        var altered = changes[0]
        altered.clock = Timestamp(millis: altered.clock.millis + 1)
        context.stored[changes[0].id] = StoredChange.encode(altered)
        #expect(throws: ServerError.self) { try judge().judge(request, context: context) }
        do throws(ServerError) {
            _ = try judge().judge(request, context: context)
        } catch {
            #expect(error.code == .changeIDReused && error.index == 0)
        }
    }

    @Test func aScopedTokenIsRefusedAnEditToAPatientOutsideItsScope() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        // The practice holds the patients already (as the server would after the admin's push).
        var context = PushContext()
        let patient = RecordRef(type: RecordType.patient.rawValue, id: TinyPractice.patients[0])
        var state = RecordState()
        for change in changes where change.record == patient { state.apply(change) }
        context.records[patient] = (patient.id, state)
        for change in changes { context.existing.insert(change.record) }
        context.patientsInScope = [TinyPractice.patients[1]]
        var clinician = Self.admin
        clinician.role = Role.clinician
        clinician.scope = Scope(teams: [TinyPractice.team])
        let edit = try change(
            "\(replica.store.replicaID)/9999",
            RecordType.patient.rawValue,
            patient.id,
            "preferredLanguage",
            .string("es")
        )
        let request = PushRequest(replica: replica.store.replicaID, changes: [edit])
        do throws(ServerError) {
            _ = try judge(clinician).judge(request, context: context)
            Issue.record("an out-of-scope edit was accepted")
        } catch {
            #expect(error.code == .outOfScope && error.index == 0)
        }
        context.patientsInScope = [patient.id]
        #expect(try judge(clinician).judge(request, context: context).accepted.count == 1)
    }

    /// A legal purge keeps the ids of the records it erased. A push's changes to one of them (the patient), or to a
    /// record it gives to an erased patient (the patient's task, made on a device that had not heard of the purge),
    /// are acknowledged (the push's highest counter covers them) and not stored, before the token's scope and the
    /// care model are asked; the rest of the push is judged as if they had not been sent.
    @Test func changesToTheRecordsOfAPurgedPatientAreAcknowledgedAndNotStored() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let patient = RecordRef(type: RecordType.patient.rawValue, id: TinyPractice.patients[0])
        let task = RecordRef(type: RecordType.task.rawValue, id: TinyPractice.task)
        let gone = changes.filter { $0.record == patient || $0.record == task }
        try #require(!gone.isEmpty && gone.count < changes.count)
        var context = PushContext()
        context.erased = [patient]
        let request = PushRequest(replica: replica.store.replicaID, changes: changes)
        let plan = try judge().judge(request, context: context)
        #expect(plan.erased == gone.count)
        #expect(plan.accepted.map(\.change) == changes.filter { $0.record != patient && $0.record != task })
        #expect(plan.maxCounter == changes.map(\.id.counter).max())
        #expect(!plan.records.contains { $0.ref == patient || $0.ref == task })
        #expect(!plan.patientScopes.contains { $0.patient == patient.id })

        // What a storage looks up: the records the practice does not hold, and the patients owner fields name.
        let edits = PushRequest(replica: replica.store.replicaID, changes: gone)
        #expect(PushJudge.erasable(by: edits, holding: { $0 == task }) == [patient])
        #expect(PushJudge.erasable(by: edits, holding: { _ in true }) == [patient], "the task's patient field")

        // A scoped token with none of them in its scope: acknowledged, not refused as out of scope; the task alone
        // (an edit without its patient field) is dropped by its own erased id.
        var clinician = Self.admin
        clinician.role = Role.clinician
        clinician.scope = Scope(teams: [TinyPractice.team])
        context.patientsInScope = []
        let scoped = try judge(clinician).judge(edits, context: context)
        #expect(scoped.erased == gone.count && scoped.accepted.isEmpty && scoped.refused.isEmpty)
        let taskOnly = gone.filter { $0.record == task && $0.field != "patient" }
        try #require(!taskOnly.isEmpty)
        context.erased = [patient, task]
        let edit = try judge(clinician).judge(
            PushRequest(replica: replica.store.replicaID, changes: taskOnly),
            context: context
        )
        #expect(edit.erased == taskOnly.count && edit.accepted.isEmpty)
    }

    /// A record's changes may be split between pushes (a device's push batches). A new task for a patient purged
    /// since, whose first push held no `patient` field, is stored without an owner; the push that names the patient
    /// drops its changes and has the record erased (``PushPlan/erasing``: its id kept, what was stored of it
    /// deleted), and later pushes drop its changes by that id. A record held with an owner keeps it: a change
    /// naming an erased patient is judged, and refused, as without a purge.
    @Test func aRecordGivenToAPurgedPatientByALaterPushIsErasedThen() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let purged = RecordRef(type: RecordType.patient.rawValue, id: TinyPractice.patients[0])
        let task = RecordRef(type: RecordType.task.rawValue, id: TinyPractice.task)
        let taskChanges = changes.filter { $0.record == task }
        let unnamed = taskChanges.filter { $0.field != "patient" }
        let named = taskChanges.filter { $0.field == "patient" }
        try #require(!unnamed.isEmpty && named.count == 1)
        let replicaID = replica.store.replicaID
        var context = PushContext()
        context.erased = [purged]
        context.existing = Set(changes.map(\.record)).subtracting([purged, task])

        // The first push cannot tell whose the task is: stored without an owner.
        let first = try judge().judge(PushRequest(replica: replicaID, changes: unnamed), context: context)
        #expect(first.accepted.count == unnamed.count && first.erased == 0 && first.erasing.isEmpty)
        let stored = try #require(first.records.first { $0.ref == task })
        #expect(stored.owner == nil)
        context.records[task] = (nil, stored.state)

        let second = try judge().judge(PushRequest(replica: replicaID, changes: named), context: context)
        #expect(second.accepted.isEmpty && second.erased == 1 && second.records.isEmpty)
        #expect(second.erasing == [PushPlan.Erasing(record: task, patient: purged.id)])

        // Once erased, its changes are dropped by its id.
        context.records[task] = nil
        context.erased.insert(task)
        let third = try judge().judge(PushRequest(replica: replicaID, changes: unnamed), context: context)
        #expect(third.accepted.isEmpty && third.erased == unnamed.count && third.erasing.isEmpty)

        // Held with its owner, the task keeps it: naming an erased patient is refused (the field is written once).
        var held = RecordState()
        for change in taskChanges { held.apply(change) }
        var other = PushContext()
        other.records[task] = (TinyPractice.patients[0], held)
        other.existing = Set(changes.map(\.record))
        other.erased = [RecordRef(type: RecordType.patient.rawValue, id: TinyPractice.patients[1])]
        var moved = named[0]
        moved.id = ChangeID(replica: replicaID, counter: 9_999)
        moved.value = .string(TinyPractice.patients[1])
        let refused = try judge().judge(
            PushRequest(replica: replicaID, changes: [moved]),
            context: other,
            perChange: true
        )
        #expect(refused.erased == 0 && refused.erasing.isEmpty && refused.accepted.isEmpty)
        #expect(refused.refused.map(\.code) == ["invalid_change"])
    }

    /// A stored record's row is written with its owner only when the owner changes: an edit to a task of the same
    /// patient rewrites its state alone (SQLite rewrites an index entry for every column a statement sets).
    @Test func aPlanRewritesARecordsOwnerOnlyWhenItChanges() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let first = try judge().judge(PushRequest(replica: replica.store.replicaID, changes: changes), context: .init())
        #expect(!first.records.isEmpty && first.records.allSatisfy { $0.row == .insert && !$0.learntOwner })
        // The server holds the practice now.
        var context = PushContext()
        for record in first.records {
            context.records[record.ref] = (record.owner, record.state)
            context.existing.insert(record.ref)
        }
        let task = RecordRef(type: RecordType.task.rawValue, id: TinyPractice.task)
        let stored = try #require(context.records[task])
        let patient = try #require(stored.owner)
        let edit = try change("\(replica.store.replicaID)/9999", task.type, task.id, "priority", .string("urgent"))
        let request = PushRequest(replica: replica.store.replicaID, changes: [edit])
        func written(_ owner: String?) throws -> PushPlan.Record {
            context.records[task] = (owner, stored.state)
            let plan = try judge().judge(request, context: context)
            return try #require(plan.records.count == 1 ? plan.records.first : nil)
        }
        let same = try written(patient)
        #expect(same.row == .state && same.owner == patient && !same.learntOwner)
        let ownerless = try written(nil)
        #expect(ownerless.row == .stateAndOwner && ownerless.owner == patient && ownerless.learntOwner)
        let other = try #require(TinyPractice.patients.first { $0 != patient })
        let moved = try written(other)
        #expect(moved.row == .stateAndOwner && moved.owner == patient && !moved.learntOwner)
    }

    /// Conflict marks: a field is marked when in conflict, or when it had two live writes before the push (it may
    /// have a conflict row to close); a new record's fields and a stored field with one live write have no row to
    /// close and are not marked. A patient's scope columns are written when new or changed only.
    @Test func aPlanMarksFieldsThatAreOrMayHaveBeenInConflictAndWritesOnlyNewScopes() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let replicaID = replica.store.replicaID
        let first = try judge().judge(PushRequest(replica: replicaID, changes: changes), context: .init())
        #expect(first.conflicts.isEmpty, "\(first.conflicts.count) marks for a practice without conflicts")

        // A new patient whose given name (a review field) is written twice, neither write knowing of the other.
        let patient = "pat_01JWMCKG1ZZZZZZZZZZZZZZZZZ"
        var fields: [Change] = []
        for (index, name) in ["givenName", "familyName", "birthDate", "sex", "status", "subgroup"].enumerated() {
            let value: Value =
                switch name {
                case "birthDate": .string("1970-01-01")
                case "sex": .string("female")
                case "status": .string("active")
                case "subgroup": .string(TinyPractice.subgroup)
                default: .string("Name")
                }
            fields.append(try change("\(replicaID)/\(9000 + index)", RecordType.patient.rawValue, patient, name, value))
        }
        fields.append(
            try change("\(replicaID)/9100", RecordType.patient.rawValue, patient, "givenName", .string("Other"))
        )
        var context = PushContext()
        for record in first.records {
            context.records[record.ref] = (record.owner, record.state)
            context.existing.insert(record.ref)
        }
        // A stored patient's language edited (one live write before), and another's in conflict (two live
        // writes, as the server holds it) resolved by an edit replacing both.
        let stored = RecordRef(type: RecordType.patient.rawValue, id: TinyPractice.patients[1])
        fields.append(try change("\(replicaID)/9200", stored.type, stored.id, "preferredLanguage", .string("es")))
        let conflicted = RecordRef(type: RecordType.patient.rawValue, id: TinyPractice.patients[2])
        var state = try #require(context.records[conflicted]).state
        let concurrent = [
            try change("site-x/1", conflicted.type, conflicted.id, "preferredLanguage", .string("fr")),
            try change("site-y/1", conflicted.type, conflicted.id, "preferredLanguage", .string("de")),
        ]
        for change in concurrent { state.apply(change) }
        #expect(state["preferredLanguage"].live.count == 2)
        context.records[conflicted] = (conflicted.id, state)
        fields.append(
            try change(
                "\(replicaID)/9300",
                conflicted.type,
                conflicted.id,
                "preferredLanguage",
                .string("en"),
                replaces: concurrent.map(\.id)
            )
        )
        let plan = try judge().judge(PushRequest(replica: replicaID, changes: fields), context: context)
        let marks = plan.conflicts.map { "\($0.record.id).\($0.field)=\($0.isConflict)" }
        #expect(marks == ["\(patient).givenName=true", "\(conflicted.id).preferredLanguage=false"].sorted())
        #expect(plan.patientScopes.map(\.patient) == [patient], "only the new patient's scope is written")
    }

    @Test func referencesNameEveryAuthorSiteAndReferenceValue() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, changes) = try loaded(directory)
        let refs = PushJudge.references(of: PushRequest(replica: replica.store.replicaID, changes: changes))
        #expect(refs.contains(RecordRef(type: RecordType.person.rawValue, id: TinyPractice.person)))
        #expect(refs.contains(RecordRef(type: RecordType.team.rawValue, id: TinyPractice.team)))
        #expect(refs.contains(RecordRef(type: RecordType.subgroup.rawValue, id: TinyPractice.subgroup)))
        #expect(refs.contains(RecordRef(type: RecordType.patient.rawValue, id: TinyPractice.patients[0])))
    }

    @Test func aScopedPageSendsEnteringPatientsWholeAndTellsLeavingOnesOnce() throws {
        let directory = try TemporaryDirectory("outpost-planner")
        let (_, changes) = try loaded(directory)
        let (inside, outside, left) = (TinyPractice.patients[0], TinyPractice.patients[1], TinyPractice.patients[2])
        let rows = changes.map { change in
            let owner =
                change.record.type == RecordType.patient.rawValue
                ? change.record.id : (change.record.id == TinyPractice.task ? inside : nil)
            return FeedPlanner.FeedRow(record: change.record, owner: owner, change: change)
        }
        let known: [String: FeedPlanner.DevicePatient] = [
            inside: .init(isIn: true, at: 5, atSince: 4),
            left: .init(isIn: true, at: 5, atSince: 4),
        ]
        let page = FeedPlanner.scopedPage(rows: rows, inScope: [inside], known: known, since: 10)
        #expect(page.entering.isEmpty, "applied already")
        #expect(page.removed == [left])
        #expect(page.changes.allSatisfy { $0.record.id != outside && $0.record.id != left })
        #expect(page.changes.contains { $0.record.id == inside })
        #expect(page.changes.contains { $0.record.type == RecordType.team.rawValue }, "structure is always sent")

        // Told to leave at 12 and applied past it: forgotten.
        let later = FeedPlanner.scopedPage(
            rows: [],
            inScope: [inside],
            known: [inside: .init(isIn: true, at: 5, atSince: 4), left: .init(isIn: false, at: 12, atSince: 10)],
            since: 13
        )
        #expect(later.removed.isEmpty && later.forgotten == [left])
    }

    /// A snapshot's first page removes the purged patients and, for a scope, those the device was sent (in or
    /// told out) that are out of its scope now; nothing else the snapshot leaves out.
    @Test func aSnapshotsFirstPageRemovesThePurgedAndThePatientsSentThatLeftTheScope() {
        #expect(
            FeedPlanner.removedOnBootstrap(
                purged: ["p9", "p2"],
                known: ["p1", "p3", "p4", "p2"],
                inScope: ["p1", "p5"]
            )
                == ["p2", "p3", "p4", "p9"]
        )
        #expect(FeedPlanner.removedOnBootstrap(purged: ["p9"], known: ["p1"], inScope: nil) == ["p9"])
        #expect(FeedPlanner.removedOnBootstrap(purged: [], known: [], inScope: ["p1"]).isEmpty)
    }

    /// A scoped snapshot's first page records its scope as sent and every other patient the device was sent as told
    /// to leave, all at the head, applied once the device pulls from the snapshot's checkpoint; a leaver is not
    /// forgotten before, so a first page asked for again after a lost answer still removes it.
    @Test func aSnapshotsFirstPageKeepsTheLeaversUntilTheDevicePullsFromItsCheckpoint() {
        let known: [String: FeedPlanner.DevicePatient] = [
            "p1": .init(isIn: true, at: 5, atSince: 4), "p2": .init(isIn: true, at: 5, atSince: 4),
            "p3": .init(isIn: false, at: 8, atSince: 7),
        ]
        let record = FeedPlanner.bootstrapRecord(known: known, inScope: ["p1", "p4"], head: 20)
        #expect(
            record == [
                "p1": .init(isIn: true, at: 20, atSince: 19), "p4": .init(isIn: true, at: 20, atSince: 19),
                "p2": .init(isIn: false, at: 20, atSince: 19), "p3": .init(isIn: false, at: 20, atSince: 19),
            ]
        )
        // The first page asked for again, its answer lost: the leavers are removed again.
        #expect(FeedPlanner.removedOnBootstrap(purged: [], known: record.keys, inScope: ["p1", "p4"]) == ["p2", "p3"])
        // Pulled from the snapshot's checkpoint (the head): applied, and forgotten by that pull.
        let pull = FeedPlanner.scopedPage(rows: [], inScope: ["p1", "p4"], known: record, since: 20)
        #expect(pull.removed.isEmpty && pull.entering.isEmpty && pull.forgotten == ["p2", "p3"])
        // Pushed before it (the device's last pull began earlier): the leavers' edits are still taken.
        #expect(FeedPlanner.heldPatients(recorded: record, pulledFrom: 12) == ["p1", "p2", "p3", "p4"])
    }

    /// A scoped device still holds the patients it was sent and those it was told to remove until it pulls past
    /// the page that told it; its push may carry edits to them.
    @Test func aDeviceHoldsAPatientUntilItPullsPastItsRemoval() {
        let recorded: [String: FeedPlanner.DevicePatient] = [
            "in": .init(isIn: true, at: 5, atSince: 4),
            "told": .init(isIn: false, at: 12, atSince: 10),
        ]
        #expect(FeedPlanner.heldPatients(recorded: recorded, pulledFrom: nil) == ["in", "told"])
        #expect(FeedPlanner.heldPatients(recorded: recorded, pulledFrom: 10) == ["in", "told"], "the page not applied")
        #expect(FeedPlanner.heldPatients(recorded: recorded, pulledFrom: 12) == ["in"], "pulled from past it")
    }

    @Test func aScopedDeviceHoldsThePatientsItsPushCreatesUntilAPullSendsOrRemovesThem() {
        func record(_ type: String, _ id: String, _ row: PushPlan.Record.RowChange) -> PushPlan.Record {
            PushPlan.Record(
                ref: RecordRef(type: type, id: id),
                owner: type == "patient" ? nil : "pat_a",
                state: RecordState(),
                learntOwner: false,
                row: row
            )
        }
        var plan = PushPlan()
        plan.records = [
            record("patient", "pat_b", .insert), record("patient", "pat_a", .insert), record("task", "tsk_1", .insert),
            record("patient", "pat_c", .state), record("patient", "pat_d", .stateAndOwner),
        ]
        let team = Scope(teams: ["tea_1"])
        #expect(FeedPlanner.patientsCreated(by: plan, scope: team) == ["pat_a", "pat_b"], "new patients only")
        #expect(FeedPlanner.patientsCreated(by: plan, scope: .practice).isEmpty, "the whole practice is not recorded")

        // Recorded so, a created patient is held, never applied, and its device's next pull sends it whole if it
        // is in the scope and removes it if not.
        let recorded = ["pat_a": FeedPlanner.sentByPush, "pat_b": FeedPlanner.sentByPush]
        #expect(FeedPlanner.heldPatients(recorded: recorded, pulledFrom: 1 << 40) == ["pat_a", "pat_b"])
        let page = FeedPlanner.scopedPage(rows: [], inScope: ["pat_a"], known: recorded, since: 1 << 40)
        #expect(page.entering == ["pat_a"] && page.removed == ["pat_b"] && page.forgotten.isEmpty)
    }

    @Test func aSnapshotPageStopsOneVisibleRecordPastItsLimit() throws {
        let records = (0..<10).map { RecordRef(type: RecordType.patient.rawValue, id: "p\($0)") }
        var walked = 0
        var iterator = records.makeIterator()
        let page = FeedPlanner.snapshotPage(
            limit: 3,
            visibility: .patients(["p1", "p4", "p6", "p8", "p9"]),
            next: { () -> (record: RecordRef, owner: String?)? in
                guard let next = iterator.next() else { return nil }
                walked += 1
                return (next, nil)
            }
        )
        #expect(page.records.map(\.id) == ["p1", "p4", "p6"])
        #expect(page.next?.id == "p6")
        #expect(walked == 9, "read up to the fourth visible record, no further")
        var all = records.makeIterator()
        let whole = FeedPlanner.snapshotPage(
            limit: 20,
            visibility: .wholePractice,
            next: { () -> (record: RecordRef, owner: String?)? in all.next().map { ($0, nil) } }
        )
        #expect(whole.records == records && whole.next == nil)
    }

    /// Sparing a device its own records (`own=skip`): they do not fill the page, `spares` is asked of visible
    /// records only, and a walk that reaches its limit ends the page there, with the last record walked as the
    /// cursor, however few records it holds.
    @Test func aSnapshotPageSparingOwnRecordsDoesNotCountThemAndStopsAtItsWalkLimit() {
        let records = (0..<20).map { RecordRef(type: RecordType.patient.rawValue, id: "p\($0)") }
        let own: Set<String> = ["p0", "p1", "p2", "p3", "p5", "p6", "p7", "p8", "p9"]
        let visibility = FeedPlanner.Visibility.patients(Set(records.map(\.id)).subtracting(["p10"]))
        func walk(walkLimit: Int) -> (page: (records: [RecordRef], next: RecordRef?), asked: [String]) {
            var iterator = records.makeIterator()
            var asked: [String] = []
            let page = FeedPlanner.snapshotPage(
                limit: 3,
                visibility: visibility,
                walkLimit: walkLimit,
                next: { iterator.next().map { ($0, nil) } },
                spares: { ref in
                    asked.append(ref.id)
                    return own.contains(ref.id)
                }
            )
            return (page, asked)
        }
        let full = walk(walkLimit: 100)
        #expect(full.page.records.map(\.id) == ["p4", "p11", "p12"])
        #expect(full.page.next?.id == "p12")
        #expect(full.asked == (0...13).filter { $0 != 10 }.map { "p\($0)" }, "to the fourth record sent, p10 unseen")
        let cut = walk(walkLimit: 6)
        #expect(cut.page.records.map(\.id) == ["p4"] && cut.page.next?.id == "p5")
        let none = walk(walkLimit: 4)
        #expect(none.page.records.isEmpty && none.page.next?.id == "p3")
        let end = walk(walkLimit: 20)
        #expect(end.page.records.count == 3, "the walk's limit is not reached before the page is full")
    }

    /// A store written before changes were stored in binary: opened, its changes are converted, served as they
    /// were, and a retried push of them is still found a duplicate.
    @Test func aStoreWithJSONChangesIsMigratedAndServesThemUnchanged() async throws {
        let directory = try TemporaryDirectory("outpost-migrate")
        let (replica, changes) = try loaded(directory)
        let data = directory.path("server")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        do {
            let pool = try DatabasePool(path: data + "/outpost-server.sqlite")
            try ServerStore.migrator.migrate(pool, upTo: "v4-per-practice")
            let encoder = Wire.makeEncoder()
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO practice (id, name, createdAt) VALUES (?, 'Tiny', 0)",
                    arguments: [TinyPractice.practice]
                )
                for change in changes {
                    try db.execute(
                        sql: """
                            INSERT INTO change (practice, replica, counter, type, id, owner, payload)
                            VALUES (?, ?, ?, ?, ?, NULL, ?)
                            """,
                        arguments: [
                            TinyPractice.practice, change.id.replica.rawValue, Int64(change.id.counter),
                            change.record.type, change.record.id, try encoder.encode(change),
                        ]
                    )
                }
            }
        }
        let store = try ServerStore.quiet(data, create: false)
        let token = try store.tinyPracticeAdminToken()
        let page = try await store.pull(token: token, replica: nil, since: 0, limit: 10_000)
        #expect(page.changes == changes)
        let again = try await store.push(
            PushRequest(replica: replica.store.replicaID, changes: changes),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        #expect(again.response.duplicates == changes.count && again.response.accepted == 0)
    }

    /// A push that erases what an earlier push stored of a record given to a purged patient moves the purge to a
    /// new feed position, and says so (waiting pulls wake for it); a push of edits to records the purge erased
    /// itself moves nothing.
    @Test func aPushThatErasesStoredChangesMovesThePurgeAndSaysSo() async throws {
        let directory = try TemporaryDirectory("outpost-erase-moves")
        let (replica, changes) = try loaded(directory)
        let (store, admin) = try ServerStore.tinyPractice(in: directory.path("server"))
        let patient = TinyPractice.patients[0]
        let task = RecordRef(type: RecordType.task.rawValue, id: TinyPractice.task)
        func push(_ changes: [Change]) async throws -> PushOutcome {
            try await store.push(
                PushRequest(replica: replica.store.replicaID, changes: changes),
                token: admin,
                now: nowMillis(),
                maxClockSkewMillis: 60_000
            )
        }
        _ = try await push(changes.filter { $0.record != task })
        _ = try store.purge(practice: TinyPractice.practice, patient: patient, reason: "test erasure", now: nowMillis())
        let purgedAt = try store.read { db in try ServerStore.purgeHead(practice: TinyPractice.practice, db: db) }

        let unnamed = try await push(changes.filter { $0.record == task && $0.field != "patient" })
        #expect(unnamed.response.accepted > 0 && !unnamed.movedPurge)
        let named = try await push(changes.filter { $0.record == task && $0.field == "patient" })
        #expect(named.response.erased == 1 && named.movedPurge)
        #expect(try store.read { db in try ServerStore.purgeHead(practice: TinyPractice.practice, db: db) } > purgedAt)
        let again = try await push(changes.filter { $0.record == RecordRef(type: "patient", id: patient) })
        #expect(again.response.erased > 0 && !again.movedPurge)
    }

    /// A scoped token's pull without its device's replica id is refused by the store itself, not only by the route:
    /// a scoped page is planned against what the device was sent, and without a replica the page would be the whole
    /// practice's feed.
    @Test func aScopedPullWithoutAReplicaIsRefusedByTheStore() async throws {
        let directory = try TemporaryDirectory("outpost-scoped-no-replica")
        let (replica, changes) = try loaded(directory)
        let (store, admin) = try ServerStore.tinyPractice(in: directory.path("server"))
        _ = try await store.push(
            PushRequest(replica: replica.store.replicaID, changes: changes),
            token: admin,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        var nurse = admin
        nurse.role = .clinician
        nurse.scope = Scope(teams: [TinyPractice.team])
        do throws(ServerError) {
            let page = try await store.pull(token: nurse, replica: nil, since: 0, limit: 10_000)
            Issue.record("a scoped pull without a replica was answered with \(page.changes.count) changes")
        } catch {
            #expect(error.code == .invalidParameter && error.field == "replica", "\(error)")
        }
        // With its replica id, the same token's page holds only its scope.
        let scoped = try await store.pull(token: nurse, replica: ReplicaID("nurse")!, since: 0, limit: 10_000)
        #expect(scoped.changes.count < changes.count)
    }

    /// A new store has 8 KiB pages, so a record's merged state (1 to 2 KB for a patient or a task) fits in its row
    /// instead of spilling to an overflow page; a store made with 4 KiB pages keeps them (SQLite sets a page size
    /// only on an empty file) and takes pushes as before.
    @Test func aNewStoreHasEightKiBPagesAndAnOlderOneKeepsItsOwn() async throws {
        let directory = try TemporaryDirectory("outpost-pages")
        func pageSize(_ store: ServerStore) throws -> Int? {
            try store.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") }
        }
        let new = try ServerStore.quiet(directory.path("new"))
        #expect(try pageSize(new) == 8192)

        let data = directory.path("old")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        do {
            let pool = try DatabasePool(path: data + "/outpost-server.sqlite")
            #expect(try await pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 4096)
            try ServerStore.migrator.migrate(pool)
        }
        let old = try ServerStore.quiet(data, create: false)
        #expect(try pageSize(old) == 4096)
        let practice = PracticeEntry(id: TinyPractice.practice, name: "Tiny", createdAtMillis: 0)
        try old.write { db in try ServerStore.insertPractice(practice, now: nowMillis(), db: db) }
        let token = try old.tinyPracticeAdminToken()
        let (replica, changes) = try loaded(directory)
        let outcome = try await old.push(
            PushRequest(replica: replica.store.replicaID, changes: changes),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        #expect(outcome.response.accepted == changes.count)
    }

    /// Changes are not indexed by record (`v10-changes-by-feed`): a store of the version before loses that index,
    /// the feed's index stays, and the update that gives ownerless changes their owner finds them by an index of
    /// those alone.
    @Test func aStoreIndexesChangesByFeedAndOnlyOwnerlessOnesByRecord() throws {
        let directory = try TemporaryDirectory("outpost-migrate")
        let data = directory.path("server")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        func indexes(_ db: Database) throws -> Set<String> {
            Set(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT name FROM sqlite_master
                        WHERE type = 'index' AND tbl_name = 'change' AND sql IS NOT NULL
                        """
                )
            )
        }
        do {
            let pool = try DatabasePool(path: data + "/outpost-server.sqlite")
            try ServerStore.migrator.migrate(pool, upTo: "v9-compaction")
            #expect(try pool.read(indexes) == ["change_by_practice", "change_by_record"])
        }
        let store = try ServerStore.quiet(data, create: false)
        try store.pool.read { db in
            #expect(try indexes(db) == ["change_by_practice", "change_ownerless"])
            let plan = try Row.fetchAll(
                db,
                sql: """
                    EXPLAIN QUERY PLAN
                    UPDATE change SET owner = 'pat' WHERE practice = 'p' AND type = 't' AND id = 'i' AND owner IS NULL
                    """
            ).map { $0["detail"] as String }.joined(separator: "; ")
            #expect(plan.contains("change_ownerless"), "\(plan)")
        }
    }
}
