import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
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
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("outpost-tests-\(UUID())").appendingPathComponent("store.sqlite").path
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
        #expect(state.prefix(2) == Data([0, 2]) && payload.prefix(2) == Data([0, 2]))
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
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("outpost-tests-\(UUID())").appendingPathComponent("store.sqlite").path
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
}
