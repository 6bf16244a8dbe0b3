import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import Testing

/// A device's own compaction: acknowledged superseded values leave the log; current values, the outbox and the
/// history of records with unsent changes stay.
struct HistoryCompactionTests {
    let patient = RecordRef(type: "patient", id: "pat_1")
    let other = RecordRef(type: "patient", id: "pat_2")

    func acknowledge(_ changes: [Change], in store: LocalStore) throws {
        try store.recordPush(
            changes,
            response: PushResponse(
                accepted: changes.count,
                duplicates: 0,
                acknowledged: changes.map(\.id.counter).max() ?? 0,
                serverTimeMillis: 0
            )
        )
    }

    @Test func acknowledgedSupersededValuesGoAndNothingElse() throws {
        let store = try makeTestStore(replica: "laptop")
        var pushed: [Change] = []
        pushed += try store.commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        pushed += try store.commit([.assign(patient, "phone", "555-0101")], author: "per_1", site: nil)
        pushed += try store.commit([.append(patient, "notes", "seen")], author: "per_1", site: nil)
        pushed += try store.commit([.assign(other, "phone", "555-0200")], author: "per_1", site: nil)
        pushed += try store.commit([.assign(other, "phone", "555-0201")], author: "per_1", site: nil)
        try acknowledge(pushed, in: store)
        let unsent = try store.commit([.assign(other, "phone", "555-0202")], author: "per_1", site: nil)
        let before = try [patient, other].map { try store.record($0) }

        let report = try store.compactHistory()
        #expect(report.dropped == 1, "only the first phone of pat_1: pat_2 has an unsent change")
        #expect(try [patient, other].map { try store.record($0) } == before)
        #expect(try store.history(of: patient).map(\.id) == [pushed[1].id, pushed[2].id])
        #expect(try store.history(of: other).count == 3)
        #expect(try store.pendingChanges(limit: 10).map(\.id) == unsent.map(\.id))
        #expect(try store.compactHistory().dropped == 0, "a second run finds nothing")
    }
}
