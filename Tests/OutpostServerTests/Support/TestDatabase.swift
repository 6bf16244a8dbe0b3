import Foundation
import OutpostTestSupport
import Testing

/// The server backends the end-to-end, scope, conflict and fault tests run on.
///
/// PostgreSQL runs when `OUTPOST_TEST_POSTGRES_URL` names a server (a database on it that the role may connect
/// to, e.g. `postgres://outpost@127.0.0.1:5432/postgres`; the role needs CREATEDB). In CI (`CI=true`) it always
/// runs, so an unreachable server fails the tests rather than skipping them; elsewhere, without the variable,
/// only SQLite runs and ``PostgresAvailabilityTests`` reports the skip.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// The backends to run on here.
    static var all: [Backend] {
        TestDatabase.isWanted ? [.sqlite, .postgres] : [.sqlite]
    }
}

/// A PostgreSQL database of its own for one test: created with a random name, dropped when released, so suites
/// run in parallel on one server.
final class TestDatabase: Sendable {
    /// The maintenance URL from the environment.
    static var serverURL: String? {
        ProcessInfo.processInfo.environment["OUTPOST_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether the PostgreSQL tests run: a server is named, or this is CI (where a missing one is a failure).
    static var isWanted: Bool {
        serverURL != nil || ProcessInfo.processInfo.environment["CI"] == "true"
    }

    let name: String
    /// The URL of this test's database.
    let url: String
    private let server: String

    /// Creates a fresh database.
    ///
    /// - Throws: when `OUTPOST_TEST_POSTGRES_URL` is unset (in CI) or the server refuses.
    init() throws {
        guard let server = Self.serverURL else {
            throw HarnessError(
                description:
                    "CI=true but OUTPOST_TEST_POSTGRES_URL is unset: the PostgreSQL tests cannot run; set it to "
                    + "postgres://USER@HOST:PORT/postgres (see .ci/run)"
            )
        }
        self.server = server
        name = "outpost_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        guard var components = URLComponents(string: server) else {
            throw HarnessError(description: "OUTPOST_TEST_POSTGRES_URL is not a URL")
        }
        components.path = "/" + name
        url = components.string ?? server
        try Self.psql(server, "CREATE DATABASE \(name)")
    }

    deinit {
        // Dropped by a psql left to run: a deinit runs on one of the cooperative pool's threads, which a wait would
        // hold (two such waits once hung a CI run).
        ChildProcess.launch(Self.psql, Self.arguments(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
    }

    /// `env`, which finds `psql` on the path.
    private static let psql = URL(fileURLWithPath: "/usr/bin/env")

    /// The arguments of `env` that run one SQL statement with `psql` on `url`.
    private static func arguments(_ url: String, _ sql: String) -> [String] {
        ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]
    }

    /// Runs one SQL statement with `psql` on `url`.
    @discardableResult
    static func psql(_ url: String, _ sql: String) throws -> String {
        // Blocking, briefly: its callers are synchronous.
        let result = try ChildProcess.runBlocking(
            psql,
            arguments(url, sql),
            in: FileManager.default.temporaryDirectory,
            environment: ProcessInfo.processInfo.environment
        )
        guard result.status == 0 else {
            throw HarnessError(
                description: "psql on \(url) failed (is PostgreSQL running and psql installed?): \(result.stderr)"
            )
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Says why the PostgreSQL tests did not run here, or fails when they must (CI) and cannot.
struct PostgresAvailabilityTests {
    @Test(
        .enabled(
            if: TestDatabase.isWanted,
            "OUTPOST_TEST_POSTGRES_URL is unset: the server tests ran on SQLite only; set it to run them on PostgreSQL"
        )
    )
    func theTestPostgreSQLServerIsReachable() throws {
        let database = try TestDatabase()
        #expect(try TestDatabase.psql(database.url, "SELECT 1") == "1")
    }
}
