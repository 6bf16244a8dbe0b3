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
