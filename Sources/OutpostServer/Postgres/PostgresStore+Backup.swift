import Foundation
import GRDB
import Logging
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// The tables a PostgreSQL backup holds, with their PostgreSQL columns: those `migrate` copies, and each
    /// practice's feed head.
    static var backupTables: [(table: String, columns: [String])] {
        copiedTables.map { table, columns in
            (table, columns.map(\.postgres) + (table == "practice" ? ["head"] : []))
        }
    }

    public func epoch() async throws(ServerError) -> String {
        try await transaction { connection in try await Self.epoch(connection, logger) }
    }

    /// The store's epoch, read on `connection`.
    static func epoch(_ connection: PostgresConnection, _ logger: Logger) async throws -> String {
        guard
            let value = try await connection.all("SELECT value FROM server_meta WHERE key = 'epoch'", logger).first?
                .decode(String.self)
        else {
            throw ServerError.storage("the PostgreSQL store has no epoch; it is damaged: restore a backup")
        }
        return value
    }

    /// Writes a consistent copy of the store to `path` while it serves: every table read in one `REPEATABLE
    /// READ` transaction (one snapshot; writers go on meanwhile) into a SQLite file with the backup header.
    ///
    /// - Throws: ``ServerError`` when `path` exists or cannot be written.
    public func backup(to path: String, now: UInt64) async throws(ServerError) -> BackupSummary {
        let tables = Self.backupTables
        let logger = logger
        return try await BackupFile.write(to: path) { partial in
            let target = try DatabaseQueue(path: partial)
            defer { try? target.close() }
            try await target.write { db in
                for (table, columns) in tables {
                    try db.execute(sql: "CREATE TABLE \(table) (\(columns.joined(separator: ", ")))")
                }
            }
            let (epoch, schema) = try await transaction(.repeatableRead) { connection in
                // A retried transaction starts the copy again.
                try await target.write { db in for (table, _) in tables { try db.execute(sql: "DELETE FROM \(table)") }
                }
                let epoch =
                    try await connection.all("SELECT value FROM server_meta WHERE key = 'epoch'", logger)
                    .first?.decode(String.self) ?? ""
                let schema =
                    try await connection.all("SELECT MAX(version) FROM outpost_migration", logger)
                    .first?.decode(Int.self) ?? 0
                for (table, columns) in tables {
                    let insert =
                        "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
                        + "(\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
                    var batch: [[DatabaseValue]] = []
                    func flush() throws {
                        let rows = batch
                        batch = []
                        try target.write { db in
                            let statement = try db.cachedStatement(sql: insert)
                            for row in rows { try statement.execute(arguments: StatementArguments(row)) }
                        }
                    }
                    let query = PostgresQuery(unsafeSQL: "SELECT \(columns.joined(separator: ", ")) FROM \(table)")
                    for try await row in try await connection.query(query, logger: logger) {
                        batch.append(try row.map { try Self.databaseValue($0) })
                        if batch.count >= 5_000 { try flush() }
                    }
                    try flush()
                }
                return (epoch, String(schema))
            }
            try await target.write { db in
                try BackupFile.writeHeader(kind: .postgres, epoch: epoch, now: now, schema: schema, db: db)
            }
            return try BackupFile.summary(of: partial, queue: target)
        }
    }

    /// A PostgreSQL value as SQLite stores it: text, a whole number (a boolean as 0 or 1) or bytes.
    static func databaseValue(_ cell: PostgresCell) throws -> DatabaseValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8: return try cell.decode(Int64.self).databaseValue
        case .int4: return Int64(try cell.decode(Int32.self)).databaseValue
        case .int2: return Int64(try cell.decode(Int16.self)).databaseValue
        case .bool: return (try cell.decode(Bool.self) ? 1 : 0).databaseValue
        case .bytea: return Data(try cell.decode(ByteBuffer.self).readableBytesView).databaseValue
        default: return try cell.decode(String.self).databaseValue
        }
    }

    /// Whether processes other than this one are connected to the database (a running server, a `psql`).
    func otherConnections() async throws(ServerError) -> Int {
        try await transaction { connection in
            try await connection.all(
                """
                SELECT COUNT(*) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                """,
                logger
            ).first?.decode(Int.self) ?? 0
        }
    }

    /// Replaces the store's content with the backup `file` (of either kind), in a new epoch, in one
    /// transaction: an interrupted restore changes nothing.
    ///
    /// Refused while another process is connected to the database (stop every server first), and over a store
    /// that holds a practice unless `force`. Open this store with a pool of one connection
    /// (``PostgresLocation/poolSize``), so that its own connections are not counted as others.
    ///
    /// - Throws: ``ServerError`` `invalid_parameter` over an existing store without `force`; `unavailable`
    ///   while other processes are connected.
    public func restore(from file: BackupFile, force: Bool, now: UInt64) async throws(ServerError) -> RestoreSummary {
        // A server process just stopped may leave its connections for a moment: wait up to five seconds.
        var others = try await otherConnections()
        for _ in 0..<50 where others > 0 {
            try? await Task.sleep(for: .milliseconds(100))
            others = try await otherConnections()
        }
        guard others == 0 else {
            throw ServerError.storage(
                "\(others) other connection\(others == 1 ? " is" : "s are") open to this database (a running "
                    + "outpost-server, psql?); stop every server on it first, then restore"
            )
        }
        // The columns to read from the file, by table, with the PostgreSQL column each is written to.
        let source = try DatabaseQueue.readOnly(file.path)
        defer { try? source.close() }
        let plan: [(table: String, columns: [(sqlite: String, postgres: String)])]
        let kind = file.kind
        do {
            plan = try await source.read { db in
                var plan: [(table: String, columns: [(sqlite: String, postgres: String)])] = []
                for (table, columns) in Self.copiedTables {
                    var pairs = columns.map {
                        (sqlite: kind == .sqlite ? $0.sqlite : $0.postgres, postgres: $0.postgres)
                    }
                    if kind == .postgres && table == "practice" { pairs.append(("head", "head")) }
                    guard try db.tableExists(table) else { continue }
                    let present = Set(try db.columns(in: table).map(\.name))
                    plan.append((table, pairs.filter { present.contains($0.sqlite) }))
                }
                return plan
            }
        } catch {
            throw ServerError.parameter("file", "\(file.path) cannot be read as a backup: \(error)")
        }
        let epoch = EpochRule.makeEpoch()
        let tables = Self.copiedTables.map(\.table)
        let logger = logger
        return try await transaction { connection in
            if !force, try await connection.run("SELECT 1 FROM practice LIMIT 1", logger) > 0 {
                throw ServerError.parameter(
                    "force",
                    "the PostgreSQL database holds a server store already; restore over it with --force (its "
                        + "content is replaced by the backup's)"
                )
            }
            try await connection.run(PostgresQuery(unsafeSQL: "TRUNCATE \(tables.joined(separator: ", "))"), logger)
            _ = try await Self.copyRows(from: source, plan, connection, logger)
            // A SQLite store keeps no head per practice; a PostgreSQL backup holds each.
            try await Self.finishCopy(headsFromFeed: file.kind == .sqlite, connection, logger)
            try await connection.run("UPDATE server_meta SET value = \(epoch) WHERE key = 'epoch'", logger)
            try await Self.audit(
                "restore",
                practice: nil,
                subject: nil,
                detail: "from a backup taken at \(file.takenAtMillis) ms (epoch \(file.epoch ?? "none")); "
                    + "new epoch \(epoch)",
                now: now,
                connection,
                logger
            )
            let practices = try await connection.all("SELECT COUNT(*) FROM practice", logger).first?.decode(Int.self)
            let changes = try await connection.all("SELECT COUNT(*) FROM change", logger).first?.decode(Int.self)
            return RestoreSummary(
                practices: practices ?? 0,
                changes: changes ?? 0,
                takenAtMillis: file.takenAtMillis,
                epoch: epoch
            )
        }
    }
}

extension DatabaseQueue {
    /// Opens a database file read-only.
    static func readOnly(_ path: String) throws(ServerError) -> DatabaseQueue {
        var configuration = Configuration()
        configuration.readonly = true
        do {
            return try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw ServerError.parameter("file", "\(path) cannot be opened: \(error)")
        }
    }
}
