import Foundation
public import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// The umbrella store on PostgreSQL, for networks that outgrow one machine: several stateless `outpost-server`
/// processes share it (docs/postgres.md).
///
/// The same tables as the SQLite store, with one addition that carries the feed rule: each practice's row holds
/// its feed head. A transaction that assigns feed positions (a push, a purge) first locks that row
/// (`SELECT … FOR NO KEY UPDATE`), then takes the positions after the head and moves the head, and commits before the
/// lock is released. Positions of a practice are therefore assigned in commit order: a change never commits
/// below a position a device has already been given, so a pull that stops at the highest position it saw skips
/// nothing. Pulls and snapshots read one snapshot (`REPEATABLE READ`), retried on a serialization failure.
public final class PostgresStore: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// The task running the client's connection pool, cancelled by ``close()``.
    private let runner: Task<Void, Never>
    /// Test hook: called inside a push's transaction after its changes are written, before it commits.
    let beforePushCommit: (@Sendable () async -> Void)?

    /// Connects to `location`, applies the migrations this version lacks, and returns the store.
    ///
    /// - Throws: ``ServerError`` `unavailable` when the database cannot be reached or its schema is newer than
    ///   this version of the server.
    ///
    /// - Parameter create: whether a database that holds no Outpost store yet gets its tables (a server, a restore,
    ///   a migration) or is refused (an administration command, which would otherwise leave an empty store behind
    ///   in a database named by mistake).
    public static func open(
        _ location: PostgresLocation,
        logger: Logger,
        create: Bool = true
    ) async throws(ServerError) -> PostgresStore {
        try await open(location, logger: logger, create: create, beforePushCommit: nil)
    }

    static func open(
        _ location: PostgresLocation,
        logger: Logger,
        create: Bool = true,
        beforePushCommit: (@Sendable () async -> Void)?
    ) async throws(ServerError) -> PostgresStore {
        try await probe(location)
        let store = PostgresStore(location: location, logger: logger, beforePushCommit: beforePushCommit)
        do throws(ServerError) {
            if !create {
                let held = try await store.transaction { connection in
                    try await connection.all("SELECT to_regclass('outpost_migration') IS NOT NULL", logger).first?
                        .decode(Bool.self) ?? false
                }
                guard held else {
                    throw ServerError.storage(
                        "the PostgreSQL database \(location.description) holds no server store; start "
                            + "'outpost-server serve --database URL' once to create it"
                    )
                }
            }
            try await store.migrate()
        } catch {
            store.close()
            throw error
        }
        return store
    }

    private init(location: PostgresLocation, logger: Logger, beforePushCommit: (@Sendable () async -> Void)?) {
        let client = PostgresClient(configuration: location.clientConfiguration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        self.beforePushCommit = beforePushCommit
        self.runner = Task { await client.run() }
    }

    /// Connects once, alone, and says what is wrong when that fails: the pool retries a connection it cannot make
    /// (a database that does not exist, a refused login, a port nobody listens on) for as long as it is asked to,
    /// and its logs name none of it to the administrator who typed the URL.
    ///
    /// - Throws: ``ServerError`` `unavailable` naming the server, the database or the user, and what to check.
    static func probe(_ location: PostgresLocation) async throws(ServerError) {
        var configuration = PostgresConnection.Configuration(
            host: location.host,
            port: location.port,
            username: location.user,
            password: location.password,
            database: location.database,
            tls: .disable
        )
        configuration.options.connectTimeout = .seconds(10)
        do {
            if location.requiresTLS {
                configuration.tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            // Its own logs stay quiet: the failure is said once, below.
            let connection = try await PostgresConnection.connect(
                configuration: configuration,
                id: 0,
                logger: Logger(label: "outpost-server.postgres-probe", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            try? await connection.close()
        } catch {
            throw ServerError.storage(connectionFailure(error, location))
        }
    }

    /// A failed first connection in words: what PostgreSQL answered, or why it could not be reached.
    static func connectionFailure(_ error: any Error, _ location: PostgresLocation) -> String {
        let place = "\(location.host):\(location.port)"
        guard let error = error as? PSQLError else {
            return "cannot connect to PostgreSQL at \(place): \(error); check the URL's host and port"
        }
        if let info = error.serverInfo {
            let message = info[.message] ?? ""
            switch info[.sqlState] ?? "" {
            case "3D000":
                return "PostgreSQL at \(place) has no database \(location.database) (\(message)); create it "
                    + "(createdb \(location.database)) or name another in the URL"
            case "28P01", "28000":
                return "PostgreSQL at \(place) refused the login as \(location.user) (\(message)); check the user, "
                    + "the password (in the URL or PGPASSWORD) and the server's pg_hba.conf"
            default:
                return "PostgreSQL at \(place) refused the connection: \(message)"
            }
        }
        switch error.code {
        case .sslUnsupported:
            return "PostgreSQL at \(place) does not accept TLS, which sslmode=\(location.requiresTLS ? "require" : "") "
                + "asks for; enable ssl on the server, or drop sslmode from the URL on a trusted network"
        case .connectionError:
            let cause = error.underlying.map { "\($0)" } ?? "no answer"
            return "cannot connect to PostgreSQL at \(place): \(cause); check that it runs there and the URL's "
                + "host and port"
        default:
            return "cannot connect to PostgreSQL at \(place): \(describe(error))"
        }
    }

    /// Closes the connection pool.
    public func close() {
        runner.cancel()
    }

    /// The isolation a transaction runs at.
    enum Isolation: String {
        /// Each statement sees what committed before it: for transactions that lock what they write first.
        case readCommitted = "READ COMMITTED"
        /// One snapshot for the whole transaction: for reads that must agree with each other.
        case repeatableRead = "REPEATABLE READ"
    }

    /// Runs `body` in one transaction, retried (up to five attempts) on a serialization failure or a deadlock;
    /// any failure other than a ``ServerError`` is logged (its SQL state and message, never its arguments) and
    /// becomes an internal one.
    func transaction<T: Sendable>(
        _ isolation: Isolation = .readCommitted,
        _ body: (PostgresConnection) async throws -> T
    ) async throws(ServerError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await client.withConnection { connection in
                    try await connection.query("BEGIN ISOLATION LEVEL \(unescaped: isolation.rawValue)", logger: logger)
                    do {
                        let value = try await body(connection)
                        try await connection.query("COMMIT", logger: logger)
                        return value
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        throw error
                    }
                }
            } catch let error as ServerError {
                throw error
            } catch let error as PSQLError where attempt < 5 && Self.isRetryable(error) {
                continue
            } catch {
                logger.error("storage failed", metadata: ["error": "\(Self.describe(error))"])
                throw ServerError.internalFailure()
            }
        }
    }

    /// Whether a failure is a serialization failure or a deadlock, which a retry resolves.
    static func isRetryable(_ error: PSQLError) -> Bool {
        ["40001", "40P01"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    /// A failure in words for the log: the SQL state and the server's message, without the statement's
    /// arguments (which may hold patient data).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo {
            return "\(info[.sqlState] ?? "?") \(info[.message] ?? "")"
        }
        return "\(error.code)"
    }

    /// The numbered migrations, applied in order, each in the transaction that records it. Never edit one that
    /// has shipped: add the next.
    static let migrations: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE practice (
                    id text PRIMARY KEY, name text NOT NULL, created_at bigint NOT NULL,
                    head bigint NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE TABLE token (
                    id text PRIMARY KEY, hash text NOT NULL UNIQUE, practice text NOT NULL REFERENCES practice(id),
                    role text NOT NULL, scope_sites text NOT NULL, scope_teams text NOT NULL, label text NOT NULL,
                    created_at bigint NOT NULL, expires_at bigint, revoked_at bigint, person text, successor_of text
                )
                """,
                """
                CREATE TABLE device (
                    practice text NOT NULL REFERENCES practice(id), replica text NOT NULL,
                    token text NOT NULL REFERENCES token(id), acknowledged bigint NOT NULL,
                    first_seen bigint NOT NULL, last_seen bigint NOT NULL, last_push bigint, last_pull bigint,
                    pulled_to bigint, outbox bigint, client text, retired_at bigint,
                    PRIMARY KEY (practice, replica)
                )
                """,
                """
                CREATE TABLE change (
                    practice text NOT NULL, seq bigint NOT NULL, replica text NOT NULL, counter bigint NOT NULL,
                    type text NOT NULL, id text NOT NULL, owner text, payload bytea NOT NULL,
                    PRIMARY KEY (practice, seq), UNIQUE (practice, replica, counter)
                )
                """,
                "CREATE INDEX change_by_record ON change (practice, type, id)",
                """
                CREATE TABLE record (
                    practice text NOT NULL, type text NOT NULL, id text NOT NULL, owner text, state bytea NOT NULL,
                    PRIMARY KEY (practice, type, id)
                )
                """,
                "CREATE INDEX record_by_owner ON record (practice, owner) WHERE owner IS NOT NULL",
                """
                CREATE TABLE conflict (
                    practice text NOT NULL, type text NOT NULL, id text NOT NULL, field text NOT NULL,
                    detected_at bigint NOT NULL, PRIMARY KEY (practice, type, id, field)
                )
                """,
                """
                CREATE TABLE patient_scope (
                    practice text NOT NULL, patient text NOT NULL, team text, PRIMARY KEY (practice, patient)
                )
                """,
                "CREATE INDEX patient_scope_by_team ON patient_scope (practice, team)",
                """
                CREATE TABLE patient_site (
                    practice text NOT NULL, patient text NOT NULL, site text NOT NULL,
                    PRIMARY KEY (practice, patient, site)
                )
                """,
                "CREATE INDEX patient_site_by_site ON patient_site (practice, site)",
                """
                CREATE TABLE device_patient (
                    practice text NOT NULL, replica text NOT NULL, patient text NOT NULL, state text NOT NULL,
                    at bigint NOT NULL, at_since bigint NOT NULL, PRIMARY KEY (practice, replica, patient)
                )
                """,
                """
                CREATE TABLE purge (
                    practice text NOT NULL, patient text NOT NULL, position bigint NOT NULL, reason text NOT NULL,
                    records bigint NOT NULL, at bigint NOT NULL, PRIMARY KEY (practice, patient)
                )
                """,
                """
                CREATE TABLE audit (
                    seq bigserial PRIMARY KEY, at bigint NOT NULL, actor text NOT NULL, action text NOT NULL,
                    practice text, subject text, detail text NOT NULL
                )
                """,
                "CREATE INDEX audit_by_practice ON audit (practice, seq)",
            ]
        ),
        // Server epochs (PostgresStore+Backup.swift): a random id, replaced by every restore from a backup.
        (
            2,
            [
                "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL)",
                """
                INSERT INTO server_meta (key, value)
                VALUES ('epoch', 'epo_' || md5(random()::text || clock_timestamp()::text))
                """,
            ]
        ),
        (3, compactionMigration),
        // What a device is known to hold, for compaction (``recordPull(_:practice:report:now:pulledTo:pulledFrom:
        // _:_:)``): `pulled_to` is the checkpoint last sent, which the device may never have written.
        (4, ["ALTER TABLE device ADD COLUMN pulled_from bigint, ADD COLUMN held_to bigint"]),
        // Whether a change is the first of its record (``PushPlan/createsRecord()``): what a layout-3 pull page
        // names in full. Changes stored before it may be: `true`.
        (5, ["ALTER TABLE change ADD COLUMN creates boolean NOT NULL DEFAULT true"]),
        // The ids of the records legal purges erased (ids only; see the SQLite migration `v15-erased`).
        (
            6,
            [
                """
                CREATE TABLE erased (
                    practice text NOT NULL, type text NOT NULL, id text NOT NULL, PRIMARY KEY (practice, type, id)
                )
                """,
                "INSERT INTO erased (practice, type, id) SELECT practice, 'patient', patient FROM purge",
            ]
        ),
        // The patient a push's erasure gave a record to (see the SQLite migration `v16-erased-patient`).
        (
            7,
            [
                "ALTER TABLE erased ADD COLUMN patient text",
                "CREATE INDEX erased_patient ON erased (practice, patient) WHERE patient IS NOT NULL",
            ]
        ),
    ]

    /// Applies the migrations this database lacks, under a transaction-level advisory lock, so that several
    /// processes starting at once apply each one once.
    func migrate() async throws(ServerError) {
        let latest = Self.migrations.last?.version ?? 0
        let applied = try await transaction { connection in
            try await connection.run("SELECT pg_advisory_xact_lock(7465721001)", logger)
            try await connection.run(
                "CREATE TABLE IF NOT EXISTS outpost_migration (version integer PRIMARY KEY, applied_at bigint NOT NULL)",
                logger
            )
            let done = Set(
                try await connection.all("SELECT version FROM outpost_migration", logger).map {
                    try $0.decode(Int.self)
                }
            )
            if let newest = done.max(), newest > latest {
                return newest
            }
            for migration in Self.migrations where !done.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger)
                }
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                try await connection.run(
                    "INSERT INTO outpost_migration (version, applied_at) VALUES (\(migration.version), \(now))",
                    logger
                )
            }
            return latest
        }
        guard applied <= latest else {
            throw ServerError.storage(
                "the PostgreSQL database has schema version \(applied), newer than this server's \(latest); run a "
                    + "newer outpost-server"
            )
        }
    }
}

/// Where a PostgreSQL store is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?pool=N&sslmode=require]`.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    /// The most connections this process opens (`pool`, default 20).
    public var poolSize: Int
    /// Whether to require TLS (`sslmode=require` or `verify-full`); otherwise plain.
    public var requiresTLS: Bool

    /// Reads a connection URL.
    ///
    /// - Throws: ``ServerError`` `invalid_parameter` naming what is missing or malformed.
    public init(url text: String) throws(ServerError) {
        func refuse(_ what: String) -> ServerError {
            ServerError.parameter(
                "database",
                "\(what) in the database URL; give postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            )
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme)
        else { throw refuse("no postgres:// scheme") }
        guard let host = components.host, !host.isEmpty else { throw refuse("no host") }
        guard let user = components.user, !user.isEmpty else { throw refuse("no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw refuse("no database") }
        self.host = host
        self.port = components.port ?? 5432
        self.user = user.removingPercentEncoding ?? user
        self.password =
            components.password.map { $0.removingPercentEncoding ?? $0 }
            ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
        self.database = database.removingPercentEncoding ?? database
        let items = components.queryItems ?? []
        self.poolSize = 20
        self.requiresTLS = false
        for item in items {
            switch item.name {
            case "pool":
                guard let size = item.value.flatMap(Int.init), size >= 1 else { throw refuse("pool is not a number") }
                poolSize = size
            case "sslmode":
                requiresTLS = ["require", "verify-ca", "verify-full"].contains(item.value ?? "")
            default:
                throw refuse("an unknown parameter \(item.name) (known: pool, sslmode)")
            }
        }
    }

    /// The URL without its password, for logs and messages.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: user,
            password: password,
            database: database,
            tls: requiresTLS ? .require(.makeClientConfiguration()) : .disable
        )
        configuration.options.maximumConnections = poolSize
        return configuration
    }
}

extension PostgresConnection {
    /// Runs `query` and returns every row.
    func all(_ query: PostgresQuery, _ logger: Logger) async throws -> [PostgresRow] {
        var rows: [PostgresRow] = []
        for try await row in try await self.query(query, logger: logger) { rows.append(row) }
        return rows
    }

    /// Runs `query`, returning how many rows it returned (a `RETURNING 1` counts the rows a write touched).
    @discardableResult
    func run(_ query: PostgresQuery, _ logger: Logger) async throws -> Int {
        var count = 0
        for try await _ in try await self.query(query, logger: logger) { count += 1 }
        return count
    }
}

extension ByteBuffer {
    /// The buffer's readable bytes.
    var bytes: [UInt8] { Array(readableBytesView) }
}
