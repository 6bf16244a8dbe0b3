import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// ``PushJudge`` with per-change refusals, as pure code: which changes are refused one by one, which still refuse
/// the whole push, and that a change needing a refused one is refused in turn.
struct PerChangeJudgeTests {
    func loaded(_ directory: TemporaryDirectory) throws -> (ReplicaID, [Change]) {
        let replica = try LocalReplica("judge", in: directory)
        try TinyPractice.load(into: replica.care)
        return (replica.store.replicaID, try replica.store.pendingChanges(limit: 10_000))
    }

    func judge(_ role: Role) -> PushJudge {
        PushJudge(
            token: TokenEntry(
                id: "tok_test",
                practice: TinyPractice.practice,
                role: role,
                scope: .practice,
                label: "test",
                createdAtMillis: 0
            ),
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
    }

    @Test func aRefusedChangeInTheMiddleIsLeftOutAndTheOthersAreAccepted() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, original) = try loaded(directory)
        var changes = original
        // A change in the middle to a record an earlier change of the push created, and the last change.
        let middle = try #require(
            changes.indices.dropFirst(changes.count / 2).first { index in
                changes[..<index].contains { $0.record == changes[index].record }
            }
        )
        changes[middle].field = "noSuchField"
        changes[changes.count - 1].field = "noSuchField"
        let request = PushRequest(replica: replica, changes: changes)

        #expect(throws: ServerError.self) { try judge(.admin).judge(request, context: PushContext()) }
        let plan = try judge(.admin).judge(request, context: PushContext(), perChange: true)
        #expect(plan.refused.map(\.id) == [changes[middle].id, changes[changes.count - 1].id])
        #expect(plan.refused.allSatisfy { $0.code == ErrorCode.invalidChange.rawValue })
        #expect(plan.accepted.count == changes.count - 2)
        #expect(!plan.accepted.contains { $0.change.field == "noSuchField" })
        // The acknowledgement stops below the refused last change.
        #expect(plan.maxCounter == changes[changes.count - 2].id.counter)
    }

    @Test func aChangeThatNeedsARefusedOneIsRefusedInTurn() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, original) = try loaded(directory)
        var changes = original
        // Signed by the person the push creates: under a clinician token the person (practice structure) is
        // refused, so this change's author does not exist.
        let signed = try #require(changes.firstIndex { $0.record.id == TinyPractice.patients[1] })
        changes[signed].author = TinyPractice.person
        let request = PushRequest(replica: replica, changes: changes)

        let plan = try judge(.clinician).judge(request, context: PushContext(), perChange: true)
        let structure = Set(CareModel.structureTypes.map(\.rawValue))
        let refused = Dictionary(uniqueKeysWithValues: plan.refused.map { ($0.id, $0) })
        for change in changes where structure.contains(change.record.type) {
            #expect(refused[change.id]?.code == ErrorCode.forbidden.rawValue, "\(change.id)")
        }
        #expect(refused[changes[signed].id]?.field == "author")
        #expect(plan.accepted.count + plan.refused.count == changes.count)
        // Nothing accepted names a record only refused changes would have written.
        let accepted = plan.accepted.map(\.change)
        let refusedRecords = Set(changes.filter { refused[$0.id] != nil }.map(\.record.id))
            .subtracting(accepted.map(\.record.id))
        #expect(refusedRecords.contains(TinyPractice.person) && refusedRecords.contains(TinyPractice.team))
        #expect(!accepted.isEmpty)
        for change in accepted {
            #expect(!structure.contains(change.record.type))
            #expect(!refusedRecords.contains(change.author), "\(change.id)")
            if let type = RecordType(rawValue: change.record.type),
                case .reference = CareModel.spec(type, change.field)?.kind,
                let target = change.value.stringValue
            {
                #expect(!refusedRecords.contains(target), "\(change.id) refers to \(target)")
            }
        }
        #expect(plan.refused.allSatisfy { !$0.message.contains("Ottoline") && !$0.message.contains("Zephyrine") })
    }

    /// An observation's unit is judged against its code, whichever of the two comes second in the push, and against
    /// the code the server holds for an observation an earlier push made without its unit.
    @Test func anObservationsUnitMustBeOneItsCodeIsRecordedIn() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let replica = try LocalReplica("judge", in: directory)
        try TinyPractice.load(into: replica.care)
        let practice = try replica.store.pendingChanges(limit: 10_000)
        for (code, unit, value) in [("4548-4", "%", "7"), ("8480-6", "mm[Hg]", "128"), ("29463-7", "kg", "70")] {
            try replica.care.create(
                .observation,
                fields: [
                    "patient": [.string(TinyPractice.patients[0])], "code": [.string(code)], "value": [.string(value)],
                    "unit": [.string(unit)], "effectiveAt": ["2026-05-01T09:00:00Z"], "status": ["final"],
                ]
            )
        }
        let all = try replica.store.pendingChanges(limit: 10_000)
        var changes = Array(all.dropFirst(practice.count))
        let units = changes.indices.filter { changes[$0].field == "unit" }
        try #require(units.count == 3)
        changes[units[0]].value = .string("mg/dL")
        changes[units[1]].value = .string("kPa")
        // The weight's value is a slip of a sign: refused, with its unit and code, whichever comes last.
        let weight = try #require(changes.indices.last { changes[$0].field == "value" })
        changes[weight].value = .string("-70")
        // The blood pressure's unit comes before its code: the code is the change refused.
        let code = try #require(
            changes.indices.first { changes[$0].field == "code" && changes[$0].record == changes[units[1]].record }
        )
        changes.swapAt(code, units[1])
        let request = PushRequest(replica: replica.store.replicaID, changes: practice + changes)
        let plan = try judge(.admin).judge(request, context: PushContext(), perChange: true)
        let refused = Dictionary(uniqueKeysWithValues: plan.refused.map { ($0.id, $0) })
        // Each reading is refused whole: its code, unit and value, never a value kept without its unit (the
        // scorecard would read it in the wrong one). The three observations' other fields are kept.
        #expect(plan.refused.count == 9)
        let readings = Set(changes.filter { $0.record.type == "observation" }.map(\.record))
        #expect(
            !plan.accepted.contains {
                readings.contains($0.change.record) && ["code", "unit", "value"].contains($0.change.field)
            }
        )
        #expect(plan.accepted.contains { readings.contains($0.change.record) && $0.change.field == "effectiveAt" })
        #expect(plan.refused.contains { $0.field == "observation.value" && !$0.message.contains("-70") })
        #expect(plan.refused.contains { $0.message.contains("kept together or not at all") })
        #expect(refused[changes[units[0]].id]?.message.contains("% or mmol/mol") == true)
        #expect(refused[changes[units[0]].id]?.field == "observation.unit")
        #expect(refused[changes[units[1]].id]?.field == "observation.unit")
        #expect(refused[changes[units[1]].id]?.message.contains("'kPa'") == true)
        #expect(changes[units[1]].field == "code")

        // An observation the server holds without its unit (a push split before it): its held code judges it.
        let held = changes[units[0]].record
        var state = RecordState()
        for change in changes where change.record == held && change.field == "code" { _ = state.apply(change) }
        var context = PushContext()
        context.records[held] = (owner: TinyPractice.patients[0], state: state)
        context.existing = Set(practice.map(\.record))
        let later = PushRequest(replica: replica.store.replicaID, changes: [changes[units[0]]])
        #expect(PushJudge.fieldsRead(by: later, of: [held])[held]?.contains("code") == true)
        let split = try judge(.admin).judge(later, context: context, perChange: true)
        #expect(split.refused.map(\.field) == ["observation.unit"])
    }

    @Test func aClockAheadOrAnotherReplicasChangeStillRefusesTheWholePush() throws {
        let directory = try TemporaryDirectory("outpost-judge")
        let (replica, original) = try loaded(directory)
        var skewed = original
        skewed[2].clock = Timestamp(millis: nowMillis() + 3_600_000)
        let skew = #expect(throws: ServerError.self) {
            try judge(.admin).judge(
                PushRequest(replica: replica, changes: skewed),
                context: PushContext(),
                perChange: true
            )
        }
        #expect(skew?.code == .clockSkew)
        var foreign = original
        foreign[2].id = ChangeID(replica: ReplicaID(unchecked: "other"), counter: foreign[2].id.counter)
        let mismatch = #expect(throws: ServerError.self) {
            try judge(.admin).judge(
                PushRequest(replica: replica, changes: foreign),
                context: PushContext(),
                perChange: true
            )
        }
        #expect(mismatch?.code == .replicaMismatch)
    }
}
