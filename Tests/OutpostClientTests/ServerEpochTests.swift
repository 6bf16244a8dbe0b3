import OutpostCRDT
import OutpostClient
import OutpostProtocol
import Testing

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
}
