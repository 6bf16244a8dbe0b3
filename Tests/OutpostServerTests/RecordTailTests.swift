import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// A push that only adds changes to records the practice holds appends them to the records' tails instead of
/// rewriting their rows (SQLite backend, ``TailFolder``). Every reader sees the states the pushes made: a
/// snapshot, the conflict inbox, the next push's judge; a record written whole (a new owner) and a purge take
/// the tail with them; the fold merges it into the rows and changes nothing a reader sees.
struct RecordTailTests {
    var patient: RecordRef { RecordRef(type: "patient", id: TinyPractice.patients[0]) }
    var task: RecordRef { RecordRef(type: "task", id: TinyPractice.task) }

    /// A server store holding the tiny practice as replica "site-a" pushed it, and that replica.
    func practice(_ directory: TemporaryDirectory) async throws -> (ServerStore, TokenEntry, LocalReplica) {
        // Tails merged only when the test says so, not by the background fold.
        let store = try ServerStore.quiet(directory.path("server"), foldingTails: false)
        let practice = PracticeEntry(id: TinyPractice.practice, name: "Tiny", createdAtMillis: 0)
        try store.write { db in try ServerStore.insertPractice(practice, now: nowMillis(), db: db) }
        let token = try store.tinyPracticeAdminToken()
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        try await push(a, to: store, token: token)
        return (store, token, a)
    }

    /// Pushes `replica`'s pending changes and acknowledges them on it.
    @discardableResult
    func push(_ replica: LocalReplica, to store: ServerStore, token: TokenEntry) async throws -> PushOutcome {
        let changes = try replica.store.pendingChanges()
        let outcome = try await store.push(
            PushRequest(replica: replica.store.replicaID, changes: changes),
            token: token,
            now: nowMillis(),
            maxClockSkewMillis: 60_000
        )
        try replica.store.acknowledge(upTo: outcome.response.acknowledged)
        return outcome
    }

    /// The record rows' stored states, by record.
    func rows(_ store: ServerStore) throws -> [RecordRef: [UInt8]] {
        try store.read { db in
            var rows: [RecordRef: [UInt8]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT type, id, state FROM record") {
                rows[RecordRef(type: row["type"], id: row["id"])] = Array(row["state"] as Data)
            }
            return rows
        }
    }

    /// Every record of a whole-practice snapshot walked `limit` records a page, its state decoded.
    func snapshot(_ store: ServerStore, _ token: TokenEntry, limit: Int) async throws -> [RecordRef: RecordState] {
        var states: [RecordRef: RecordState] = [:]
        var cursor: RecordRef?
        repeat {
            let slice = try await store.snapshot(token: token, replica: nil, after: cursor, limit: limit)
            for record in slice.records { states[record.record] = try record.decoded().state }
            cursor = slice.next
        } while cursor != nil
        return states
    }

    func values(_ state: RecordState?, _ field: String) -> Set<String> {
        Set((state?[field].live ?? []).compactMap { $0.value.stringValue })
    }

    @Test func editsGoToTailsThatEveryReaderFoldsAndTheFoldMergesIntoTheRows() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, a) = try await practice(directory)
        #expect(try await store.tailCount() == 0, "a first push writes whole records")
        let before = try rows(store)

        // A writes the patient's birth date and a note on the task; B, another device, writes the birth date too,
        // replacing what it saw, the imported value, as A did: a conflict.
        let imported = try #require(try await snapshot(store, token, limit: 100)[patient]?["birthDate"].live.first?.id)
        try a.care.update([.assign(patient, "birthDate", "1961-07-24"), .append(task, "notes", "Called twice")])
        try await push(a, to: store, token: token)
        let fromB = PushRequest(
            replica: try #require(ReplicaID("site-b")),
            changes: [try change("site-b/1", "patient", patient.id, "birthDate", "1961-07-25", replaces: [imported])]
        )
        let second = try await store.push(fromB, token: token, now: nowMillis(), maxClockSkewMillis: 60_000)
        #expect(second.newConflicts == 1)

        // The rows are as the first push left them; the edits are in the tails.
        #expect(try rows(store) == before, "no record row was rewritten")
        #expect(try await store.tailCount() == 3)
        // The snapshot (a page per record, so each page starts a walk of its own), the conflict inbox and the
        // push judge's context read the merged states.
        let merged = try await snapshot(store, token, limit: 1)
        #expect(values(merged[patient], "birthDate") == ["1961-07-24", "1961-07-25"])
        #expect(values(merged[task], "notes").contains("Called twice"))
        let conflicts = try store.conflicts(practice: TinyPractice.practice)
        #expect(conflicts.map(\.id) == ["\(patient.id).birthDate"])
        #expect(
            Set(conflicts.first?.conflict.values.compactMap { $0.value.stringValue } ?? []) == [
                "1961-07-24", "1961-07-25",
            ]
        )
        let context = try store.read { db in
            try ServerStore.pushContext(for: fromB, token: token, db: db)
        }
        #expect(context.tails == [patient: 2])
        #expect(values(context.context.records[patient]?.state, "birthDate") == ["1961-07-24", "1961-07-25"])

        // The fold merges every tail into its row; what readers see does not change.
        #expect(try await store.foldTails() == 3)
        #expect(try await store.tailCount() == 0)
        let folded = try rows(store)
        #expect(folded[patient] != before[patient] && folded[task] != before[task])
        #expect(try await snapshot(store, token, limit: 1) == merged)
        #expect(try store.conflicts(practice: TinyPractice.practice) == conflicts)
    }

    /// The push reads only the fields its judge reads of the records it holds (``PushJudge/fieldsRead(by:of:)``):
    /// judged from that context, a push is judged as from the whole states, refusals, owners, rows, scopes and
    /// conflicts alike, and each record's state after it holds those fields as the whole one does. The push mixes
    /// edits that go to tails, a conflict, a patient's new team and a task stored without its patient given one.
    @Test func aPushJudgedFromTheFieldsItReadsIsJudgedAsFromTheWholeStates() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, a) = try await practice(directory)
        let other = RecordRef(type: "patient", id: TinyPractice.patients[1])
        let late = RecordRef(type: "task", id: "tsk_01JWMCKG1BY8F26N8A4JNVV0VB")
        let secondTeam = try TinyPractice.addSecondTeam(in: a.care)
        try await push(a, to: store, token: token)
        let replica = try #require(ReplicaID("site-b"))
        let earlier = PushRequest(
            replica: replica,
            changes: [
                try change("site-b/1", late.type, late.id, "title", "Call back"),
                try change("site-b/2", late.type, late.id, "kind", "outreach"),
                // A site the other patient is seen at: its scope row, rewritten below for its new team, keeps it.
                try change("site-b/3", other.type, other.id, "sites", .string(TinyPractice.site), operation: .add),
            ]
        )
        let first = try await store.push(earlier, token: token, now: nowMillis(), maxClockSkewMillis: 60_000)
        #expect(first.response.accepted == 3)
        let request = PushRequest(
            replica: replica,
            changes: [
                try change("site-b/4", task.type, task.id, "priority", "urgent"),
                try change("site-b/5", task.type, task.id, "notes", "Called twice", operation: .append),
                try change("site-b/6", patient.type, patient.id, "phone", "(406) 555-0199"),
                // Beside the team it holds, replacing nothing: a conflict.
                try change("site-b/7", other.type, other.id, "primaryTeam", .string(secondTeam)),
                try change("site-b/8", late.type, late.id, "notes", "First visit", operation: .append),
                try change("site-b/9", late.type, late.id, "patient", .string(other.id)),
            ]
        )
        struct Missing: Error {}
        let (partial, whole) = try store.read { db in
            let partial = try ServerStore.pushContext(for: request, token: token, db: db).context
            var whole = partial
            for (ref, record) in partial.records {
                guard
                    let bytes = try Data.fetchOne(
                        db,
                        sql: "SELECT state FROM record WHERE practice = ? AND type = ? AND id = ?",
                        arguments: [token.practice, ref.type, ref.id]
                    )
                else { throw Missing() }
                whole.records[ref] = (
                    record.owner, try ServerStore.mergedState(Array(bytes), practice: token.practice, ref: ref, db: db)
                )
            }
            return (partial, whole)
        }
        let read = PushJudge.fieldsRead(by: request, of: Set(partial.records.keys))
        #expect(partial.records.count == 4 && read.count == 4, "the two tasks and the two patients")
        #expect(
            partial.records.contains {
                $0.value.state.fieldNames.count < whole.records[$0.key]?.state.fieldNames.count ?? 0
            }
        )
        let judge = PushJudge(token: token, now: nowMillis(), maxClockSkewMillis: 60_000)
        let fromPart = try judge.judge(request, context: partial, perChange: true)
        let fromWhole = try judge.judge(request, context: whole, perChange: true)
        // The push does what it should: a refusal-free plan with a conflict, a new scope and an owner moved.
        #expect(fromWhole.refused.isEmpty && fromWhole.accepted.count == request.changes.count)
        #expect(fromWhole.conflicts.contains { $0.isConflict && $0.record == other && $0.field == "primaryTeam" })
        #expect(fromWhole.records.contains { $0.ref == late && $0.row == .stateAndOwner && $0.owner == other.id })
        #expect(fromWhole.patientScopes.contains { $0.patient == other.id && $0.sites == [TinyPractice.site] })
        #expect(fromPart.accepted.map(\.change) == fromWhole.accepted.map(\.change))
        #expect(fromPart.accepted.map(\.owner) == fromWhole.accepted.map(\.owner))
        #expect(fromPart.refused.map(\.id) == fromWhole.refused.map(\.id))
        #expect(fromPart.duplicates == fromWhole.duplicates && fromPart.maxCounter == fromWhole.maxCounter)
        #expect("\(fromPart.conflicts)" == "\(fromWhole.conflicts)")
        #expect("\(fromPart.patientScopes)" == "\(fromWhole.patientScopes)")
        #expect(fromPart.records.map(\.ref) == fromWhole.records.map(\.ref))
        for (part, full) in zip(fromPart.records, fromWhole.records) {
            #expect(part.owner == full.owner && part.row == full.row && part.learntOwner == full.learntOwner)
            let fields = read[part.ref] ?? []
            #expect(
                part.state == RecordState(fields: full.state.fields.filter { fields.contains($0.key) }),
                "\(part.ref)"
            )
        }
        // Stored, the task given its patient is written whole: every field, not only those judged.
        let outcome = try await store.push(request, token: token, now: nowMillis(), maxClockSkewMillis: 60_000)
        #expect(outcome.response.refused.isEmpty && outcome.newConflicts == 1)
        var reader = BinaryReader(try #require(try rows(store)[late]))
        let stored = try reader.readRecordState()
        #expect(stored == (try #require(fromWhole.records.first { $0.ref == late }?.state)))
        #expect(values(stored, "title") == ["Call back"] && values(stored, "notes") == ["First visit"])
    }

    /// A scoped device's snapshot walks its patients by id and their records by owner, and finds each one's tail
    /// by its key: the states it is sent are the merged ones, page after page.
    @Test func aScopedSnapshotSendsItsRecordsWithTheirTailsMerged() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, a) = try await practice(directory)
        try a.care.update([.assign(patient, "birthDate", "1961-07-24"), .append(task, "notes", "Called twice")])
        try await push(a, to: store, token: token)
        #expect(try await store.tailCount() == 2)
        let scoped = try store.issueToken(
            practice: TinyPractice.practice,
            role: .clinician,
            scope: Scope(teams: [TinyPractice.team]),
            label: "nurse",
            expiresAtMillis: nil,
            now: nowMillis()
        ).entry
        for limit in [1, 100] {
            let states = try await snapshot(store, scoped, limit: limit)
            #expect(values(states[patient], "birthDate") == ["1961-07-24"])
            #expect(values(states[task], "notes").contains("Called twice"))
            #expect(states.keys.contains(RecordRef(type: "patient", id: TinyPractice.patients[1])))
        }
    }

    /// A record edited push after push while the server never rests would have every push fold a longer tail:
    /// from ``TailFolder/longest`` rows, a push writes the record's merged state whole and its tail goes.
    @Test func aRecordWhoseTailIsLongIsWrittenWholeByTheNextPush() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, a) = try await practice(directory)
        for visit in 1...TailFolder.longest {
            try a.care.update([.append(task, "notes", .string("Visit \(visit)"))])
            try await push(a, to: store, token: token)
        }
        #expect(try await store.tailCount() == TailFolder.longest)
        let before = try rows(store)[task]
        try a.care.update([.append(task, "notes", .string("Visit \(TailFolder.longest + 1)"))])
        try await push(a, to: store, token: token)
        #expect(try await store.tailCount() == 0)
        var reader = BinaryReader(try #require(try rows(store)[task]))
        let written = try reader.readRecordState()
        #expect(try rows(store)[task] != before)
        let notes = values(written, "notes")
        #expect((1...TailFolder.longest + 1).allSatisfy { notes.contains("Visit \($0)") })
        // Written whole: the fields no push of these touched are there as the first push stored them (the push
        // judged the task's notes and patient only).
        var first = BinaryReader(try #require(before))
        let stored = try first.readRecordState()
        #expect(stored.fieldNames.count > 2)
        #expect(Set(written.fieldNames) == Set(stored.fieldNames).union(["notes"]))
        for name in stored.fieldNames where name != "notes" { #expect(written[name] == stored[name], "\(name)") }
        #expect(try await snapshot(store, token, limit: 100)[task] == written)
    }

    /// Through the judge: a task whose changes came before its patient's (a device's push cut between them) is
    /// stored without an owner and takes edits in its tail; the push that gives it its patient writes its row whole,
    /// with the tail's edits and the push's, under that owner, and deletes the tail.
    @Test func aPushThatGivesATailedRecordItsOwnerWritesItWhole() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, _) = try await practice(directory)
        let late = RecordRef(type: "task", id: "tsk_01JWMCKG1BY8F26N8A4JNVV0VB")
        let replica = try #require(ReplicaID("site-b"))
        func push(_ changes: [Change]) async throws {
            let request = PushRequest(replica: replica, changes: changes)
            let outcome = try await store.push(request, token: token, now: nowMillis(), maxClockSkewMillis: 60_000)
            #expect(outcome.response.refused.isEmpty, "\(outcome.response.refused)")
        }
        try await push([try change("site-b/1", late.type, late.id, "title", "Call back")])
        try await push([try change("site-b/2", late.type, late.id, "notes", "First visit", operation: .append)])
        #expect(try await store.tailCount() == 1)
        try await push([try change("site-b/3", late.type, late.id, "patient", .string(TinyPractice.patients[1]))])
        #expect(try await store.tailCount() == 0)
        let (owner, bytes) = try store.read { db in
            let row = try #require(
                try Row.fetchOne(
                    db,
                    sql: "SELECT owner, state FROM record WHERE type = 'task' AND id = ?",
                    arguments: [late.id]
                )
            )
            return (row["owner"] as String?, Array(row["state"] as Data))
        }
        #expect(owner == TinyPractice.patients[1])
        var reader = BinaryReader(bytes)
        let state = try reader.readRecordState()
        #expect(values(state, "notes") == ["First visit"])
        #expect(values(state, "title") == ["Call back"])
    }

    /// A store opened with a tail merges it in the background (here: once no push came for a second), and so does
    /// a store whose pushes leave one.
    @Test func theBackgroundFoldMergesTheTailAStoreOpensWithAndOneAPushLeaves() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, a) = try await practice(directory)
        try a.care.update([.append(task, "notes", "First visit")])
        try await push(a, to: store, token: token)
        #expect(try await store.tailCount() == 1)

        let folding = try ServerStore.quiet(directory.path("server"), create: false)
        /// Waits for the tail to empty, checking every 20 ms, at most 60 s (a guard, not a timing).
        func merged() async throws -> Bool {
            for _ in 0..<3_000 {
                if try await folding.tailCount() == 0 { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return false
        }
        #expect(try await merged(), "the tail the store opened with is merged")
        try a.care.update([.append(task, "notes", "Second visit")])
        try await push(a, to: folding, token: token)
        #expect(try await merged(), "the tail the push left is merged")
        let snapshot = try await snapshot(folding, token, limit: 100)
        #expect(values(snapshot[task], "notes").isSuperset(of: ["First visit", "Second visit"]))
    }

    /// A backup holds no tails: they are merged into its records (it may be restored into PostgreSQL, which keeps
    /// none); the store backed up keeps its own.
    @Test func aBackupHoldsTheRecordsWithTheirTailsMerged() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, a) = try await practice(directory)
        try a.care.update([.append(task, "notes", "First visit")])
        try await push(a, to: store, token: token)
        let path = directory.path("backup.sqlite")
        _ = try await store.backup(to: path, now: nowMillis())
        #expect(try await store.tailCount() == 1)
        let copy = try DatabaseQueue(path: path)
        let (tail, state) = try await copy.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record_tail"),
                try Data.fetchOne(
                    db,
                    sql: "SELECT state FROM record WHERE type = 'task' AND id = ?",
                    arguments: [task.id]
                )
            )
        }
        #expect(tail == 0)
        var reader = BinaryReader(Array(try #require(state)))
        #expect(values(try reader.readRecordState(), "notes").contains("First visit"))
    }

    @Test func aRecordWrittenWholeOrPurgedLosesItsTail() async throws {
        let directory = try TemporaryDirectory("outpost-tails")
        let (store, token, a) = try await practice(directory)
        try a.care.update([.append(task, "notes", "First visit"), .assign(patient, "birthDate", "1961-07-24")])
        try await push(a, to: store, token: token)
        #expect(try await store.tailCount() == 2)

        // A push that gives the task a new owner writes its row whole (read whole again, row and tail, with the
        // plan's accepted changes merged in: none in this plan made by hand) and deletes its tail.
        let request = PushRequest(
            replica: a.store.replicaID,
            changes: [try change("site-a/9999", "task", task.id, "title", "Renamed")]
        )
        try store.write { db in
            let (context, tails, partly) = try ServerStore.pushContext(for: request, token: token, db: db)
            #expect(tails == [task: 1])
            var plan = PushPlan()
            let state = try #require(context.records[task]?.state)
            plan.records = [
                PushPlan.Record(
                    ref: task,
                    owner: TinyPractice.patients[1],
                    state: state,
                    learntOwner: false,
                    row: .stateAndOwner
                )
            ]
            _ = try ServerStore.write(
                plan,
                practice: TinyPractice.practice,
                tails: tails,
                partly: partly,
                now: nowMillis(),
                db: db
            )
        }
        #expect(try await store.tailCount() == 1)
        var reader = BinaryReader(try #require(try rows(store)[task]))
        #expect(values(try reader.readRecordState(), "notes").contains("First visit"))

        // A purge of the first patient takes its tail with it.
        _ = try store.purge(practice: TinyPractice.practice, patient: patient.id, reason: "test", now: nowMillis())
        #expect(try await store.tailCount() == 0)
    }
}
