import Foundation
import OutpostCRDT
import OutpostClient
import Testing

/// The bulk write paths: records created straight to the tables (the import's path), and the store's
/// compact row format read back exactly.
struct BulkWriteTests {
    private func edits(of index: Int) -> (RecordRef, [Edit]) {
        let patient = RecordRef(type: "patient", id: "pat_\(index)")
        return (
            patient,
            [
                .assign(patient, "phone", .string("555-01\(index)")),
                .assign(patient, "phone", .string("555-02\(index)")),
                .assign(patient, "birthDate", "1970-01-01"),
                .add(patient, "conditions", "E11"),
                .add(patient, "conditions", "I10"),
                .remove(patient, "conditions", "E11"),
                .append(patient, "notes", "first"),
                .append(patient, "notes", "second"),
            ]
        )
    }

    @Test func creatingRecordsWritesWhatCommittingTheSameEditsWrites() throws {
        let committed = try makeTestStore()
        let created = try makeTestStore()
        let records = (1...30).map(edits(of:))
        try committed.commit(records.flatMap(\.1), author: "per_1", site: "sit_1")
        var seen: [(Int, Int)] = []
        let build: (TransactionContext, inout RecordCreator) throws -> Void = { _, creator in
            for (record, edits) in records { try creator.create(record, edits) }
        }
        let written = try created.create(
            author: "per_1",
            site: "sit_1",
            totalEdits: 240,
            progress: { seen.append(($0, $1)) },
            build
        )
        #expect(written == 240)
        #expect(seen.map(\.0) == [240])
        #expect(seen.allSatisfy { $0.1 == 240 })
        for (record, _) in records {
            #expect(try created.record(record) == committed.record(record))
            #expect(try created.history(of: record) == committed.history(of: record))
        }
        #expect(try created.pendingChanges() == committed.pendingChanges())
        #expect(try created.status().clock == committed.status().clock)
        #expect(try created.verifyIntegrity().isEmpty)
    }

    @Test func creatingARecordTheStoreHoldsWritesNothing() throws {
        let store = try makeTestStore()
        let (patient, edits) = edits(of: 1)
        try store.commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        let other = RecordRef(type: "patient", id: "pat_2")
        #expect(throws: ClientError.self) {
            try store.create(author: "per_1", site: nil, totalEdits: 9) { _, creator in
                try creator.create(other, [.assign(other, "phone", "1")])
                try creator.create(patient, edits)
            }
        }
        #expect(try store.record(other) == nil)
        #expect(try store.history(of: patient).count == 1)
        #expect(try store.pendingChanges().count == 1)
    }

    @Test func anEditOfAnotherRecordIsRefused() throws {
        let store = try makeTestStore()
        let (patient, _) = edits(of: 1)
        let other = RecordRef(type: "patient", id: "pat_2")
        let error = try #require(throws: ClientError.self) {
            try store.create(author: "per_1", site: nil, totalEdits: 1) { _, creator in
                try creator.create(patient, [.assign(other, "phone", "1")])
            }
        }
        #expect(error.code == .invalidEdit)
        #expect(try store.record(patient) == nil && store.record(other) == nil)
    }

    @Test func draftsMadeOnAnotherThreadWriteWhatCreatingWrites() async throws {
        let created = try makeTestStore()
        let drafted = try makeTestStore()
        let records = (1...30).map(edits(of:))
        try created.create(author: "per_1", site: "sit_1", totalEdits: 240) { _, creator in
            for (record, edits) in records { try creator.create(record, edits) }
        }
        try drafted.create(author: "per_1", site: "sit_1", totalEdits: 240) { _, creator in
            let drafter = creator.drafter()
            // Drafted on a thread of its own, as an import's reader does; written here, in order.
            let drafts = try Self.onAThreadOfItsOwn(drafter) { drafter throws(ClientError) in
                var drafts: [DraftedRecord] = []
                for (record, edits) in records { drafts.append(try drafter.draft(record, edits)) }
                return drafts
            }
            for draft in drafts { try creator.write(draft) }
        }
        for (record, _) in records {
            #expect(try drafted.record(record) == created.record(record))
            #expect(try drafted.history(of: record).map(\.id) == created.history(of: record).map(\.id))
        }
        #expect(try drafted.pendingChanges().map(\.id) == created.pendingChanges().map(\.id))
        #expect(try drafted.pendingChanges().count == 240)
        #expect(try drafted.verifyIntegrity().isEmpty)
    }

    @Test func aDraftWrittenTwiceOrOutOfOrderIsRefusedAndNothingIsWritten() throws {
        let store = try makeTestStore()
        let (first, firstEdits) = edits(of: 1)
        let (second, secondEdits) = edits(of: 2)
        for order in [[0, 0], [1, 0], [1]] {
            let error = try #require(throws: ClientError.self) {
                try store.create(author: "per_1", site: nil, totalEdits: 16) { _, creator in
                    var drafter = creator.drafter()
                    let drafts = [try drafter.draft(first, firstEdits), try drafter.draft(second, secondEdits)]
                    for index in order { try creator.write(drafts[index]) }
                }
            }
            #expect(error.message.contains("write drafts in the order they were made"), "\(order): \(error.message)")
            #expect(try store.record(first) == nil && store.record(second) == nil, "\(order)")
            #expect(try store.pendingChanges().isEmpty, "\(order)")
        }
    }

    /// Runs `body` with `drafter` on a thread of its own and returns what it returns.
    static func onAThreadOfItsOwn(
        _ drafter: RecordDrafter,
        _ body: @escaping @Sendable (inout RecordDrafter) throws(ClientError) -> [DraftedRecord]
    ) throws -> [DraftedRecord] {
        final class Outcome: @unchecked Sendable {
            // Written by the thread before it signals `done`, read after.
            var result: Result<[DraftedRecord], ClientError> = .success([])
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        Thread {
            var drafter = drafter
            do throws(ClientError) {
                outcome.result = .success(try body(&drafter))
            } catch {
                outcome.result = .failure(error)
            }
            outcome.done.signal()
        }.start()
        outcome.done.wait()
        return try outcome.result.get()
    }

    /// Random changes of three replicas (stale replacements, so conflicts; removals; several authors and
    /// sites), applied in random pages and reopened: every state and history reads back as an in-memory
    /// document of the same changes holds it.
    @Test(arguments: 1...6 as ClosedRange<UInt64>)
    func randomChangesReadBackExactly(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let store = try makeTestStore(replica: "laptop")
        var document = Document(schema: testSchema)
        let patients = (1...5).map { RecordRef(type: "patient", id: "pat_\($0)") }
        let tasks = (1...3).map { RecordRef(type: "task", id: "tsk_\($0)") }
        let replicas = ["site-a", "site-b", "tablet"].map { ReplicaID(unchecked: $0) }
        var counters = [0, 0, 0]
        var changes: [Change] = []
        for step in 0..<300 {
            let which = Int(generator.next() % 3)
            counters[which] += 1
            let isTask = generator.next() % 4 == 0
            let record = isTask ? tasks[Int(generator.next() % 3)] : patients[Int(generator.next() % 5)]
            let fields = isTask ? ["patient", "status"] : ["phone", "birthDate", "conditions", "notes"]
            let field = fields[Int(generator.next() % UInt64(fields.count))]
            let current = document.field(record, field)
            let value: Value =
                field == "status"
                ? .string(["open", "completed", "entered-in-error"][Int(generator.next() % 3)])
                : generator.next() % 5 == 0 ? .int(Int64(generator.next() % 1000) - 500) : .string("v\(step % 7)")
            let operation: OutpostCRDT.Operation
            var replaces: [ChangeID] = []
            switch field {
            case "conditions":
                if generator.next() % 3 == 0, let tag = current.live.first {
                    operation = .remove
                    replaces = current.tags(of: tag.value)
                    changes.append(
                        Change(
                            id: ChangeID(replica: replicas[which], counter: UInt64(counters[which])),
                            record: record,
                            field: field,
                            operation: operation,
                            value: tag.value,
                            replaces: replaces,
                            clock: Timestamp(
                                millis: 1_700_000_000_000 + generator.next() % 5000,
                                counter: UInt32(step)
                            ),
                            author: "per_\(generator.next() % 3)",
                            site: generator.next() % 2 == 0 ? nil : "sit_\(generator.next() % 2)"
                        )
                    )
                    try document.apply(changes[changes.count - 1])
                    continue
                }
                operation = .add
            case "notes": operation = .append
            default:
                operation = .assign
                // Sometimes stale: a concurrent write that leaves a conflict.
                replaces = generator.next() % 3 == 0 ? [] : current.liveIDs
            }
            let change = Change(
                id: ChangeID(replica: replicas[which], counter: UInt64(counters[which])),
                record: record,
                field: field,
                operation: operation,
                value: value,
                replaces: replaces,
                clock: Timestamp(millis: 1_700_000_000_000 + generator.next() % 5000, counter: UInt32(step)),
                author: "per_\(generator.next() % 3)",
                site: generator.next() % 2 == 0 ? nil : "sit_\(generator.next() % 2)"
            )
            try document.apply(change)
            changes.append(change)
        }
        var start = 0
        while start < changes.count {
            let end = min(changes.count, start + 1 + Int(generator.next() % 40))
            try store.applyRemote(Array(changes[start..<end]))
            start = end
        }
        let reopened = try LocalStore.open(
            at: store.path,
            configuration: .init(schema: testSchema, ownerField: ["task": "patient"], wallClock: TestClock())
        )
        for record in patients + tasks {
            #expect(try reopened.record(record) == document.records[record], "seed \(seed), \(record)")
            let expected = changes.filter { $0.record == record }.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) }
            #expect(try reopened.history(of: record) == expected, "seed \(seed), \(record)")
        }
        #expect(try Set(reopened.changes()) == Set(changes))
        #expect(try reopened.conflicts().map(\.conflict) == document.conflicts())
        #expect(try reopened.verifyIntegrity().isEmpty)
    }
}
