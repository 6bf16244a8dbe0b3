import Foundation
import OutpostTestSupport
import Testing

/// A PostgreSQL URL that cannot be used is said at once, in one line naming what is wrong, and the command exits 1:
/// the connection pool would retry it for as long as it is asked to (a minute and more, logging PostgresNIO's
/// errors), and `serve` ended with "the server failed unexpectedly" and nothing else.
struct PostgresConnectionFailureTests {
    /// `outpost-server ARGUMENTS --database URL`: exit 1 with `mentioning` on stderr, nothing on stdout.
    func expectFailure(_ arguments: [String], _ url: String, mentioning: [String]) async throws {
        let directory = try TemporaryDirectory("outpost-pg-failure")
        let result = try await runProcess(Built.server, arguments + ["--database", url], in: directory.url)
        #expect(result.status == 1, "\(arguments): \(result)")
        #expect(result.output.isEmpty, "\(result)")
        for text in mentioning { #expect(result.stderr.contains(text), "\(arguments): \(result.stderr)") }
        #expect(!result.stderr.contains("PSQLError") && !result.stderr.contains("failed unexpectedly"), "\(result)")
    }

    @Test func aPortNobodyListensOnIsNamed() async throws {
        // Port 1 is privileged: no PostgreSQL listens there.
        let url = "postgres://outpost@127.0.0.1:1/outpost"
        try await expectFailure(["token", "list"], url, mentioning: ["cannot connect to PostgreSQL at 127.0.0.1:1"])
        try await expectFailure(
            ["serve", "--port", "0"],
            url,
            mentioning: ["cannot connect to PostgreSQL at 127.0.0.1:1"]
        )
    }

    @Test(.enabled(if: TestDatabase.isWanted, "OUTPOST_TEST_POSTGRES_URL is unset"))
    func aMissingDatabaseOrAnUnknownUserIsNamed() async throws {
        let server = try #require(TestDatabase.serverURL.flatMap { URLComponents(string: $0) })
        var missing = server
        missing.path = "/outpost_missing_database"
        for arguments in [["token", "list"], ["serve", "--port", "0"], ["practice", "list"]] {
            try await expectFailure(
                arguments,
                try #require(missing.string),
                mentioning: ["has no database outpost_missing_database", "createdb outpost_missing_database"]
            )
        }
        // A database that exists but holds no server store: an administration command does not make one.
        let empty = try TestDatabase()
        try await expectFailure(
            ["token", "list"],
            empty.url,
            mentioning: ["holds no server store", "serve --database"]
        )
        var stranger = server
        stranger.user = "outpost_no_such_role"
        stranger.password = nil
        try await expectFailure(
            ["token", "list"],
            try #require(stranger.string),
            mentioning: ["refused the login as outpost_no_such_role"]
        )
    }
}
