import Foundation
import GRDB
import Logging
import NIOCore
import OutpostCRDT
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
                ("retiredAt", "retired_at"), ("refused", "refused"), ("pulledFrom", "pulled_from"),
                ("heldTo", "held_to"),
            ]
        ),
        ("compaction", [("practice", "practice"), ("floor", "floor"), ("at", "at"), ("dropped", "dropped")]),
        (
            "change",
            [
                ("practice", "practice"), ("seq", "seq"), ("replica", "replica"), ("counter", "counter"),
                ("type", "type"), ("id", "id"), ("owner", "owner"), ("payload", "payload"), ("creates", "creates"),
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
        ("erased", [("practice", "practice"), ("type", "type"), ("id", "id"), ("patient", "patient")]),
        (
            "audit",
            [
                ("seq", "seq"), ("at", "at"), ("actor", "actor"), ("action", "action"), ("practice", "practice"),
                ("subject", "subject"), ("detail", "detail"),
            ]
        ),
    ]

    /// The copied PostgreSQL columns that are `boolean`: SQLite holds them as 0 or 1.
    static let booleanColumns: Set<String> = ["creates"]

    /// Copies a SQLite umbrella store into this (empty) database in one transaction: every table row for row,
    /// feed positions unchanged, so devices keep their checkpoints and sync on without bootstrapping again. Each
    /// practice's feed head becomes its highest change or purge position. Returns the rows copied per table.
    ///
    /// - Throws: ``ServerError`` `invalid_parameter` when this database already holds a practice.
    public func copy(from store: ServerStore) async throws(ServerError) -> [(table: String, rows: Int)] {
        // The same store in a new place: the same epoch, so devices keep their checkpoints.
        let epoch = try store.read { db in try ServerStore.epoch(db: db) }
        // PostgreSQL keeps no record tails (``TailFolder``): every one is merged into its record before the copy.
        try await store.foldTails()
        let plan = Self.copiedTables.map { table, columns in (table, columns) }
        let source = store.pool
        return try await transaction { connection in
            guard try await connection.run("SELECT 1 FROM practice LIMIT 1", logger) == 0 else {
                throw ServerError.parameter(
                    "to",
                    "the PostgreSQL database holds practices already; migrate into an empty database"
                )
            }
            let counts = try await Self.copyRows(from: source, plan, connection, logger)
            try await Self.finishCopy(headsFromFeed: true, connection, logger)
            try await connection.run("UPDATE server_meta SET value = \(epoch) WHERE key = 'epoch'", logger)
            return counts
        }
    }

    /// Copies the rows of SQLite tables (a server store, a backup file) into this database on `connection`, in
    /// its transaction: per table, its `sqlite` columns read into its `postgres` columns, in plan order (which
    /// satisfies foreign keys), a page of rows per multi-row `INSERT`. Returns the rows copied per table. Shared
    /// by `migrate` (``copy(from:)``) and `restore` (``restore(from:force:now:)``).
    static func copyRows(
        from source: any DatabaseReader,
        _ plan: [(table: String, columns: [(sqlite: String, postgres: String)])],
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> [(table: String, rows: Int)] {
        var counts: [(table: String, rows: Int)] = []
        for (table, columns) in plan where !columns.isEmpty {
            let names = columns.map(\.postgres).joined(separator: ", ")
            // A SQLite change row may hold a run of changes (``ChangeRuns``); PostgreSQL stores one per row.
            var runs = false
            if table == "change" {
                runs = try await source.read { db in try db.columns(in: table).contains { $0.name == "count" } }
            }
            let select =
                "SELECT \(columns.map(\.sqlite).joined(separator: ", "))\(runs ? ", count" : "") FROM \(table) "
                + "LIMIT ? OFFSET ?"
            // As many rows per statement as keep its parameters well under PostgreSQL's 65,535.
            let perStatement = max(1, 20_000 / columns.count / (runs ? ChangeRuns.maxLength : 1))
            var offset = 0
            var copied = 0
            while true {
                let read = try source.read { db in
                    try Row.fetchAll(db, sql: select, arguments: [perStatement, offset])
                }
                if read.isEmpty { break }
                offset += read.count
                let rows =
                    runs
                    ? try Self.changes(ofRuns: read, columns: columns.map(\.sqlite))
                    : read.map { Array($0.databaseValues) }
                copied += rows.count
                var binds = PostgresBindings(capacity: rows.count * columns.count)
                var tuples: [String] = []
                let booleans = columns.map { Self.booleanColumns.contains($0.postgres) }
                for row in rows {
                    let first = binds.count
                    for index in 0..<columns.count {
                        switch row[index].storage {
                        case .null: binds.appendNull()
                        case .int64(let value) where booleans[index]: binds.append(value != 0)
                        case .int64(let value): binds.append(value)
                        case .double(let value): binds.append(value)
                        case .string(let value): binds.append(value)
                        case .blob(let value): binds.append(ByteBuffer(bytes: value))
                        }
                    }
                    tuples.append(
                        "(" + (first + 1...first + columns.count).map { "$\($0)" }.joined(separator: ", ") + ")"
                    )
                }
                try await connection.run(
                    PostgresQuery(
                        unsafeSQL: "INSERT INTO \(table) (\(names)) VALUES \(tuples.joined(separator: ", "))",
                        binds: binds
                    ),
                    logger
                )
            }
            counts.append((table, copied))
        }
        return counts
    }

    /// The changes of SQLite change rows read as `columns` then `count`, a row per change: a run's changes at
    /// their feed positions (``ChangeRuns/position(of:inRowAt:count:)``), each with its own counter and its single
    /// encoding. A run that creates its record (`creates`) begins with the creating change; the others do not
    /// create it.
    static func changes(ofRuns rows: [Row], columns: [String]) throws -> [[DatabaseValue]] {
        let seq = columns.firstIndex(of: "seq")
        let counter = columns.firstIndex(of: "counter")
        let payload = columns.firstIndex(of: "payload")
        let creates = columns.firstIndex(of: "creates")
        var expanded: [[DatabaseValue]] = []
        for row in rows {
            let values = Array(row.databaseValues)
            let count = Int.fromDatabaseValue(values[columns.count]) ?? 1
            guard count > 1 else {
                expanded.append(Array(values.prefix(columns.count)))
                continue
            }
            guard let seq, let counter, let payload, let last = Int64.fromDatabaseValue(values[seq]),
                let bytes = Data.fromDatabaseValue(values[payload]),
                let changes = StoredChange.decodeRun([UInt8](bytes)), changes.count == count
            else { throw ServerError.storage("a stored change row could not be read; the store is damaged") }
            for (offset, change) in changes.enumerated() {
                var one = Array(values.prefix(columns.count))
                one[seq] = ChangeRuns.position(of: offset, inRowAt: last, count: count).databaseValue
                one[counter] = Int64(change.id.counter).databaseValue
                one[payload] = Data(StoredChange.encode(change)).databaseValue
                if let creates, offset > 0 { one[creates] = 0.databaseValue }
                expanded.append(one)
            }
        }
        return expanded
    }

    /// What a copy from SQLite leaves to do: with `headsFromFeed` (a SQLite store keeps no head per practice),
    /// each practice's feed head becomes its highest change or purge position, or its compaction floor when that
    /// is higher (compaction can drop the last changes; SQLite's head counts the floor too, so devices may hold
    /// checkpoints up to it, and the next change must be numbered above it); the audit log's sequence goes on after
    /// the rows copied; every purged patient's id is among the erased ids.
    static func finishCopy(headsFromFeed: Bool, _ connection: PostgresConnection, _ logger: Logger) async throws {
        if headsFromFeed {
            try await connection.run(
                """
                UPDATE practice p SET head = GREATEST(
                    (SELECT COALESCE(MAX(seq), 0) FROM change c WHERE c.practice = p.id),
                    (SELECT COALESCE(MAX(position), 0) FROM purge g WHERE g.practice = p.id),
                    (SELECT COALESCE(MAX(floor), 0) FROM compaction k WHERE k.practice = p.id))
                """,
                logger
            )
        }
        try await connection.run(
            "SELECT setval(pg_get_serial_sequence('audit', 'seq'), (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit), false)",
            logger
        )
        // A store or backup from before the erased ids were kept (SQLite migration `v15-erased`) has its purged
        // patients' ids only.
        try await connection.run(
            """
            INSERT INTO erased (practice, type, id) SELECT practice, 'patient', patient FROM purge
            ON CONFLICT DO NOTHING
            """,
            logger
        )
    }
}
