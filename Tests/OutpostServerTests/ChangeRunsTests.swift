import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// The SQLite backend stores a push's changes as runs, a row per run of one record's changes (``ChangeRuns``),
/// and every protocol position stays a change's: pages may end inside a row, a retried push is found a duplicate
/// change by change, compaction drops changes, not rows, and what counts changes counts changes.
struct ChangeRunsTests {
    func change(_ record: String, _ counter: UInt64, replica: String = "office") -> Change {
        Change(
            id: ChangeID(replica: ReplicaID(replica)!, counter: counter),
            record: RecordRef(type: "task", id: record),
            field: "field\(counter)",
            operation: .assign,
            value: .string("value \(counter)"),
            clock: Timestamp(millis: 1_000 + counter),
            author: "per_1"
        )
    }

    func accepted(_ change: Change, owner: String? = "pat_1") -> PushPlan.Accepted {
        PushPlan.Accepted(change: change, owner: owner)
    }

    @Test func adjacentChangesOfOneRecordWithConsecutiveCountersAndOneOwnerMakeARun() {
        let plan = [
            accepted(change("tsk_a", 1)), accepted(change("tsk_a", 2)), accepted(change("tsk_a", 3)),
            accepted(change("tsk_b", 4)),  // another record
            accepted(change("tsk_b", 6)),  // a gap in the counters
            accepted(change("tsk_b", 7), owner: "pat_2"),  // another owner
            accepted(change("tsk_b", 8), owner: "pat_2"),
            accepted(change("tsk_a", 9), owner: "pat_2"),  // the first record again, after another
        ]
        #expect(ChangeRuns.runs(of: plan) == [0..<3, 3..<4, 4..<5, 5..<7, 7..<8])
        #expect(ChangeRuns.runs(of: []).isEmpty)
        let long = (1...UInt64(2 * ChangeRuns.maxLength + 1)).map { accepted(change("tsk_a", $0)) }
        #expect(
            ChangeRuns.runs(of: long)
                == [0..<ChangeRuns.maxLength, ChangeRuns.maxLength..<(2 * ChangeRuns.maxLength), 128..<129]
        )
    }

    @Test func aRunIsTheEncodingOfItsChanges() throws {
        let changes = (1...5).map { change("tsk_a", $0) }
        var writer = BinaryWriter(capacity: 512)
        writer.write(changes: changes, of: changes[0].record)
        let run = StoredChange.encode(changes, of: changes[0].record)
        #expect(run == writer.bytes)
        #expect(StoredChange.decodeRun(run) == changes)
        #expect(StoredChange.encode([changes[0]], of: changes[0].record) == StoredChange.encode(changes[0]))
        #expect(StoredChange.decode(run) == nil, "a run of five is not one change")
        #expect(StoredChange.decodeRun(run + [0]) == nil, "bytes after the run")
        #expect(StoredChange.decodeRun(Array(run.dropLast())) == nil, "a cut run")
        #expect(ChangeRuns.position(of: 0, inRowAt: 10, count: 5) == 6)
        #expect(ChangeRuns.position(of: 4, inRowAt: 10, count: 5) == 10)
    }

    /// A store holding the tiny practice, pushed by `office`; its token and the changes in push order.
    func pushed(_ directory: TemporaryDirectory) async throws -> (ServerStore, TokenEntry, LocalReplica, [Change]) {
        let store = try ServerStore.quiet(directory.path("server"))
        let practice = PracticeEntry(id: TinyPractice.practice, name: "Tiny", createdAtMillis: 0)
        try store.write { db in try ServerStore.insertPractice(practice, now: nowMillis(), db: db) }
        let token = try store.tinyPracticeAdminToken()
        let office = try LocalReplica("office", in: directory)
        try TinyPractice.load(into: office.care)
        let changes = try office.store.pendingChanges(limit: 10_000)
        let outcome = try await store.push(
            PushRequest(replica: office.store.replicaID, changes: changes),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        #expect(outcome.response.accepted == changes.count)
        return (store, token, office, changes)
    }

    func rowsAndChanges(_ store: ServerStore) throws -> (rows: Int, changes: Int) {
        try store.read { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT COUNT(*), SUM(count) FROM change"))
            return (row[0], row[1])
        }
    }

    @Test func pagesOfEverySizeEndInsideRowsAndGiveEveryChangeOnceInPushOrder() async throws {
        let directory = try TemporaryDirectory("outpost-runs")
        let (store, token, _, changes) = try await pushed(directory)
        let stored = try rowsAndChanges(store)
        #expect(stored.changes == changes.count)
        #expect(stored.rows * 3 < changes.count, "a record's fields share a row: \(stored)")
        let head = try await store.feedHead(practice: TinyPractice.practice)
        #expect(head == Int64(changes.count), "one feed position per change")
        for limit in [1, 2, 3, 7, changes.count - 1, changes.count, changes.count + 1] {
            var since: Int64 = 0
            var received: [Change] = []
            var checkpoints: [Int64] = []
            while true {
                let page = try await store.pull(token: token, replica: nil, since: since, limit: limit)
                #expect(page.changes.count <= limit)
                received += page.changes
                #expect(page.checkpoint > since || page.changes.isEmpty)
                checkpoints.append(page.checkpoint)
                since = page.checkpoint
                if !page.hasMore { break }
            }
            #expect(received == changes, "limit \(limit)")
            #expect(checkpoints.last == head)
            if limit < changes.count {
                #expect(checkpoints.dropLast() == checkpoints.indices.dropLast().map { Int64(($0 + 1) * limit) }[...])
            }
        }
        // A device's pull leaves out its own changes; another replica's checkpoint inside a row leaves the rest of
        // the row to count as behind.
        let other = ReplicaID("tablet")!
        try await store.claimReplica(other, token: token, now: nowMillis())
        let page = try await store.pull(token: token, replica: other, since: 0, limit: 5)
        #expect(page.checkpoint == 5)
        let tablet = try #require(try store.devices().first { $0.replica == other.rawValue })
        #expect(tablet.behindChanges == changes.count - 5)
        let own = try await store.pull(token: token, replica: ReplicaID("office")!, since: 0, limit: 5)
        #expect(own.changes.isEmpty && !own.hasMore && own.checkpoint == head)
    }

    @Test func aRetriedPushIsFoundADuplicateChangeByChangeFromInsideARun() async throws {
        let directory = try TemporaryDirectory("outpost-runs")
        let (store, token, office, changes) = try await pushed(directory)
        for slice in [changes[...], changes[3..<9], changes[(changes.count - 2)...], changes[4..<5]] {
            let again = try await store.push(
                PushRequest(replica: office.store.replicaID, changes: Array(slice)),
                token: token,
                now: nowMillis(),
                maxClockSkewMillis: 60_000
            )
            #expect(again.response.duplicates == slice.count && again.response.accepted == 0)
        }
        // Far apart counters: the read per change.
        let sparse = [changes[1], changes[changes.count - 1]]
        let apart = try await store.push(
            PushRequest(replica: office.store.replicaID, changes: sparse),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        #expect(apart.response.duplicates == 2)
        var altered = changes[5]
        altered.value = .string("something else")
        await #expect(throws: ServerError.self) {
            try await store.push(
                PushRequest(replica: office.store.replicaID, changes: [altered]),
                token: token,
                now: nowMillis(),
                maxClockSkewMillis: 60_000
            )
        }
        #expect(try rowsAndChanges(store).changes == changes.count, "nothing more stored")
    }

    @Test func compactionDropsSupersededChangesFromInsideARunAndKeepsTheRest() async throws {
        let directory = try TemporaryDirectory("outpost-runs")
        let (store, token, office, changes) = try await pushed(directory)
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        // The first change of the patient's run: its row keeps the rest.
        let first = try #require(changes.first { $0.record == patient })
        #expect(first.field == "birthDate")
        try office.care.update([.assign(patient, "birthDate", "1961-07-24")])
        let edit = try office.store.pendingChanges(limit: 10_000).filter { !changes.contains($0) }
        try #require(edit.count == 1)
        #expect(edit[0].replaces == [first.id])
        _ = try await store.push(
            PushRequest(replica: office.store.replicaID, changes: edit),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        let reports = try await store.compact(practice: TinyPractice.practice, now: nowMillis(), horizonMillis: 1)
        let report = try #require(reports.first)
        #expect(report.examined == changes.count + 1)
        #expect(report.dropped >= 1)
        #expect(try rowsAndChanges(store).changes == changes.count + 1 - report.dropped)
        let kept = try store.read { db in
            try Data.fetchAll(db, sql: "SELECT payload FROM change").flatMap {
                try #require(StoredChange.decodeRun([UInt8]($0)))
            }
        }
        #expect(!kept.contains(first), "the superseded birth date is gone")
        #expect(kept.contains(edit[0]))
        #expect(Set(kept).count == kept.count)
        // What compaction kept is still found a duplicate when pushed again.
        let again = try await store.push(
            PushRequest(
                replica: office.store.replicaID,
                changes: kept.filter { $0.id.replica == office.store.replicaID }
            ),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        #expect(again.response.accepted == 0)
        // A device that pushes the dropped change again (it never had the answer) has it stored, not refused.
        let late = try await store.push(
            PushRequest(replica: office.store.replicaID, changes: [first]),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        #expect(late.response.accepted == 1)
        let laterPull = try await store.pull(token: token, replica: nil, since: report.floor, limit: 10)
        #expect(laterPull.changes == [first])
    }
}
