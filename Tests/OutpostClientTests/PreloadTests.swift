import Foundation
import OutpostCRDT
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostClient

/// A pipelined pull reads the records of page N+1 on a reader while page N is written (`LocalStore.preload`), and
/// page N+1's write takes them only where the store still holds them as read.
struct PreloadTests {
    let patients = (1...4).map { RecordRef(type: "patient", id: "pat_\($0)") }

    /// An office that made the four patients, and a school and a laptop that hold them.
    func replicas() throws -> (office: LocalStore, school: LocalStore, laptop: LocalStore) {
        let office = try makeTestStore(replica: "office")
        let school = try makeTestStore(replica: "school")
        let laptop = try makeTestStore(replica: "laptop")
        var made: [Change] = []
        for (index, patient) in patients.enumerated() {
            made += try office.commit(
                [.assign(patient, "phone", .string("555-010\(index)"))],
                author: "per_1",
                site: nil
            )
        }
        try school.applyRemote(made)
        try laptop.applyRemote(made)
        return (office, school, laptop)
    }

    /// What the store's write log says the write that committed `generation` may have changed.
    func logged(_ store: LocalStore, _ generation: Int64) -> Set<RecordRef>?? {
        store.writeLog.entries(after: generation - 1, upTo: generation)[generation].map { $0.map(Set.init) }
    }

    @Test func aRecordTheLastPageWroteIsReadAgainAndTheOthersAreTakenAsRead() throws {
        let (office, school, laptop) = try replicas()
        // Page 1 brings the office's birth date of the first patient; page 2 the school's, written concurrently:
        // a conflict the laptop must see, which it would miss reading the first patient as it was before page 1.
        let first = try office.commit(
            [.assign(patients[0], "birthDate", "1950-01-01"), .assign(patients[1], "phone", "555-0201")],
            author: "per_1",
            site: nil
        )
        let second = try school.commit(
            [.assign(patients[0], "birthDate", "1951-01-01"), .assign(patients[2], "phone", "555-0202")],
            author: "per_2",
            site: nil
        )

        // Page 2's records are read before page 1 is written, as a pipelined pull may.
        let ahead = try #require(laptop.preload(second.map(\.record)))
        _ = try laptop.applyReceived(first)
        #expect(logged(laptop, ahead.generation + 1) == .some(Set(patients.prefix(2))))
        let two = try laptop.applyReceived(second, preloaded: ahead)
        #expect(two.report.applied == 2)
        #expect(
            two.preloadedUsed == 1,
            "the third patient is taken as read; the first, which page 1 wrote, is read again"
        )
        #expect(two.report.newConflicts == 1)
        #expect(try laptop.conflicts().map(\.conflict.record) == [patients[0]])

        try office.applyRemote(second)
        for patient in patients { #expect(try laptop.record(patient) == office.record(patient)) }
        #expect(try laptop.checkProjection() == [])
    }

    @Test func recordsReadAfterTheLastPageWasWrittenAreAllTaken() throws {
        let (office, school, laptop) = try replicas()
        let first = try office.commit([.assign(patients[0], "birthDate", "1950-01-01")], author: "per_1", site: nil)
        let second = try school.commit([.assign(patients[0], "birthDate", "1951-01-01")], author: "per_2", site: nil)
        _ = try laptop.applyReceived(first)
        let ahead = try #require(laptop.preload(second.map(\.record)))
        let two = try laptop.applyReceived(second, preloaded: ahead)
        #expect(two.preloadedUsed == 1)
        #expect(two.report.newConflicts == 1)
        try office.applyRemote(second)
        #expect(try laptop.record(patients[0]) == office.record(patients[0]))
        #expect(try laptop.checkProjection() == [])
    }

    @Test func aPushAcknowledgedBetweenTheReadAndTheWriteLeavesWhatWasReadUsable() throws {
        let (office, school, laptop) = try replicas()
        let mine = try laptop.commit([.assign(patients[3], "phone", "555-0303")], author: "per_3", site: nil)
        let first = try office.commit([.assign(patients[0], "birthDate", "1950-01-01")], author: "per_1", site: nil)
        let second = try school.commit([.assign(patients[1], "birthDate", "1951-01-01")], author: "per_2", site: nil)

        let ahead = try #require(laptop.preload(second.map(\.record)))
        // The push beside the pull records the server's answer while page 1 is written.
        try laptop.recordPush(
            mine,
            response: PushResponse(accepted: 1, duplicates: 0, acknowledged: mine[0].id.counter, serverTimeMillis: 0)
        )
        _ = try laptop.applyReceived(first)
        let two = try laptop.applyReceived(second, preloaded: ahead)
        #expect(two.preloadedUsed == 1)
        #expect(try laptop.status().pendingChanges == 0)
        try office.applyRemote(second)
        #expect(try laptop.record(patients[1]) == office.record(patients[1]))
        #expect(try laptop.checkProjection() == [])
    }

    @Test func anEditBetweenTheReadAndTheWriteMakesThePageReadEverythingAgain() throws {
        let (office, school, laptop) = try replicas()
        let first = try office.commit([.assign(patients[0], "phone", "555-0200")], author: "per_1", site: nil)
        let second = try school.commit(
            [.assign(patients[2], "birthDate", "1950-01-01"), .assign(patients[3], "phone", "555-0203")],
            author: "per_2",
            site: nil
        )

        let ahead = try #require(laptop.preload(second.map(\.record)))
        // A clinician records the third patient's birth date on the laptop while the pull runs: the school's,
        // written concurrently, is a conflict to review, not a replacement. An edit says it may have changed any
        // record, so the fourth patient, which it did not touch, is read again too.
        try laptop.commit([.assign(patients[2], "birthDate", "1961-03-04")], author: "per_3", site: nil)
        _ = try laptop.applyReceived(first)
        let two = try laptop.applyReceived(second, preloaded: ahead)
        #expect(two.preloadedUsed == 0)
        #expect(two.report.newConflicts == 1)

        let third = try #require(try laptop.record(patients[2]))
        #expect(Set(third["birthDate"].live.map(\.value)) == ["1950-01-01", "1961-03-04"], "the local edit is kept")
        #expect(try laptop.conflicts().map(\.conflict.record) == [patients[2]])
        #expect(try laptop.checkProjection() == [])
    }

    @Test func whatAWriteMayTakeFollowsTheWritesSinceTheRead() {
        let record = patients[0]
        let other = patients[1]
        // Each write takes what it is handed: a new read for each case.
        func read(_ generation: Int64 = 7) -> LocalStore.PreloadedRecords {
            LocalStore.PreloadedRecords(generation: generation, records: [record: nil, other: nil])
        }
        func usable(
            _ read: LocalStore.PreloadedRecords,
            at generation: Int64,
            _ written: [Int64: [RecordRef]?]
        )
            -> Set<RecordRef>
        {
            Set(LocalStore.usable(read, generation: generation, written: written).keys)
        }
        #expect(usable(read(), at: 7, [:]) == [record, other])
        #expect(usable(read(), at: 8, [8: [record]]) == [other])
        #expect(usable(read(), at: 9, [8: [], 9: [record]]) == [other], "an acknowledgement, then a page")
        #expect(usable(read(), at: 9, [8: [other], 9: [record]]).isEmpty)
        #expect(usable(read(), at: 8, [:]).isEmpty, "a commit of another process in between")
        #expect(usable(read(), at: 9, [9: []]).isEmpty, "a commit of another process, then a known one")
        #expect(usable(read(), at: 8, [8: nil]).isEmpty, "a write that may have changed any record")
        #expect(usable(read(9), at: 8, [:]).isEmpty, "a read newer than the write")
        let taken = read()
        #expect(LocalStore.usable(taken, generation: 7, written: [:]).count == 2)
        #expect(LocalStore.usable(taken, generation: 7, written: [:]).isEmpty, "handed over once")
    }

    @Test func theLogSaysWhatEachWriteMayHaveChanged() throws {
        let (office, _, laptop) = try replicas()
        let newcomer = RecordRef(type: "patient", id: "pat_9")
        try office.commit([.assign(newcomer, "phone", "555-0109")], author: "per_1", site: nil)
        let start = try #require(laptop.preload([])).generation
        let served = try [newcomer, patients[3]].map {
            SnapshotRecord(record: $0, state: try #require(try office.record($0)))
        }
        _ = try laptop.applyReceived([], records: served)
        #expect(try laptop.record(newcomer) == office.record(newcomer))
        #expect(logged(laptop, start + 1) == .some([newcomer, patients[3]]), "a record taken whole, one merged")
        _ = try laptop.applyReceived([], removed: [patients[1].id])
        #expect(logged(laptop, start + 2) == .some(nil), "a removal may delete any record of the patient")
        #expect(try laptop.record(patients[1]) == nil)
        try laptop.acknowledge(upTo: 0)
        #expect(logged(laptop, start + 3) == .some([]))
        try laptop.commit([.assign(patients[0], "phone", "555-0100")], author: "per_1", site: nil)
        #expect(logged(laptop, start + 4) == .some(nil), "an edit says it may have changed any")
        #expect(logged(laptop, start + 5) == nil)
    }

    @Test func aWriteThroughAnotherOpeningOfTheStoreIsNotInTheLogAndNothingReadIsTaken() throws {
        let (office, school, laptop) = try replicas()
        let first = try office.commit([.assign(patients[0], "phone", "555-0200")], author: "per_1", site: nil)
        let second = try school.commit([.assign(patients[2], "birthDate", "1950-01-01")], author: "per_2", site: nil)

        let ahead = try #require(laptop.preload(second.map(\.record)))
        // Another opening of the same file (another process, as far as this one's log knows) edits the patient.
        let other = try LocalStore.open(
            at: laptop.path,
            configuration: .init(schema: testSchema, ownerField: ["task": "patient"], wallClock: TestClock())
        )
        try other.commit([.assign(patients[2], "birthDate", "1961-03-04")], author: "per_3", site: nil)
        _ = try laptop.applyReceived(first)
        let two = try laptop.applyReceived(second, preloaded: ahead)
        #expect(two.preloadedUsed == 0)
        #expect(two.report.newConflicts == 1)
        #expect(try laptop.conflicts().map(\.conflict.record) == [patients[2]])
        #expect(try laptop.checkProjection() == [])
    }

    @Test func theLogKeepsOnlyTheLatestWrites() {
        let log = WriteLog()
        for generation in Int64(1)...100 { log.record(generation, [patients[Int(generation) % 4]]) }
        #expect(log.entries(after: 95, upTo: 100).keys.sorted() == [96, 97, 98, 99, 100])
        #expect(log.entries(after: 100 - WriteLog.kept, upTo: 100).count == Int(WriteLog.kept))
        #expect(log.entries(after: 50, upTo: 100).isEmpty, "further back than the log keeps: nothing")
        #expect(log.entries(after: 100, upTo: 100).isEmpty)
    }

    @Test func everyWriteTransactionCountsOneGeneration() throws {
        let store = try makeTestStore()
        let before = try #require(store.preload([patients[0]])).generation
        try store.commit([.assign(patients[0], "phone", "555-0100")], author: "per_1", site: nil)
        try store.setClockOffset(millis: 5)
        #expect(try #require(store.preload([patients[0]])).generation == before + 2)
    }
}
