import Foundation
import GRDB
import OutpostCRDT
import OutpostModel
import OutpostProtocol
import OutpostSQLite
import OutpostTestSupport
import Testing

@testable import OutpostClient

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

    /// A bootstrap prepares each page's records before its write transaction (``LocalStore/prepare(_:)``): the
    /// store it writes is the store an unprepared page writes, for new records, held ones, a record twice in a
    /// page and conflicts, in plain and encrypted stores.
    @Test(arguments: [false, true])
    func aPreparedPageWritesWhatAnUnpreparedOneWrites(encrypted: Bool) throws {
        let store = { (replica: String) in try careStore(replica, encrypted: encrypted) }
        let office = try store("office")
        let school = try store("school")
        var generator = SeededGenerator(seed: 11)
        let patients = (0..<4).map {
            RecordType.patient.makeID(millis: 1_700_000_000_000 + UInt64($0), using: &generator)
        }
        let tasks = (0..<4).map { RecordType.task.makeID(millis: 1_700_000_000_100 + UInt64($0), using: &generator) }
        for (index, patient) in patients.enumerated() {
            let ref = RecordRef(type: "patient", id: patient)
            try office.commit(
                [
                    .assign(ref, "givenName", .string("P\(index)")), .assign(ref, "subgroup", "healthy"),
                    .add(ref, "careGaps", "flu-shot"),
                ],
                author: "per_1",
                site: nil
            )
            let task = RecordRef(type: "task", id: tasks[index])
            try office.commit(
                [
                    .assign(task, "patient", .string(patient)), .assign(task, "title", "Flu shot"),
                    .assign(task, "status", "open"),
                ],
                author: "per_1",
                site: nil
            )
        }
        // Concurrent birth dates on the first patient (a review field): a conflict the page brings.
        let first = RecordRef(type: "patient", id: patients[0])
        try office.commit([.assign(first, "birthDate", "1950-01-01")], author: "per_1", site: nil)
        try office.applyRemote(
            try school.commit([.assign(first, "birthDate", "1951-01-01")], author: "per_2", site: nil)
        )
        var served: [SnapshotRecord] = []
        for id in patients + tasks {
            let ref = RecordRef(type: String(RecordType(idPrefixOf: id)?.rawValue ?? ""), id: id)
            served.append(SnapshotRecord(record: ref, state: try #require(try office.record(ref))))
        }
        // The second patient twice in the page, and held by both laptops before it (their own phone).
        served.append(served[1])
        let held = RecordRef(type: "patient", id: patients[2])
        // The same replica id: their own edits are the same changes, so the two stores must match exactly.
        let laptops = try [store("laptop"), store("laptop")]
        for laptop in laptops { try laptop.commit([.assign(held, "phone", "555-0100")], author: "per_3", site: nil) }

        let plain = try laptops[0].applySnapshot(served, checkpoint: "5")
        let prepared = try laptops[1].applySnapshot(laptops[1].prepare(served), checkpoint: "5")
        #expect(prepared.applied == plain.applied)
        #expect(prepared.newConflicts == plain.newConflicts)
        #expect(plain.newConflicts == 1)
        for record in served.map(\.record) + [held] {
            #expect(try laptops[1].record(record) == laptops[0].record(record), "\(record)")
        }
        for laptop in laptops {
            #expect(try laptop.checkProjection() == [])
            #expect(try laptop.conflicts().map(\.conflict.record) == [first])
            #expect(try laptop.checkpoint() == "5")
        }
        // Each task's owner was written with it: the first patient leaving the scope takes its task along.
        let firstTask = RecordRef(type: "task", id: tasks[0])
        for laptop in laptops {
            #expect(try laptop.record(firstTask) != nil)
            try laptop.applyPage(changes: [], records: [], removed: [patients[0]], checkpoint: "6")
            #expect(try laptop.record(firstTask) == nil)
            #expect(try laptop.record(first) == nil)
            #expect(try laptop.record(RecordRef(type: "task", id: tasks[1])) != nil)
            #expect(try laptop.conflicts().isEmpty)
            #expect(try laptop.checkProjection() == [])
        }
    }

    /// A snapshot page in key order, each record once (as the server sends them), writes each record new to the
    /// store from its prepared form at once (``StoreTransaction/writeNew(_:_:_:)``) and merges the held ones: the
    /// store it writes is the one the general path writes from the same page unprepared, row for row (records with
    /// their owners and tails, projected rows, conflicts), and the write log names the same records; in an
    /// encrypted store (sealed rows differ from store to store), the same records, projection and conflicts.
    @Test(arguments: [false, true])
    func aPageInKeyOrderWritesItsNewRecordsAtOnceAsTheGeneralPathWould(encrypted: Bool) throws {
        let store = { (replica: String) in try careStore(replica, encrypted: encrypted) }
        let office = try store("office")
        let school = try store("school")
        var generator = SeededGenerator(seed: 12)
        var refs: [RecordRef] = []
        for index in 0..<6 {
            let patient = RecordRef(
                type: "patient",
                id: RecordType.patient.makeID(millis: 1_700_000_000_000 + UInt64(index), using: &generator)
            )
            let task = RecordRef(
                type: "task",
                id: RecordType.task.makeID(millis: 1_700_000_000_100 + UInt64(index), using: &generator)
            )
            try office.commit(
                [
                    .assign(patient, "givenName", .string("P\(index)")), .assign(patient, "subgroup", "healthy"),
                    .add(patient, "careGaps", "flu-shot"), .assign(task, "patient", .string(patient.id)),
                    .assign(task, "title", "Flu shot"), .assign(task, "status", "open"),
                ],
                author: "per_1",
                site: nil
            )
            refs += [patient, task]
        }
        // A conflict the page brings, and a record both laptops hold already (their own phone).
        try office.commit([.assign(refs[0], "birthDate", "1950-01-01")], author: "per_1", site: nil)
        try office.applyRemote(
            try school.commit([.assign(refs[0], "birthDate", "1951-01-01")], author: "per_2", site: nil)
        )
        let served = try refs.sorted().map { SnapshotRecord(record: $0, state: try #require(try office.record($0))) }
        #expect(LocalStore.orderedRanges(served) != nil)
        let laptops = try [store("laptop"), store("laptop")]
        for laptop in laptops { try laptop.commit([.assign(refs[4], "phone", "555-0100")], author: "per_3", site: nil) }

        func apply(_ laptop: LocalStore, prepared: Bool) throws -> LocalStore.AppliedPage {
            try laptop.applyReceived(
                [],
                records: served,
                forms: prepared ? laptop.prepare(served).forms : nil,
                checkpoint: "5"
            )
        }
        let general = try apply(laptops[0], prepared: false)
        let generation = try laptops[1].writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT generation FROM replica")
        }
        let direct = try apply(laptops[1], prepared: true)
        #expect(direct.report == general.report)
        #expect(general.report.applied == served.count && general.report.newConflicts == 1)
        // Every record but the one the laptops held went the new way; none did unprepared.
        #expect(direct.writtenAtOnce == served.count - 1)
        #expect(general.writtenAtOnce == 0)
        for record in refs {
            #expect(try laptops[1].record(record) == laptops[0].record(record), "\(record)")
        }
        #expect(try laptops[1].conflicts().map(\.conflict) == laptops[0].conflicts().map(\.conflict))
        #expect(try laptops[1].checkpoint() == "5")
        func rows(_ laptop: LocalStore, _ sql: String) throws -> [[DatabaseValue]] {
            try laptop.writer.read { db in try Row.fetchAll(db, sql: sql).map { Array($0.databaseValues) } }
        }
        // Row for row in a plain store (an encrypted one seals each with a nonce of its own).
        for sql in encrypted
            ? []
            : [
                "SELECT type, id, owner, state, tailStart, tailBytes FROM record ORDER BY type, id",
                "SELECT * FROM task_view ORDER BY id", "SELECT * FROM patient_view ORDER BY id",
                "SELECT * FROM patient_gap ORDER BY patient, gap",
                "SELECT type, id, field FROM conflict ORDER BY type, id",
            ]
        {
            #expect(try rows(laptops[1], sql) == rows(laptops[0], sql), "\(sql)")
        }
        #expect(try laptops[1].checkProjection() == [])
        // The write log names every record of the page, new or merged, for the reads ahead of later pages.
        let before = try #require(generation)
        let logged = laptops[1].writeLog.entries(after: before, upTo: before + 1)
        #expect(logged.keys.sorted() == [before + 1])
        let written = try #require(logged[before + 1] ?? nil)
        #expect(written.count == refs.count && Set(written) == Set(refs))
    }

    /// A prepared page's clocks are received as counted when prepared (``PreparedRecord/clocks``), all at once, when
    /// they are behind the device's wall clock, and one by one otherwise: either way the device's clock ends where
    /// receiving each write's clock would leave it, whether its wall clock is ahead of the page, partly behind it, or
    /// behind the device's own clock.
    @Test(
        arguments: [
            (wall: 1_700_000_100_000, ownLatest: nil),  // the page is behind the wall clock: counted at once
            // The page's last two records reach the wall clock: the first four are counted, the last two received one
            // write at a time.
            (wall: 1_700_000_000_500, ownLatest: nil),
            (wall: 1_700_000_100_000, ownLatest: 1_700_000_200_000),  // the device's clock is ahead of its wall clock
        ] as [(wall: UInt64, ownLatest: UInt64?)]
    )
    func aPreparedPagesClocksAreReceivedAsEachWriteWouldBe(wall: UInt64, ownLatest: UInt64?) throws {
        let officeClock = TestClock()
        let office = try LocalStore.create(
            at: temporaryStorePath(),
            replicaID: ReplicaID("office"),
            configuration: .init(schema: testSchema, ownerField: ["task": "patient"], wallClock: officeClock)
        )
        for (index, patient) in patients.enumerated() {
            officeClock.millis += 100
            try office.commit(
                [.assign(patient, "phone", .string("555-01\(index)")), .add(patient, "conditions", "E11.9")],
                author: "per_1",
                site: nil
            )
            try office.commit([.append(patient, "notes", .string("visit \(index)"))], author: "per_1", site: nil)
        }
        let page = try patients.map { SnapshotRecord(record: $0, state: try #require(try office.record($0))) }
        #expect(page.reduce(0) { $0 + $1.state.liveClockSummary.count } == 3 * patients.count)
        #expect(page.map(\.state.liveClockSummary.latestMillis).max() == officeClock.millis)

        func laptop() throws -> LocalStore {
            let clock = TestClock()
            let store = try LocalStore.create(
                at: temporaryStorePath(),
                replicaID: ReplicaID("laptop"),
                configuration: .init(schema: testSchema, ownerField: ["task": "patient"], wallClock: clock)
            )
            if let ownLatest {
                // An edit of the laptop's own stamped at a wall clock that has since gone back.
                clock.millis = ownLatest
                try store.commit(
                    [.assign(RecordRef(type: "task", id: "tsk_1"), "status", "ready")],
                    author: "per_2",
                    site: nil
                )
            }
            clock.millis = wall
            return store
        }
        let prepared = try laptop()
        let unprepared = try laptop()
        let snapshot = prepared.prepare(page)
        #expect(snapshot.preparedCount == page.count)
        // Each form carries its record's clocks counted; so many of them are behind the wall clock.
        #expect(snapshot.forms.map { $0?.clocks?.count } == page.map { $0.state.liveClockSummary.count })
        let counted = snapshot.forms.filter { ($0?.clocks?.latestMillis).map { $0 < wall } ?? false }.count
        #expect(counted == (wall == 1_700_000_000_500 ? 4 : page.count))
        #expect(try prepared.applySnapshot(snapshot, checkpoint: "1").applied == page.count)
        #expect(try unprepared.applySnapshot(page, checkpoint: "1").applied == page.count)

        // What receiving each write's clock gives, worked out apart.
        var expected = HybridLogicalClock(latest: ownLatest.map { Timestamp(millis: $0, counter: 0) } ?? .zero)
        for record in page {
            for field in record.state.sortedFields {
                for write in field.state.live { _ = try? expected.receive(write.clock, wallMillis: wall) }
            }
        }
        #expect(try unprepared.status().clock == expected.latest)
        #expect(try prepared.status().clock == expected.latest)
    }

    /// A page in key order gives each type's run as one range of ids, first to last; a page out of order, or naming
    /// a record twice (byte for byte, whatever Swift's own equality says), gives none and takes the general path.
    @Test func aPageInKeyOrderGivesEachTypesRangeOfIds() {
        func page(_ refs: [(String, String)]) -> [SnapshotRecord] {
            refs.map { SnapshotRecord(record: RecordRef(type: $0.0, id: $0.1), state: RecordState()) }
        }
        func ranges(_ refs: [(String, String)]) -> [[String]]? {
            LocalStore.orderedRanges(page(refs))?.map { [$0.type, $0.low, $0.high] }
        }
        #expect(ranges([]) == [])
        #expect(ranges([("patient", "pat_1")]) == [["patient", "pat_1", "pat_1"]])
        #expect(
            ranges([
                ("patient", "pat_1"), ("patient", "pat_2"), ("patient", "pat_9"), ("task", "tsk_0"), ("task", "tsk_5"),
            ])
                == [["patient", "pat_1", "pat_9"], ["task", "tsk_0", "tsk_5"]]
        )
        #expect(ranges([("patient", "pat_2"), ("patient", "pat_1")]) == nil)
        #expect(ranges([("task", "tsk_1"), ("patient", "pat_2")]) == nil)
        #expect(ranges([("patient", "pat_1"), ("patient", "pat_1")]) == nil)
        // "é" precomposed sorts after "e\u{301}" by bytes; Swift calls the two equal.
        #expect(ranges([("patient", "e\u{301}"), ("patient", "\u{e9}")]) == [["patient", "e\u{301}", "\u{e9}"]])
        #expect(ranges([("patient", "\u{e9}"), ("patient", "e\u{301}")]) == nil)
    }

    /// ``SQLiteText/precedes(_:_:)`` orders text as SQLite does, by UTF-8 bytes, where Swift's own order (by
    /// canonical equivalence) differs: decomposed and precomposed accents, characters past the BMP, prefixes.
    @Test func textIsOrderedAsSQLiteOrdersIt() throws {
        let alphabet = ["a", "z", "0", "_", "\u{E9}", "e\u{301}", "\u{1F600}", "\u{7F}", "\u{80}", ""]
        var generator = SeededGenerator(seed: 5)
        let texts = (0..<200).map { _ in
            (0..<Int(generator.next() % 4)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
                .joined()
        }
        // The cases that tell byte order from Swift's, then random pairs.
        let fixed = [
            ("e\u{301}", "\u{E9}"), ("\u{E9}", "e\u{301}"), ("", "a"), ("a", ""), ("ab", "abc"), ("abc", "ab"),
            ("\u{7F}", "\u{80}"), ("\u{80}", "\u{7F}"), ("\u{1F600}", "\u{FFFF}"), ("same", "same"),
        ]
        let queue = try DatabaseQueue()
        try queue.read { db in
            for (text, other) in fixed + Array(zip(texts, texts.shuffled(using: &generator))) {
                let sqlite = try Bool.fetchOne(db, sql: "SELECT ? < ?", arguments: [text, other])
                #expect(SQLiteText.precedes(text, other) == sqlite, "\(Array(text.utf8)) \(Array(other.utf8))")
            }
        }
    }

    /// A store that holds no record drops its secondary indexes for a bootstrap and saves them; a bootstrap
    /// killed before it builds them again leaves them saved, and opening the store builds them.
    @Test func aBootstrapCutShortGetsItsIndexesBackWhenTheStoreIsOpened() throws {
        let path = temporaryStorePath()
        let configuration = LocalStore.Configuration(
            schema: testSchema,
            ownerField: ["task": "patient"],
            wallClock: TestClock()
        )
        let laptop = try LocalStore.create(at: path, replicaID: ReplicaID("laptop"), configuration: configuration)
        #expect(try laptop.setting("bootstrap.deferredIndexes") == nil)
        #expect(try laptop.deferIndexes())
        let saved = try #require(try laptop.setting("bootstrap.deferredIndexes"))
        #expect(saved.contains("CREATE INDEX task_view_team"))
        #expect(try !laptop.deferIndexes(), "dropped once")

        let office = try makeTestStore(replica: "office")
        try office.commit([.assign(patients[0], "phone", "555-0100")], author: "per_1", site: nil)
        let served = SnapshotRecord(record: patients[0], state: try #require(try office.record(patients[0])))
        try laptop.applySnapshot([served], checkpoint: nil)
        // Killed here: the next open builds the indexes before anything else.
        let reopened = try LocalStore.open(at: path, configuration: configuration)
        #expect(try reopened.setting("bootstrap.deferredIndexes") == nil)
        #expect(try reopened.checkProjection() == [])
        #expect(try reopened.record(patients[0]) == served.state)
        #expect(try !reopened.deferIndexes(), "a store that holds records keeps its indexes")
        try reopened.restoreIndexes()
    }
}
