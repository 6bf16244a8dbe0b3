import Foundation
import OutpostClient
import OutpostTestSupport
import Testing

/// `outpost-server migrate`: a SQLite umbrella store copied into PostgreSQL, its devices syncing on.
@Suite(.enabled(if: TestDatabase.isWanted, "OUTPOST_TEST_POSTGRES_URL is unset: PostgreSQL migrate tests skipped"))
struct PostgresMigrateTests {
    @Test func devicesKeepSyncingAfterTheStoreMovesFromSQLiteToPostgreSQL() async throws {
        let server = try await TestServer(backend: .sqlite)
        let devices = try TemporaryDirectory("outpost-migrate")
        let url = server.url.absoluteString
        let office = Device("office", in: devices)
        let laptop = Device("laptop", in: devices)
        try await office.ok("init", "--server", url, "--token", server.adminToken)
        try await laptop.ok("init", "--server", url, "--token", try server.issueToken(role: "clinician"))
        try await office.ok("import", Built.fixture("practice-small.json"))
        let first = try await office.ok("sync", "--json")
        let pushed = try #require(
            (try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])?["pushed"] as? Int
        )
        try await laptop.ok("sync")
        await server.stop()

        // Offline during the move, the laptop (a clinician: a site is the admin's to add) adds a task.
        let patients = try await laptop.ok("patient", "list", "--json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(patients.utf8)) as? [[String: Any]])
        let patient = try #require(list.first?["id"] as? String)
        let task = try await laptop.ok("task", "add", patient, "kind=outreach", "title=Call after the move")
        let database = try TestDatabase()
        let moved = try await runProcess(
            Built.server,
            ["migrate", "--from", server.dataDirectory, "--to", database.url],
            in: devices.url
        )
        try #require(moved.status == 0, "\(moved)")
        // SQLite stores a record's changes from one push in one row (ChangeRuns); PostgreSQL a row per change.
        #expect(moved.output.contains("change: \(pushed) rows"), "\(moved.output)")
        try BackupRestoreTests.expectEachRecordCreatedOnce(database.url)
        let again = try await runProcess(
            Built.server,
            ["migrate", "--from", server.dataDirectory, "--to", database.url],
            in: devices.url
        )
        #expect(again.status == 2, "a second copy into a non-empty database is refused: \(again)")

        server.database = database
        try await server.start()
        // The same tokens work; the laptop pushes, the office pulls from its old checkpoint.
        try await laptop.ok("sync")
        let report = try await office.ok("sync", "--json")
        let pulled = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any])
        #expect((1..<100).contains(pulled["pulled"] as? Int ?? 0), "the new changes, not a bootstrap: \(pulled)")
        await #expect(try office.ok("task", "show", task).contains("Call after the move"))
        await #expect(try office.export() == laptop.export())
    }
}
