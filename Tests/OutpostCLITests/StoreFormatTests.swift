import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// A store written before the compact row format (schema v2, rows in `OutpostCRDT`'s binary layout) opens,
/// reads back every record, history and pending change, and keeps working.
struct StoreFormatTests {
    static let schema = Schema(types: [
        "patient": ["phone": .lww, "birthDate": .review, "conditions": .set, "notes": .log]
    ])

    /// Every truncation and seeded byte flips of a compact state row and change row: reading refuses or
    /// decodes, never crashes, and a truncated row is always refused as damaged.
    @Test func damagedCompactRowsAreRefusedNeverCrash() throws {
        let path = TestScratch.folder("store").appendingPathComponent("store.sqlite").path
        let configuration = LocalStore.Configuration(schema: Self.schema)
        let patient = RecordRef(type: "patient", id: "pat_1")
        do {
            let store = try LocalStore.create(at: path, replicaID: ReplicaID("laptop"), configuration: configuration)
            try store.commit(
                [
                    .assign(patient, "phone", "555-0100"), .add(patient, "conditions", "E11"),
                    .append(patient, "notes", "seen"), .assign(patient, "birthDate", "1970-01-01"),
                ],
                author: "per_1",
                site: "sit_1"
            )
            try store.commit([.assign(patient, "phone", "555-0199")], author: "per_2", site: nil)
        }
        let queue = try DatabaseQueue(path: path)
        let (state, payload) = try queue.read { db in
            (
                try #require(try Data.fetchOne(db, sql: "SELECT state FROM record")),
                try #require(try Data.fetchOne(db, sql: "SELECT payload FROM change ORDER BY seq LIMIT 1"))
            )
        }
        #expect(state.prefix(2) == Data([0, 3]) && payload.prefix(2) == Data([0, 3]))
        var damaged: [(column: String, bytes: Data, truncated: Bool)] = []
        // (Cut to its first byte, 0x00, a state row reads as format 1's empty state: not damaged as such.)
        for length in 0..<state.count where length != 1 { damaged.append(("state", state.prefix(length), true)) }
        for length in 0..<payload.count { damaged.append(("payload", payload.prefix(length), true)) }
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<200 {
            var bytes = generator.next() % 2 == 0 ? state : payload
            let column = bytes == state ? "state" : "payload"
            for _ in 0...(generator.next() % 3) {
                let index = Int(generator.next() % UInt64(bytes.count - 2)) + 2
                bytes[bytes.startIndex + index] = UInt8(truncatingIfNeeded: generator.next())
            }
            damaged.append((column, bytes, false))
        }
        try queue.close()
        for (column, bytes, truncated) in damaged {
            let queue = try DatabaseQueue(path: path)
            try queue.write { db in
                try db.execute(sql: "UPDATE record SET state = ?", arguments: [column == "state" ? bytes : state])
                try db.execute(
                    sql: "UPDATE change SET payload = ? WHERE seq = (SELECT min(seq) FROM change)",
                    arguments: [column == "payload" ? bytes : payload]
                )
            }
            try queue.close()
            let store = try LocalStore.open(at: path, configuration: configuration)
            let problems = try store.verifyIntegrity()
            if truncated { #expect(problems.count == 1, "\(column) cut to \(bytes.count) bytes") }
            do throws(ClientError) {
                if column == "state" { _ = try store.record(patient) } else { _ = try store.history(of: patient) }
                #expect(!truncated, "\(column) cut to \(bytes.count) bytes was read")
            } catch {
                #expect(error.code == .storeCorrupt, "\(column): \(error)")
            }
        }
    }

    @Test func aStoreOfThePreviousFormatOpensAndKeepsWorking() throws {
        let path = TestScratch.folder("store").appendingPathComponent("store.sqlite").path
        let configuration = LocalStore.Configuration(schema: Self.schema)
        let patients = (1...4).map { RecordRef(type: "patient", id: "pat_\($0)") }
        let remote = ReplicaID(unchecked: "site-b")
        var states: [RecordRef: RecordState] = [:]
        var histories: [RecordRef: [Change]] = [:]
        var pending: [Change] = []
        do {
            let store = try LocalStore.create(at: path, replicaID: ReplicaID("laptop"), configuration: configuration)
            for patient in patients {
                try store.commit(
                    [.assign(patient, "phone", "555-0100"), .add(patient, "conditions", "E11")],
                    author: "per_1",
                    site: "sit_1"
                )
            }
            try store.applyRemote([
                Change(
                    id: ChangeID(replica: remote, counter: 1),
                    record: patients[0],
                    field: "birthDate",
                    operation: .assign,
                    value: "1970-01-01",
                    clock: Timestamp(millis: 1_000, counter: 0),
                    author: "per_2"
                ),
                Change(
                    id: ChangeID(replica: remote, counter: 2),
                    record: patients[1],
                    field: "notes",
                    operation: .append,
                    value: "seen",
                    clock: Timestamp(millis: 1_001, counter: 0),
                    author: "per_2",
                    site: "sit_2"
                ),
            ])
            try store.acknowledge(upTo: 2)
            for patient in patients {
                states[patient] = try store.record(patient)
                histories[patient] = try store.history(of: patient)
            }
            pending = try store.pendingChanges()
        }
        #expect(pending.count == 6)

        // Rewrite it as the previous version stored it: format-1 rows, no v3 migration.
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v3-compact-rows'")
            try db.execute(sql: "DELETE FROM change")
            for patient in patients {
                var state = BinaryWriter()
                state.write(try #require(states[patient]))
                try db.execute(
                    sql: "UPDATE record SET state = ? WHERE type = ? AND id = ?",
                    arguments: [Data(state.bytes), patient.type, patient.id]
                )
                for change in try #require(histories[patient]) {
                    var row = BinaryWriter()
                    row.write(changes: [change], of: patient)
                    let isLocal = change.id.replica.rawValue == "laptop"
                    try db.execute(
                        sql: "INSERT INTO change (type, id, isLocal, maxCounter, payload) VALUES (?, ?, ?, ?, ?)",
                        arguments: [
                            patient.type, patient.id, isLocal, isLocal ? Int64(change.id.counter) : nil,
                            Data(row.bytes),
                        ]
                    )
                }
            }
        }
        try queue.close()

        let store = try LocalStore.open(at: path, configuration: configuration)
        #expect(try store.verifyIntegrity().isEmpty)
        for patient in patients {
            #expect(try store.record(patient) == states[patient])
            #expect(try store.history(of: patient) == histories[patient])
        }
        #expect(try store.pendingChanges() == pending)
        // New writes land beside the old rows (in the new format) and read back with them.
        let written = try store.commit([.assign(patients[0], "phone", "555-0199")], author: "per_1", site: nil)
        let state = try #require(try store.record(patients[0]))
        #expect(state["phone"].resolution(under: .lww).winner?.value == "555-0199")
        #expect(state["birthDate"] == states[patients[0]]?["birthDate"])
        #expect(try store.history(of: patients[0]) == (histories[patients[0]] ?? []) + written)
        #expect(try store.pendingChanges() == pending + written)
        #expect(try store.verifyIntegrity().isEmpty)
        let migrated = try DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
        }
        #expect(migrated.contains("v3-compact-rows"))
    }

    /// A new store of replica `laptop` in a new scratch folder, with its path and configuration.
    static func newStore() throws -> (path: String, configuration: LocalStore.Configuration, store: LocalStore) {
        let path = TestScratch.folder("store").appendingPathComponent("store.sqlite").path
        let configuration = LocalStore.Configuration(schema: Self.schema)
        let store = try LocalStore.create(at: path, replicaID: ReplicaID("laptop"), configuration: configuration)
        return (path, configuration, store)
    }

    /// A change of replica `site-b` by `per_3`, its clock's milliseconds its counter (as a remote site's would be).
    static func remote(
        _ counter: Int,
        _ record: RecordRef,
        _ field: String,
        _ operation: OutpostCRDT.Operation,
        _ value: Value,
        replaces: [ChangeID] = []
    ) -> Change {
        Change(
            id: ChangeID(replica: ReplicaID(unchecked: "site-b"), counter: UInt64(counter)),
            record: record,
            field: field,
            operation: operation,
            value: value,
            replaces: replaces,
            clock: Timestamp(millis: UInt64(counter), counter: 0),
            author: "per_3"
        )
    }

    /// Reopens the store at `path` and expects `record` and its history as `document` holds them, and no damage.
    static func expectReopened(
        _ record: RecordRef,
        as document: Document,
        changes: Int,
        at path: String,
        _ configuration: LocalStore.Configuration
    ) throws -> LocalStore {
        let reopened = try LocalStore.open(at: path, configuration: configuration)
        #expect(try reopened.record(record) == document.records[record])
        #expect(try reopened.history(of: record).count == changes)
        #expect(try reopened.verifyIntegrity().isEmpty)
        return reopened
    }

    /// The record row as stored: its state's bytes, the first row of its tail (nil when none), the tail's size
    /// as the row counts it, and the size of the tail's rows as they are (`tail`).
    static func rawRecord(
        _ record: RecordRef,
        at path: String
    ) throws -> (state: Data, tailStart: Int64?, tailBytes: Int, tail: Int) {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            let row = try #require(
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT state, tailStart, tailBytes,
                            (SELECT COALESCE(SUM(length(payload)), 0) FROM change c
                             WHERE c.type = r.type AND c.id = r.id AND c.seq >= r.tailStart) AS tail
                        FROM record r WHERE type = ? AND id = ?
                        """,
                    arguments: [record.type, record.id]
                )
            )
            return (row["state"], row["tailStart"], row["tailBytes"], row["tail"])
        }
    }

    /// Appending to a log writes change-log rows only (the record's tail), never the record's state, until
    /// the tail outgrows the state; then, or when the record is next loaded for another edit, the tail is
    /// folded into the state. Every read sees the state with its tail, before and after reopening, and
    /// exactly what an in-memory document of the same changes holds.
    @Test func appendsGoToTheTailAndAreFoldedIn() throws {
        let (path, configuration, store) = try Self.newStore()
        let patient = RecordRef(type: "patient", id: "pat_1")
        var document = Document(schema: Self.schema)
        try document.apply(
            try store.commit(
                [.assign(patient, "phone", "555-0100"), .append(patient, "notes", "first")],
                author: "per_1",
                site: nil
            )
        )
        let before = try Self.rawRecord(patient, at: path)
        #expect(before.tailStart == nil && before.tailBytes == 0)
        for index in 1...5 {
            try document.apply(
                try store.commit([.append(patient, "notes", .string("note \(index)"))], author: "per_1", site: "s")
            )
        }
        let tailed = try Self.rawRecord(patient, at: path)
        #expect(tailed.state == before.state, "an append rewrote the record's state")
        #expect(tailed.tailStart != nil && tailed.tailBytes > 0)
        #expect(try store.record(patient) == document.records[patient])
        #expect(try store.records(ofType: "patient").map(\.state) == [document.records[patient]])
        #expect(try store.pendingChanges().count == 7)

        // Any change the record's state can take by logged changes alone joins the tail too: an assign that
        // replaces the phone, and a remote change; the stored state stays as it was, every read folds the tail.
        try document.apply(
            try store.commit(
                [.append(patient, "notes", "before the call"), .assign(patient, "phone", "555-0101")],
                author: "per_2",
                site: nil
            )
        )
        let remote = Self.remote(
            1,
            patient,
            "phone",
            .assign,
            "555-0102",
            replaces: document.field(patient, "phone").liveIDs
        )
        try document.apply(remote)
        try store.applyRemote([remote])
        let folded = try Self.rawRecord(patient, at: path)
        #expect(folded.state == before.state && folded.tail > tailed.tail)
        // Loaded (to replace the phone, to apply the remote change), the record took the rows into the tail it
        // had without a write to its row: the row's count stays as it was.
        #expect(folded.tailStart == tailed.tailStart && folded.tailBytes == tailed.tailBytes)
        #expect(try store.record(patient) == document.records[patient])

        // A long run of appends: the tail never grows much past the state before it is folded.
        var folds = 0
        var previous = folded.state
        for index in 0..<200 {
            try document.apply(
                try store.commit(
                    [.append(patient, "notes", .string(String(repeating: "visit \(index) ", count: 8)))],
                    author: "per_1",
                    site: nil
                )
            )
            let row = try Self.rawRecord(patient, at: path)
            // The row's count folds the tail once past the state and the allowance; the rows it did not count
            // (written by transactions that loaded the record) at most double that.
            #expect(row.tailBytes <= row.state.count + 4096 + 512, "step \(index)")
            #expect(row.tail <= 2 * (row.state.count + 4096) + 512, "step \(index)")
            if row.state != previous { folds += 1 }
            previous = row.state
        }
        #expect(folds >= 2 && folds <= 20, "\(folds) folds")
        let reopened = try Self.expectReopened(patient, as: document, changes: 210, at: path, configuration)

        // Appends to a record the store does not hold create it, with its log only.
        let other = RecordRef(type: "patient", id: "pat_2")
        try document.apply(try reopened.commit([.append(other, "notes", "walk-in")], author: "per_1", site: nil))
        #expect(try reopened.record(other) == document.records[other])
        #expect(try Self.rawRecord(other, at: path).tailStart == nil)
    }

    /// Remote changes to a record that has a tail join it without a write to the record's row (edits spread over
    /// a practice would otherwise rewrite most of the record table), counted as the transaction reads the tail;
    /// once the tail outgrows the state it is folded in, whatever the row's count says. Every read matches an
    /// in-memory document of the same changes.
    @Test func remoteChangesJoinATailAndAreFoldedOnceItOutgrowsTheState() throws {
        let (path, configuration, store) = try Self.newStore()
        let patient = RecordRef(type: "patient", id: "pat_1")
        var document = Document(schema: Self.schema)
        try document.apply(
            try store.commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        )
        try document.apply(try store.commit([.append(patient, "notes", "first")], author: "per_1", site: nil))
        let tailed = try Self.rawRecord(patient, at: path)
        #expect(tailed.tailStart != nil)
        var folds = 0
        var previous = tailed
        for counter in 1...120 {
            let remote = Self.remote(
                counter,
                patient,
                "notes",
                .append,
                .string(String(repeating: "home visit \(counter) ", count: 6))
            )
            try document.apply(remote)
            try store.applyRemote([remote])
            let row = try Self.rawRecord(patient, at: path)
            if row.state != previous.state {
                folds += 1
                #expect(row.tailStart == nil && row.tailBytes == 0 && row.tail == 0, "step \(counter)")
            } else if previous.tailStart != nil {
                #expect(row.tailStart == previous.tailStart && row.tailBytes == previous.tailBytes, "step \(counter)")
            }
            #expect(row.tail <= row.state.count + 4096 + 512, "step \(counter)")
            previous = row
        }
        #expect(folds >= 2, "\(folds) folds")
        #expect(try store.record(patient) == document.records[patient])
        _ = try Self.expectReopened(patient, as: document, changes: 122, at: path, configuration)
    }

    @Test func aRecordTakenFromASnapshotTakesPulledChangesIntoItsTailWithNoWriteToItsRow() throws {
        let (path, configuration, store) = try Self.newStore()
        let patient = RecordRef(type: "patient", id: "pat_1")
        // Another record's change first, so the log's numbering has begun when the snapshot comes.
        let other = RecordRef(type: "patient", id: "pat_2")
        _ = try store.commit([.assign(other, "phone", "555-0199")], author: "per_1", site: nil)
        var document = Document(schema: Self.schema)
        try document.apply(Self.remote(1, patient, "phone", .assign, "555-0100"))
        try store.applySnapshot([SnapshotRecord(record: patient, state: document.records[patient]!)], checkpoint: "1")
        let taken = try Self.rawRecord(patient, at: path)
        #expect(taken.tailStart != nil && taken.tail == 0)
        for counter in 2...6 {
            let remote =
                counter.isMultiple(of: 2)
                ? Self.remote(counter, patient, "notes", .append, .string("visit \(counter)"))
                : Self.remote(
                    counter,
                    patient,
                    "phone",
                    .assign,
                    .string("visit \(counter)"),
                    replaces: document.records[patient]!["phone"].liveIDs
                )
            try document.apply(remote)
            try store.applyRemote([remote])
            let row = try Self.rawRecord(patient, at: path)
            // The row as the snapshot wrote it; the changes are its tail.
            #expect(row.state == taken.state && row.tailStart == taken.tailStart && row.tailBytes == 0, "\(counter)")
            #expect(row.tail > 0)
        }
        #expect(try store.record(patient) == document.records[patient])
        _ = try Self.expectReopened(patient, as: document, changes: 5, at: path, configuration)
    }

    /// A store of schema v3 (no tail columns) is upgraded in place: its rows hold every change, appends
    /// then go to the tail.
    @Test func aStoreWithoutTailsIsUpgraded() throws {
        let path = TestScratch.folder("store").appendingPathComponent("store.sqlite").path
        let configuration = LocalStore.Configuration(schema: Self.schema)
        let patient = RecordRef(type: "patient", id: "pat_1")
        var document = Document(schema: Self.schema)
        do {
            let store = try LocalStore.create(at: path, replicaID: ReplicaID("laptop"), configuration: configuration)
            try document.apply(
                try store.commit(
                    [.assign(patient, "phone", "555-0100"), .append(patient, "notes", "first")],
                    author: "per_1",
                    site: nil
                )
            )
        }
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v4-record-tail'")
            try db.execute(sql: "ALTER TABLE record DROP COLUMN tailBytes")
            try db.execute(sql: "ALTER TABLE record DROP COLUMN tailStart")
        }
        try queue.close()
        let store = try LocalStore.open(at: path, configuration: configuration)
        #expect(try store.record(patient) == document.records[patient])
        try document.apply(try store.commit([.append(patient, "notes", "second")], author: "per_1", site: nil))
        #expect(try Self.rawRecord(patient, at: path).tailStart != nil)
        #expect(try store.record(patient) == document.records[patient])
        #expect(try store.verifyIntegrity().isEmpty)
    }
}
