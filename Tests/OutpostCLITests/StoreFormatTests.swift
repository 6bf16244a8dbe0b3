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
