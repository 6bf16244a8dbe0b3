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
    @Test func aPageRecordsTheConflictsItBringsOnceEach() throws {
        // The office holds two patients whose birth dates were written concurrently (a review field: a conflict).
        let office = try makeTestStore(replica: "office")
        let school = try makeTestStore(replica: "school")
        for patient in patients.prefix(2) {
            try office.commit([.assign(patient, "birthDate", "1950-01-01")], author: "per_1", site: nil)
            let theirs = try school.commit([.assign(patient, "birthDate", "1951-01-01")], author: "per_2", site: nil)
            try office.applyRemote(theirs)
        }
        try office.commit([.assign(patients[2], "phone", "555-0102")], author: "per_1", site: nil)
        #expect(try office.conflicts().count == 2)
        let served = try patients.prefix(3).map {
            SnapshotRecord(record: $0, state: try #require(try office.record($0)))
        }

        // A new laptop takes the first and third whole; it holds the second (its own phone), merged.
        let laptop = try makeTestStore(replica: "laptop")
        try laptop.commit([.assign(patients[1], "phone", "555-0999")], author: "per_3", site: nil)
        let report = try laptop.applySnapshot(served, checkpoint: "3")
        #expect(report.newConflicts == 2)
        let conflicts = try laptop.conflicts()
        #expect(conflicts.map(\.conflict.record) == [patients[0], patients[1]])
        #expect(conflicts.allSatisfy { $0.conflict.field == "birthDate" && $0.conflict.values.count == 2 })

        // The same page again records nothing more, and a resolution on the laptop closes one.
        let again = try laptop.applySnapshot(served, checkpoint: "3")
        #expect(again.newConflicts == 0)
        #expect(try laptop.conflicts().count == 2)
        try laptop.commit([.assign(patients[0], "birthDate", "1950-01-01")], author: "per_3", site: nil)
        #expect(try laptop.conflicts().map(\.conflict.record) == [patients[1]])
        #expect(try laptop.checkProjection() == [])
    }
}
