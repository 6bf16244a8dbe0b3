import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import Testing

/// A snapshot page looks up which of its records the device holds once per page; the held ones are merged
/// (never replaced: a device's own edits stay), the others inserted whole.
struct SnapshotApplyTests {
    let patients = (1...6).map { RecordRef(type: "patient", id: "pat_\($0)") }

    @Test func aPageMergesIntoHeldRecordsAndInsertsTheOthers() throws {
        let office = try makeTestStore(replica: "office")
        for (index, patient) in patients.enumerated() {
            try office.commit([.assign(patient, "phone", .string("555-01\(index)"))], author: "per_1", site: nil)
        }
        let served = try patients.map { SnapshotRecord(record: $0, state: try #require(try office.record($0))) }

        // The laptop holds the second and fifth patients (its own edits, before its first sync), with records
        // of the page's range around them that the page does not carry.
        let laptop = try makeTestStore(replica: "laptop")
        try laptop.commit([.assign(patients[1], "phone", "555-0999")], author: "per_2", site: nil)
        try laptop.commit([.assign(patients[4], "birthDate", "1950-01-01")], author: "per_2", site: nil)
        let own = try [1, 4].map { try #require(try laptop.record(patients[$0])) }

        let report = try laptop.applySnapshot([served[0], served[1], served[2], served[4], served[5]], checkpoint: "9")
        #expect(report.applied == 5)
        #expect(try laptop.checkpoint() == "9")
        for index in [0, 2, 5] { #expect(try laptop.record(patients[index]) == served[index].state) }
        #expect(try laptop.record(patients[3]) == nil, "a record the page does not carry is not written")
        for (held, index) in zip(own, [1, 4]) {
            var merged = held
            merged.merge(served[index].state)
            #expect(try laptop.record(patients[index]) == merged, "a held record is merged, its own edit kept")
        }
        #expect(try laptop.checkProjection() == [])
        #expect(try laptop.status().pendingChanges == 2, "the device's own edits stay in its outbox")

        // The same page again changes nothing.
        let again = try laptop.applySnapshot([served[0], served[1], served[2], served[4], served[5]], checkpoint: "9")
        #expect(again.applied == 0)
        #expect(again.duplicates == 5)
    }

    @Test func aRecordTwiceInOnePageIsMergedOnce() throws {
        let office = try makeTestStore(replica: "office")
        try office.commit([.assign(patients[0], "phone", "555-0100")], author: "per_1", site: nil)
        let first = try #require(try office.record(patients[0]))
        try office.commit([.assign(patients[0], "birthDate", "1960-02-02")], author: "per_1", site: nil)
        let second = try #require(try office.record(patients[0]))

        let laptop = try makeTestStore(replica: "laptop")
        let report = try laptop.applySnapshot(
            [SnapshotRecord(record: patients[0], state: first), SnapshotRecord(record: patients[0], state: second)],
            checkpoint: nil
        )
        #expect(report.applied == 2)
        #expect(try laptop.record(patients[0]) == second)
        #expect(try laptop.checkProjection() == [])
    }
}
