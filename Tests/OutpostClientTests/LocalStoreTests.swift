import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import Testing

struct LocalStoreTests {
    let patient = RecordRef(type: "patient", id: "pat_1")

    @Test func committedEditsSurviveReopening() throws {
        let path = temporaryStorePath()
        let store = try makeTestStore(path)
        try store.commit(
            [.assign(patient, "phone", "555-0100"), .add(patient, "conditions", "E11")],
            author: "per_1",
            site: nil
        )
        try store.commit([.assign(patient, "phone", "555-0199")], author: "per_1", site: "sit_1")

        let reopened = try LocalStore.open(at: path, configuration: .init(schema: testSchema))
        let state = try #require(try reopened.record(patient))
        #expect(state["phone"].resolution(under: .lww).winner?.value == "555-0199")
        #expect(state["phone"].live.count == 1)
        #expect(state["conditions"].elements == ["E11"])
        #expect(try reopened.history(of: patient).map(\.id.counter) == [1, 2, 3])
        #expect(try reopened.status().pendingChanges == 3)
    }

    @Test func assignmentsNameWhatTheyReplace() throws {
        let store = try makeTestStore()
        let first = try store.commit([.assign(patient, "birthDate", "1950-01-01")], author: "per_1", site: nil)
        let second = try store.commit([.assign(patient, "birthDate", "1950-01-02")], author: "per_1", site: nil)
        #expect(second[0].replaces == [first[0].id])
        #expect(try store.conflicts().isEmpty)
    }

    @Test func concurrentReviewWritesOpenAConflictThatAResolutionCloses() throws {
        let laptop = try makeTestStore(replica: "laptop")
        let school = try makeTestStore(replica: "school")
        let base = try laptop.commit([.assign(patient, "birthDate", "1950-01-01")], author: "per_1", site: nil)
        try school.applyRemote(base)
        let mine = try laptop.commit([.assign(patient, "birthDate", "1950-01-02")], author: "per_1", site: nil)
        let theirs = try school.commit([.assign(patient, "birthDate", "1951-01-01")], author: "per_2", site: nil)

        let report = try laptop.applyRemote(theirs)
        #expect(report.applied == 1)
        #expect(report.newConflicts == 1)
        let conflicts = try laptop.conflicts()
        #expect(conflicts.count == 1)
        #expect(conflicts.first?.conflict.values.count == 2)

        let again = try laptop.applyRemote(theirs)
        #expect(again == ApplyReport(applied: 0, duplicates: 1))

        let resolution = try laptop.commit([.assign(patient, "birthDate", "1950-01-02")], author: "per_3", site: nil)
        #expect(Set(resolution[0].replaces) == [mine[0].id, theirs[0].id])
        #expect(try laptop.conflicts().isEmpty)
        let schoolReport = try school.applyRemote(mine + resolution)
        #expect(schoolReport.resolvedConflicts == 1 || schoolReport.newConflicts == 0)
        #expect(try school.conflicts().isEmpty)
    }

    @Test func aChangeArrivingAfterTheOneThatReplacedItStillEntersTheHistory() throws {
        let laptop = try makeTestStore(replica: "laptop")
        let office = try makeTestStore(replica: "office")
        let first = try laptop.commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        try laptop.commit([.assign(patient, "phone", "555-0199")], author: "per_1", site: nil)
        let both = try laptop.history(of: patient)
        // The office receives the replacement first, then the value it replaced.
        let later = try office.applyRemote([both[1]])
        let earlier = try office.applyRemote(first)
        #expect(later.applied == 1)
        #expect(earlier == ApplyReport(applied: 1, duplicates: 0))
        #expect(try office.history(of: patient).map(\.id) == both.map(\.id))
        #expect(try office.record(patient) == laptop.record(patient))
        #expect(try office.applyRemote(first) == ApplyReport(applied: 0, duplicates: 1))
    }

    @Test func outboxDrainsOnlyOnAcknowledgement() throws {
        let store = try makeTestStore()
        try store.commit([.assign(patient, "phone", "1"), .assign(patient, "phone", "2")], author: "per_1", site: nil)
        try store.commit([.append(patient, "notes", "seen at home")], author: "per_1", site: nil)
        #expect(try store.pendingChanges().map(\.id.counter) == [1, 2, 3])
        try store.acknowledge(upTo: 2)
        #expect(try store.pendingChanges().map(\.id.counter) == [3])
        #expect(try store.status().pendingChanges == 1)
    }

    @Test func theOutboxIsReadInCounterOrderPageByPageWhateverHowCommitsInterleaveRecords() throws {
        let store = try makeTestStore()
        let other = RecordRef(type: "patient", id: "pat_2")
        // One commit writing two records in turn (their rows' counters interleave), then more commits.
        try store.commit(
            [
                .assign(patient, "phone", "1"), .assign(other, "phone", "2"), .assign(patient, "phone", "3"),
                .assign(other, "phone", "4"), .append(patient, "notes", "5"),
            ],
            author: "per_1",
            site: nil
        )
        for index in 6...9 {
            try store.commit([.assign(other, "phone", .string("\(index)"))], author: "per_1", site: nil)
        }
        let all = try store.pendingChanges()
        #expect(all.map(\.id.counter) == Array(1...9))
        for acked in [0, 1, 3] as [UInt64] {
            if acked > 0 { try store.acknowledge(upTo: acked) }
            for limit in 1...10 {
                let page = try store.pendingChanges(limit: limit)
                #expect(
                    page == Array(all.filter { $0.id.counter > acked }.prefix(limit)),
                    "acked \(acked), limit \(limit)"
                )
            }
        }
    }

    /// A push batch read with `wholeRecords` does not end inside a run of changes to a record the outbox creates that
    /// goes on past it: it ends before the run, unless the run begins the push; `more` says whether the outbox goes
    /// on. A run of edits to a record created before is cut anywhere.
    @Test func aPushBatchEndsBeforeARecordsRunThatGoesOnPastIt() throws {
        let store = try makeTestStore()
        let other = RecordRef(type: "patient", id: "pat_2")
        try store.commit([.assign(patient, "phone", "1"), .assign(patient, "phone", "2")], author: "per_1", site: nil)
        // The second patient's run, changes 3 to 6.
        try store.commit(
            [
                .assign(other, "phone", "3"), .assign(other, "phone", "4"), .append(other, "notes", "5"),
                .append(other, "notes", "6"),
            ],
            author: "per_1",
            site: nil
        )
        func counters(_ limit: Int, after: UInt64? = nil) throws -> ([UInt64], Bool) {
            let batch = try store.pendingBatch(after: after, limit: limit, wholeRecords: true)
            return (batch.changes.map(\.id.counter), batch.more)
        }
        // Ends before the run that would be cut: 1 and 2 only, for any limit inside the run.
        for limit in 3...5 { #expect(try counters(limit) == ([1, 2], true), "limit \(limit)") }
        // The run whole, or ending with the outbox.
        #expect(try counters(6) == ([1, 2, 3, 4, 5, 6], false))
        #expect(try counters(2) == ([1, 2], true))
        // A run that begins the batch and is longer than it is split.
        #expect(try counters(2, after: 2) == ([3, 4], true))
        #expect(try counters(4, after: 2) == ([3, 4, 5, 6], false))
        // Without `wholeRecords`, the first `limit` changes as before.
        #expect(try store.pendingBatch(limit: 4).changes.map(\.id.counter) == [1, 2, 3, 4])
        // Behind retried changes, the run does not begin the push: none of it goes.
        let behind = try store.pendingBatch(after: 2, limit: 2, wholeRecords: true, beginsPush: false)
        #expect(behind.changes.isEmpty && behind.more)

        // Edits to records the server was sent already: cut by count.
        try store.acknowledge(upTo: 6)
        try store.commit([.assign(patient, "phone", "7")], author: "per_1", site: nil)
        for index in 8...11 {
            try store.commit([.assign(other, "phone", .string("\(index)"))], author: "per_1", site: nil)
        }
        #expect(try counters(3) == ([7, 8, 9], true))
    }

    @Test func refusedEditWritesNothing() throws {
        let store = try makeTestStore()
        try store.commit([.assign(patient, "phone", "1")], author: "per_1", site: nil)
        #expect(throws: ClientError.self) {
            try store.commit(
                [.assign(patient, "phone", "2"), .assign(patient, "conditions", "E11")],
                author: "per_1",
                site: nil
            )
        }
        #expect(try store.record(patient)?["phone"].resolution(under: .lww).winner?.value == "1")
        #expect(try store.status().pendingChanges == 1)
    }

    @Test func openingAMissingStoreSaysHowToCreateOne() throws {
        let error = try #require(throws: ClientError.self) {
            try LocalStore.open(at: temporaryStorePath(), configuration: .init(schema: testSchema))
        }
        #expect(error.code == .storeNotFound)
        #expect(error.message.contains("outpost init"))
    }

    @Test func openingAFileThatIsNotAStoreIsRefused() throws {
        let path = temporaryStorePath()
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: ClientError.self) {
            try LocalStore.open(at: path, configuration: .init(schema: testSchema))
        }
        #expect(error.code == .storeCorrupt)
    }

    @Test func creatingOverAnExistingStoreIsRefused() throws {
        let path = temporaryStorePath()
        _ = try makeTestStore(path)
        let error = try #require(throws: ClientError.self) { try makeTestStore(path) }
        #expect(error.code == .storeExists)
    }

    @Test func integrityCheckOfAHealthyStoreFindsNothing() throws {
        let store = try makeTestStore()
        try store.commit([.assign(patient, "phone", "1")], author: "per_1", site: nil)
        #expect(try store.verifyIntegrity().isEmpty)
    }

    /// A new store has 16 KiB pages (docs/store.md, "Pages"); a store made with SQLite's 4 KiB pages, as every store
    /// was before, keeps them (SQLite sets a page size only on an empty file), opens, takes local and remote
    /// changes and reads them back after reopening.
    @Test func aNewStoreHasSixteenKiBPagesAndAnOlderOneKeepsItsOwn() throws {
        func pageSize(_ path: String) throws -> Int? {
            try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") }
        }
        let new = temporaryStorePath()
        try makeTestStore(new).commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        #expect(try pageSize(new) == 16_384)

        // A store as the previous version made it: the same store rewritten with 4 KiB pages.
        let old = temporaryStorePath()
        try makeTestStore(old, replica: "laptop").commit(
            [.assign(patient, "phone", "555-0100")],
            author: "per_1",
            site: nil
        )
        let theirs = try makeTestStore(replica: "school").commit(
            [.add(patient, "conditions", "E11")],
            author: "per_2",
            site: "sit_2"
        )
        do {
            let queue = try DatabaseQueue(path: old)
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
                try db.execute(sql: "PRAGMA page_size = 4096")
                try db.execute(sql: "VACUUM")
                try db.execute(sql: "PRAGMA journal_mode = WAL")
            }
        }
        #expect(try pageSize(old) == 4096)
        do {
            let store = try LocalStore.open(at: old, configuration: .init(schema: testSchema))
            try store.commit([.assign(patient, "phone", "555-0199")], author: "per_1", site: nil)
            try store.applyRemote(theirs)
        }
        let reopened = try LocalStore.open(at: old, configuration: .init(schema: testSchema))
        let state = try #require(try reopened.record(patient))
        #expect(state["phone"].resolution(under: .lww).winner?.value == "555-0199")
        #expect(state["conditions"].elements == ["E11"])
        #expect(try reopened.history(of: patient).count == 3)
        #expect(try reopened.verifyIntegrity().isEmpty)
        #expect(try pageSize(old) == 4096)
    }
}
