import OutpostCRDT
import OutpostProtocol
import Testing

@testable import OutpostClient

/// A replica's side of a server restored from a backup (protocol/README.md, "Epochs"): the new epoch puts back
/// in the outbox what the server lacks, leaves refused changes aside, and forgets the checkpoint.
struct ServerEpochTests {
    @Test func aNewEpochPutsBackWhatTheServerLacksAndLeavesRefusedChangesAside() throws {
        let store = try makeTestStore()
        let patient = RecordRef(type: "patient", id: "pat_1")
        for phone in ["555-0101", "555-0102", "555-0103", "555-0104", "555-0105", "555-0106"] {
            try store.commit([.assign(patient, "phone", .string(phone))], author: "per_1", site: nil)
        }
        let pushed = try store.pendingChanges()
        #expect(pushed.map(\.id.counter) == [1, 2, 3, 4, 5, 6])
        // The server took them all but the third, refused one by one and held aside here.
        let refusal = RefusedChange(id: pushed[2].id, code: "out_of_scope", message: "change 2 is out of scope")
        try store.recordPush(
            pushed,
            response: PushResponse(
                accepted: 5,
                duplicates: 0,
                acknowledged: 6,
                serverTimeMillis: 0,
                refused: [refusal]
            )
        )
        try store.applySnapshot([], checkpoint: "40")
        try store.adoptServerEpoch("epo_00000000000000000000000000000001", serverHolds: nil)
        #expect(try store.pendingChanges().isEmpty)
        #expect(try store.checkpoint() == "40", "the first epoch seen is only recorded")

        // Restored from a backup that holds the first change only: 2, 4, 5 and 6 go back in the outbox, not 3.
        let resent = try store.adoptServerEpoch("epo_00000000000000000000000000000002", serverHolds: 1)
        #expect(resent == 4)
        #expect(try store.serverEpoch() == "epo_00000000000000000000000000000002")
        #expect(try store.checkpoint() == nil)
        #expect(try store.pendingChanges().map(\.id.counter) == [2, 4, 5, 6])
        #expect(try store.pendingChanges(limit: 2).map(\.id.counter) == [2, 4])
        #expect(try store.refusedChanges().map(\.change.id.counter) == [3])
        // A server that holds more than the replica pushed changes nothing of the outbox.
        #expect(try store.adoptServerEpoch("epo_00000000000000000000000000000003", serverHolds: 9) == 0)
    }

    /// A refused change retried and stored after the backup lies below what the server holds (later changes went
    /// past it while it was held aside): a new epoch sends it again from its own copy, at the head of the push,
    /// without showing it as refused, even when the change log has compacted it away; stored again, it is done.
    @Test(arguments: [1, 4] as [UInt64])
    func aNewEpochSendsAgainARetriedChangeTheServerStoredWithoutShowingItAsRefused(holds: UInt64) throws {
        let store = try makeTestStore()
        let patients = [RecordRef(type: "patient", id: "pat_1"), RecordRef(type: "patient", id: "pat_2")]
        for (index, phone) in ["555-0101", "555-0102", "555-0103", "555-0104"].enumerated() {
            try store.commit([.assign(patients[index % 2], "phone", .string(phone))], author: "per_1", site: nil)
        }
        let patient = patients[1]
        let pushed = try store.pendingChanges()
        func answer(_ changes: [Change], refusing: [Change] = []) -> PushResponse {
            PushResponse(
                accepted: changes.count - refusing.count,
                duplicates: 0,
                acknowledged: changes.map(\.id.counter).max() ?? 0,
                serverTimeMillis: 0,
                refused: refusing.map { RefusedChange(id: $0.id, code: "out_of_scope", message: "out of scope") }
            )
        }
        try store.recordPush(pushed, response: answer(pushed, refusing: [pushed[1]]))
        try store.retryRefused(pushed[1].id)
        #expect(try store.retryingChanges() == [pushed[1]])
        #expect(try store.retryingCount() == 1)
        try store.recordPush([pushed[1]], response: answer([pushed[1]]))
        #expect(try store.refusedChanges(includingDiscarded: true).isEmpty)
        #expect(try store.retryingChanges().isEmpty && store.retryingCount() == 0)
        // Superseded and acknowledged: the change log drops it; its copy stays.
        #expect(try store.compactHistory().dropped > 0)
        #expect(try !store.history(of: patient).contains { $0.id == pushed[1].id })
        try store.adoptServerEpoch("epo_00000000000000000000000000000001", serverHolds: nil)

        // Restored from a backup taken before the retry: sent again, never counted as refused.
        let resent = try store.adoptServerEpoch("epo_00000000000000000000000000000002", serverHolds: holds)
        let again = pushed.filter { $0.id.counter > holds || $0.id == pushed[1].id }
        #expect(resent == again.count)
        // Below what the server holds, at the head of the push; above it, in its place in the outbox: a push's
        // counters increase either way.
        let sent = try store.retryingChanges() + store.pendingChanges()
        #expect(sent == again)
        #expect(try store.retryingChanges() == (holds >= 2 ? [pushed[1]] : []))
        #expect(try store.retryingCount() == (holds >= 2 ? 1 : 0))
        #expect(try store.refusedCount() == 0 && store.refusedChanges(includingDiscarded: true).isEmpty)
        #expect(try store.status().refusedChanges == 0)
        // The server stores it again (a duplicate when its backup had it): nothing more to send.
        try store.recordPush(sent, response: answer(sent))
        #expect(try store.retryingChanges().isEmpty && store.pendingChanges().isEmpty)
        // Another restore sends it again; refused there, it is held aside as refused once more.
        try store.adoptServerEpoch("epo_00000000000000000000000000000003", serverHolds: 4)
        #expect(try store.retryingChanges() == [pushed[1]])
        try store.recordPush([pushed[1]], response: answer([pushed[1]], refusing: [pushed[1]]))
        #expect(try store.retryingChanges().isEmpty)
        #expect(try store.refusedChanges().map(\.id) == [pushed[1].id])
    }

    /// A patient that left this device's scope (a page names it in `removed` and `leftScope`) goes with the records
    /// it owns, and this replica's changes to them are kept, unsent, for a server restored from a backup that lacks
    /// them: a new epoch sends again those above what the restored store holds (`holds`; those at or below it are in
    /// the backup). A change still in the outbox at the removal is kept too, and survives `compact` once pushed (its
    /// log row outlives its record). A change held aside after a refusal stays as the clinician left it. Purged
    /// later (named in `removed` alone), the patient's kept changes, refused changes and log rows all go, and no
    /// later restore is sent any of them.
    @Test(arguments: [0, 2] as [UInt64])
    func aPatientThatLeftTheScopeKeepsItsOwnChangesForARestoreUntilItsPurge(holds: UInt64) throws {
        let store = try makeTestStore()
        let left = RecordRef(type: "patient", id: "pat_1")
        let other = RecordRef(type: "patient", id: "pat_2")
        let task = RecordRef(type: "task", id: "tsk_1")
        try store.commit([.assign(left, "phone", .string("555-0101"))], author: "per_1", site: nil)
        try store.commit([.assign(other, "phone", .string("555-0102"))], author: "per_1", site: nil)
        try store.commit([.assign(task, "patient", .string(left.id))], author: "per_1", site: nil)
        try store.commit([.assign(left, "phone", .string("555-0104"))], author: "per_1", site: nil)
        try store.commit([.assign(task, "status", .string("requested"))], author: "per_1", site: nil)
        let pushed = try store.pendingChanges()
        #expect(pushed.map(\.id.counter) == [1, 2, 3, 4, 5])
        try store.recordPush(
            pushed,
            response: PushResponse(
                accepted: 4,
                duplicates: 0,
                acknowledged: 5,
                serverTimeMillis: 0,
                refused: [RefusedChange(id: pushed[4].id, code: "forbidden", message: "no")]
            )
        )
        try store.adoptServerEpoch("epo_00000000000000000000000000000001", serverHolds: nil)
        // Made while the page removing the patient was on its way: still in the outbox when it is written.
        try store.commit([.assign(left, "phone", .string("555-0106"))], author: "per_1", site: nil)
        let late = try #require(try store.pendingChanges().first)

        let report = try store.applyPage(
            changes: [],
            records: [],
            removed: [left.id],
            leftScope: [left.id],
            checkpoint: "50"
        )
        #expect(report.removedPatients == 1)
        #expect(try store.record(left) == nil && store.record(task) == nil && store.record(other) != nil)
        #expect(try store.pendingChanges() == [late], "the outbox is sent as before")
        try store.recordPush(
            [late],
            response: PushResponse(accepted: 1, duplicates: 0, acknowledged: 6, serverTimeMillis: 0)
        )
        #expect(try store.pendingChanges().isEmpty && store.retryingChanges().isEmpty, "kept, not sent")
        #expect(try store.refusedChanges().map(\.id) == [pushed[4].id])
        // The log row of the change pushed after the removal outlives its record, and compaction drops it.
        #expect(try store.history(of: left).map(\.id) == [late.id])
        try store.compactHistory()
        #expect(try store.history(of: left).isEmpty, "only its kept copy is left to send")

        // Restored: the kept changes above what the store holds go again; the refused change stays aside.
        let resent = try store.adoptServerEpoch("epo_00000000000000000000000000000002", serverHolds: holds)
        let again = holds == 0 ? [pushed[0], pushed[1], pushed[2], pushed[3], late] : [pushed[2], pushed[3], late]
        #expect(resent == again.count, "\(resent)")
        let sent = try store.retryingChanges() + store.pendingChanges()
        #expect(sent == again)
        #expect(try store.refusedChanges().map(\.id) == [pushed[4].id])
        // The restored store refuses one (judged against today's scope): held aside, shown.
        try store.recordPush(
            sent,
            response: PushResponse(
                accepted: sent.count - 1,
                duplicates: 0,
                acknowledged: 6,
                serverTimeMillis: 0,
                refused: [RefusedChange(id: pushed[3].id, code: "out_of_scope", message: "out of scope")]
            )
        )
        #expect(try store.retryingChanges().isEmpty && store.pendingChanges().isEmpty)
        #expect(try store.refusedChanges().map(\.id) == [pushed[3].id, pushed[4].id])

        // Purged (named in `removed` alone, by a server that names leavers): nothing of the patient is kept, its
        // refused changes included, and another restore sends none of it.
        try store.applyPage(changes: [], records: [], removed: [left.id], leftScope: [], checkpoint: "60")
        #expect(try store.refusedChanges(includingDiscarded: true).isEmpty, "the purged patient's refused changes go")
        try store.adoptServerEpoch("epo_00000000000000000000000000000003", serverHolds: 0)
        #expect(try store.retryingChanges() + store.pendingChanges() == [pushed[1]])
    }

    /// A server that does not say which removed patients left the scope (before `leftScope`: `nil`) cannot tell a
    /// purge from a scope change: the patient's records go, and nothing of it is kept or dropped besides, as before
    /// `leftScope` (its refused changes stay aside, shown, and a retried change's copy stays for a restore).
    @Test func aServerThatDoesNotNameLeaversKeepsNothingAndDropsNothingButTheRecords() throws {
        let store = try makeTestStore()
        let patient = RecordRef(type: "patient", id: "pat_1")
        for phone in ["555-0101", "555-0102"] {
            try store.commit([.assign(patient, "phone", .string(phone))], author: "per_1", site: nil)
        }
        let pushed = try store.pendingChanges()
        try store.recordPush(
            pushed,
            response: PushResponse(
                accepted: 1,
                duplicates: 0,
                acknowledged: 2,
                serverTimeMillis: 0,
                refused: [RefusedChange(id: pushed[1].id, code: "out_of_scope", message: "out of scope")]
            )
        )
        try store.adoptServerEpoch("epo_00000000000000000000000000000001", serverHolds: nil)
        try store.applyPage(changes: [], records: [], removed: [patient.id], checkpoint: "50")
        #expect(try store.record(patient) == nil)
        #expect(try store.refusedChanges().map(\.id) == [pushed[1].id])
        try store.adoptServerEpoch("epo_00000000000000000000000000000002", serverHolds: 0)
        #expect(try store.retryingChanges().isEmpty && store.pendingChanges().isEmpty, "nothing kept to send")
    }

    /// An answer acknowledges no further than the last change it answers. The server acknowledges the highest
    /// counter it holds: after a sync killed before it recorded the answers to two pipelined batches, the first
    /// batch pushed again can be answered past a change the server refused then (here change 5), which must stay
    /// in the outbox to be judged again, not leave it unheld.
    @Test func anAnswerAcknowledgesNoFurtherThanTheLastChangePushed() throws {
        let store = try makeTestStore()
        let patient = RecordRef(type: "patient", id: "pat_1")
        for phone in ["555-0101", "555-0102", "555-0103", "555-0104", "555-0105", "555-0106"] {
            try store.commit([.assign(patient, "phone", .string(phone))], author: "per_1", site: nil)
        }
        let pending = try store.pendingChanges()
        try store.recordPush(
            Array(pending.prefix(3)),
            response: PushResponse(accepted: 0, duplicates: 3, acknowledged: 6, serverTimeMillis: 0)
        )
        #expect(try store.pendingChanges().map(\.id.counter) == [4, 5, 6])
        #expect(try store.refusedChanges().isEmpty)
    }

    /// A push acknowledged short (``SyncEngine``) is acknowledged below its first refused change only: the refused
    /// changes are held aside by a recorded answer alone, so they stay in the outbox and are sent again.
    @Test func aShortAcknowledgementStopsBelowTheFirstRefusedChange() throws {
        let replica = try #require(ReplicaID("site-a"))
        func response(acknowledged: UInt64, refusing counters: [UInt64]) -> PushResponse {
            PushResponse(
                accepted: 0,
                duplicates: 0,
                acknowledged: acknowledged,
                serverTimeMillis: 0,
                refused: counters.map {
                    RefusedChange(id: ChangeID(replica: replica, counter: $0), code: "forbidden", message: "no")
                }
            )
        }
        #expect(SyncEngine.acknowledgedBeforeRefusals(response(acknowledged: 7, refusing: [5, 3])) == 2)
        #expect(SyncEngine.acknowledgedBeforeRefusals(response(acknowledged: 7, refusing: [])) == 7)
        #expect(SyncEngine.acknowledgedBeforeRefusals(response(acknowledged: 7, refusing: [9])) == 7)
    }
}
