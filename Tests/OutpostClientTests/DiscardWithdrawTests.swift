import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import Testing

/// A discarded refused change is withdrawn from the device: its record reads as on the server, which never saw
/// it. (Before, the device kept showing the discarded edit.)
struct DiscardWithdrawTests {
    let patient = RecordRef(type: "patient", id: "pat_1")

    func phone(_ store: LocalStore) throws -> Value? {
        try store.record(patient)?["phone"].resolution(under: .lww).winner?.value
    }

    func refuse(_ changes: [Change], in store: LocalStore, acknowledged: UInt64) throws {
        try store.recordPush(
            changes,
            response: PushResponse(
                accepted: 0,
                duplicates: 0,
                acknowledged: acknowledged,
                serverTimeMillis: 0,
                refused: changes.map { RefusedChange(id: $0.id, code: "out_of_scope", message: "out of scope") }
            )
        )
    }

    @Test func theValueTheDiscardedChangeReplacedShowsAgain() throws {
        let store = try makeTestStore(replica: "laptop")
        let first = try store.commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        try store.recordPush(
            first,
            response: PushResponse(accepted: 1, duplicates: 0, acknowledged: 1, serverTimeMillis: 0)
        )
        let edit = try store.commit([.assign(patient, "phone", "555-0199")], author: "per_1", site: nil)
        try refuse(edit, in: store, acknowledged: 1)
        #expect(try phone(store) == "555-0199")

        let rebootstrap = try store.discardRefused(edit[0].id, reason: "wrong patient")
        #expect(!rebootstrap, "the change log holds every change of the record")
        #expect(try phone(store) == "555-0100")
        #expect(try store.record(patient)?["phone"].liveIDs == [first[0].id])
        #expect(try store.status().pendingChanges == 0)
        // The log keeps the discarded change (the audit marks it); history reads it, the state does not.
        #expect(try store.history(of: patient).map(\.id) == [first[0].id, edit[0].id])
    }

    @Test func aLaterEditThatReplacedTheDiscardedOneStaysAndTheEarlierValueIsConcurrentAgain() throws {
        let store = try makeTestStore(replica: "laptop")
        let first = try store.commit([.assign(patient, "birthDate", "1950-01-01")], author: "per_1", site: nil)
        try store.recordPush(
            first,
            response: PushResponse(accepted: 1, duplicates: 0, acknowledged: 1, serverTimeMillis: 0)
        )
        let refused = try store.commit([.assign(patient, "birthDate", "1950-01-02")], author: "per_1", site: nil)
        try refuse(refused, in: store, acknowledged: 1)
        // Written again after the refused edit (it names it as replaced), and stored by the server.
        let later = try store.commit([.assign(patient, "birthDate", "1950-01-03")], author: "per_1", site: nil)
        try store.recordPush(
            later,
            response: PushResponse(accepted: 1, duplicates: 0, acknowledged: later[0].id.counter, serverTimeMillis: 0)
        )
        try store.discardRefused(refused[0].id, reason: "typo")
        // The server holds the first and the later write and nothing that replaces the first: both live, a
        // conflict, as on the server. The device now agrees with it.
        var server = Document(schema: testSchema)
        try server.apply(first + later)
        #expect(try store.record(patient)?["birthDate"] == server.field(patient, "birthDate"))
        #expect(try store.conflicts().count == 1)
    }

    @Test func valuesHeldOnlyFromASnapshotComeBackWithTheNextBootstrap() throws {
        let office = try makeTestStore(replica: "office")
        try office.commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        let served = try #require(try office.record(patient))
        let laptop = try makeTestStore(replica: "laptop")
        try laptop.applySnapshot([SnapshotRecord(record: patient, state: served)], checkpoint: "7")
        let edit = try laptop.commit([.assign(patient, "phone", "555-0199")], author: "per_2", site: nil)
        try refuse(edit, in: laptop, acknowledged: 0)

        let rebootstrap = try laptop.discardRefused(edit[0].id, reason: "wrong patient")
        #expect(rebootstrap, "the replaced value is not in this device's log")
        #expect(try laptop.checkpoint() == nil)
        #expect(try phone(laptop) == nil)
        try laptop.applySnapshot([SnapshotRecord(record: patient, state: served)], checkpoint: "9")
        #expect(try phone(laptop) == "555-0100")
        #expect(try laptop.record(patient) == served)
    }
}
