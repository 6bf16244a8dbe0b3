import Foundation
import GRDB
import Logging
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// The SQLite tables and their columns, in an order that satisfies foreign keys, with the PostgreSQL column
    /// each one is copied to.
    static let copiedTables: [(table: String, columns: [(sqlite: String, postgres: String)])] = [
        ("practice", [("id", "id"), ("name", "name"), ("createdAt", "created_at")]),
        (
            "token",
            [
                ("id", "id"), ("hash", "hash"), ("practice", "practice"), ("role", "role"),
                ("scopeSites", "scope_sites"), ("scopeTeams", "scope_teams"), ("label", "label"),
                ("createdAt", "created_at"), ("expiresAt", "expires_at"), ("revokedAt", "revoked_at"),
                ("person", "person"), ("successorOf", "successor_of"),
            ]
        ),
        (
            "device",
            [
                ("practice", "practice"), ("replica", "replica"), ("token", "token"), ("acknowledged", "acknowledged"),
                ("firstSeen", "first_seen"), ("lastSeen", "last_seen"), ("lastPush", "last_push"),
                ("lastPull", "last_pull"), ("pulledTo", "pulled_to"), ("outbox", "outbox"), ("client", "client"),
                ("retiredAt", "retired_at"), ("refused", "refused"),
            ]
        ),
        ("compaction", [("practice", "practice"), ("floor", "floor"), ("at", "at"), ("dropped", "dropped")]),
        (
            "change",
            [
                ("practice", "practice"), ("seq", "seq"), ("replica", "replica"), ("counter", "counter"),
                ("type", "type"), ("id", "id"), ("owner", "owner"), ("payload", "payload"),
            ]
        ),
        ("record", [("practice", "practice"), ("type", "type"), ("id", "id"), ("owner", "owner"), ("state", "state")]),
        (
            "conflict",
            [
                ("practice", "practice"), ("type", "type"), ("id", "id"), ("field", "field"),
                ("detectedAt", "detected_at"),
            ]
        ),
        ("patient_scope", [("practice", "practice"), ("patient", "patient"), ("team", "team")]),
        ("patient_site", [("practice", "practice"), ("patient", "patient"), ("site", "site")]),
        (
            "device_patient",
            [
                ("practice", "practice"), ("replica", "replica"), ("patient", "patient"), ("state", "state"),
                ("at", "at"), ("atSince", "at_since"),
            ]
        ),
        (
            "purge",
            [
                ("practice", "practice"), ("patient", "patient"), ("position", "position"), ("reason", "reason"),
                ("records", "records"), ("at", "at"),
            ]
        ),
        (
            "audit",
            [
                ("seq", "seq"), ("at", "at"), ("actor", "actor"), ("action", "action"), ("practice", "practice"),
                ("subject", "subject"), ("detail", "detail"),
            ]
        ),
    ]

    /// Copies a SQLite umbrella store into this (empty) database in one transaction: every table row for row,
    /// feed positions unchanged, so devices keep their checkpoints and sync on without bootstrapping again. Each
    /// practice's feed head becomes its highest change or purge position. Returns the rows copied per table.
    ///
    /// - Throws: ``ServerError`` `invalid_parameter` when this database already holds a practice.
    public func copy(from store: ServerStore) async throws(ServerError) -> [(table: String, rows: Int)] {
        var tables: [(table: String, rows: [Row])] = []
        for (table, columns) in Self.copiedTables {
            let list = columns.map(\.sqlite).joined(separator: ", ")
            tables.append((table, try store.read { db in try Row.fetchAll(db, sql: "SELECT \(list) FROM \(table)") }))
        }
        // The same store in a new place: the same epoch, so devices keep their checkpoints.
        let epoch = try store.read { db in try ServerStore.epoch(db: db) }
        return try await transaction { connection in
            guard try await connection.run("SELECT 1 FROM practice LIMIT 1", logger) == 0 else {
                throw ServerError.parameter(
                    "to",
                    "the PostgreSQL database holds practices already; migrate into an empty database"
                )
            }
            var counts: [(table: String, rows: Int)] = []
            for ((table, rows), (_, columns)) in zip(tables, Self.copiedTables) {
                let names = columns.map(\.postgres).joined(separator: ", ")
                let marks = (1...columns.count).map { "$\($0)" }.joined(separator: ", ")
                for row in rows {
                    var binds = PostgresBindings()
                    for index in 0..<columns.count {
                        switch (row[index] as DatabaseValue).storage {
                        case .null: binds.appendNull()
                        case .int64(let value): binds.append(value)
                        case .double(let value): binds.append(value)
                        case .string(let value): binds.append(value)
                        case .blob(let value): binds.append(ByteBuffer(bytes: value))
                        }
                    }
                    try await connection.run(
                        PostgresQuery(unsafeSQL: "INSERT INTO \(table) (\(names)) VALUES (\(marks))", binds: binds),
                        logger
                    )
                }
                counts.append((table, rows.count))
            }
            try await connection.run(
                """
                UPDATE practice p SET head = GREATEST(
                    (SELECT COALESCE(MAX(seq), 0) FROM change c WHERE c.practice = p.id),
                    (SELECT COALESCE(MAX(position), 0) FROM purge g WHERE g.practice = p.id))
                """,
                logger
            )
            try await connection.run(
                "SELECT setval(pg_get_serial_sequence('audit', 'seq'), (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit), false)",
                logger
            )
            try await connection.run("UPDATE server_meta SET value = \(epoch) WHERE key = 'epoch'", logger)
            return counts
        }
    }
}
