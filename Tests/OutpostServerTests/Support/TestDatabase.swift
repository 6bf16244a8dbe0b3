import Foundation
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
        // hold (a test server's database going while another test's server started once hung a CI run).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = Self.arguments(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
    }

    /// The arguments of `env` that run one SQL statement with `psql` on `url`.
    private static func arguments(_ url: String, _ sql: String) -> [String] {
        ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]
    }

    /// Runs one SQL statement with `psql` on `url`.
    @discardableResult
    static func psql(_ url: String, _ sql: String) throws -> String {
        let result = try ChildProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), arguments(url, sql))
        guard result.status == 0 else {
            throw HarnessError(
                description: "psql on \(url) failed (is PostgreSQL running and psql installed?): \(result.error)"
            )
        }
        return result.output
    }
}

/// Runs a short helper process (psql) to completion.
/// Runs a short command to completion, blocking the calling thread: for what must finish before a synchronous
/// caller goes on (`psql`, a backup run inside a transport's hook). Its output goes through files, not pipes: a
/// pipe's end inherited by a process another test starts meanwhile holds the end of file back, and a read to the
/// end of a pipe once waited for a test server that could not stop (a CI run hung so).
enum ChildProcessRunner {
    static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let directory = try TemporaryDirectory("outpost-child")
        let outURL = directory.url.appendingPathComponent("out")
        let errURL = directory.url.appendingPathComponent("err")
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return (
            process.terminationStatus,
            String(decoding: try Data(contentsOf: outURL), as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines
            ),
            String(decoding: try Data(contentsOf: errURL), as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
        )
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
