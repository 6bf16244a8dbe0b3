import Foundation
import GRDB
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
        let database = try TestDatabase()
        // While the server serves the store, the copy is refused: what it stored after the copy would be missing
        // from PostgreSQL, its acknowledgement already given.
        let serving = try await runProcess(
            Built.server,
            ["migrate", "--from", server.dataDirectory, "--to", database.url],
            in: devices.url
        )
        #expect(serving.status != 0, "\(serving)")
        #expect(
            serving.stderr.contains("a server is running on") && serving.stderr.contains("then migrate"),
            "\(serving)"
        )
        // A patient purged before the move: the ids it erased move too.
        let tasks = try await laptop.ok("task", "list", "--json")
        let erasedTask = try #require(
            try JSONSerialization.jsonObject(with: Data(tasks.utf8)) as? [[String: Any]]
        ).first
        let erasedTaskID = try #require(erasedTask?["id"] as? String)
        let purgedPatient = try #require((erasedTask?["fields"] as? [String: Any])?["patient"] as? String)
        let purge = try await server.admin(["purge", "patient", purgedPatient, "--reason", "court order 2026-140"])
        try #require(purge.status == 0, "\(purge)")
        let kept = try await server.feed(server.adminToken).count
        try #require(kept < pushed)
        await server.stop()

        // Offline during the move, the laptop (a clinician: a site is the admin's to add) adds a task, and a note to
        // a task of the patient purged meanwhile.
        let patients = try await laptop.ok("patient", "list", "--json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(patients.utf8)) as? [[String: Any]])
        let patient = try #require(list.compactMap { $0["id"] as? String }.first { $0 != purgedPatient })
        let task = try await laptop.ok("task", "add", patient, "kind=outreach", "title=Call after the move")
        try await laptop.ok("task", "note", erasedTaskID, "Called twice, no answer")
        let moved = try await runProcess(
            Built.server,
            ["migrate", "--from", server.dataDirectory, "--to", database.url],
            in: devices.url
        )
        try #require(moved.status == 0, "\(moved)")
        // SQLite stores a record's changes from one push in one row (ChangeRuns); PostgreSQL a row per change.
        #expect(moved.output.contains("change: \(kept) rows"), "\(moved.output)")
        #expect(moved.output.contains("erased: "), "\(moved.output)")
        try BackupRestoreTests.expectEachRecordCreatedOnce(database.url)
        let again = try await runProcess(
            Built.server,
            ["migrate", "--from", server.dataDirectory, "--to", database.url],
            in: devices.url
        )
        #expect(again.status == 2, "a second copy into a non-empty database is refused: \(again)")

        server.database = database
        try await server.start()
        // The same tokens work; the laptop pushes (its note to the purged patient's task is not stored), the office
        // pulls from its old checkpoint.
        let synced = try await laptop.ok("sync", "--json")
        let laptopReport = try #require(try JSONSerialization.jsonObject(with: Data(synced.utf8)) as? [String: Any])
        #expect(laptopReport["erased"] as? Int == 1, "\(laptopReport)")
        #expect(laptopReport["purged"] as? Int == 1, "\(laptopReport)")
        let report = try await office.ok("sync", "--json")
        let pulled = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any])
        #expect((1..<100).contains(pulled["pulled"] as? Int ?? 0), "the new changes, not a bootstrap: \(pulled)")
        await #expect(try office.ok("task", "show", task).contains("Call after the move"))
        await #expect(try !office.ok("task", "list").contains(erasedTaskID))
        await #expect(try office.export() == laptop.export())
    }

    /// Compaction can drop a practice's last changes (a value added, then removed), leaving its floor above its
    /// last change; SQLite counts the floor in the feed head, so devices hold checkpoints up to it. The move must
    /// keep that head: below it, the next change would be numbered at or below a checkpoint a device holds, and
    /// every device would bootstrap again (or, at a checkpoint equal to the new head, never be sent that change).
    @Test func aCompactionFloorAboveTheLastChangeStaysTheFeedHeadAfterTheMove() async throws {
        let server = try await TestServer(backend: .sqlite)
        let devices = try TemporaryDirectory("outpost-migrate-floor")
        let url = server.url.absoluteString
        let office = Device("office", in: devices)
        let laptop = Device("laptop", in: devices)
        try await office.ok("init", "--server", url, "--token", server.adminToken)
        try await laptop.ok("init", "--server", url, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        try await laptop.ok("sync")
        await server.stop()
        // The floor five positions above the last change, as such a compaction leaves it; both devices then sync
        // (their checkpoints are below the floor: they bootstrap again, at the floor).
        let queue = try DatabaseQueue(path: server.dataDirectory + "/outpost-server.sqlite")
        let floor = try await queue.write { db -> Int64 in
            let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM change") ?? 0
            try db.execute(sql: "DELETE FROM compaction")
            try db.execute(
                sql: "INSERT INTO compaction (practice, floor, at, dropped) SELECT id, ?, 0, 0 FROM practice",
                arguments: [last + 5]
            )
            return last + 5
        }
        try queue.close()
        try await server.start()
        for device in [office, laptop] {
            let report = try await device.ok("sync", "--json")
            #expect(report.contains("\"bootstrapped\":true"), "\(device.name): \(report)")
        }
        await server.stop()

        let database = try TestDatabase()
        let moved = try await runProcess(
            Built.server,
            ["migrate", "--from", server.dataDirectory, "--to", database.url],
            in: devices.url
        )
        try #require(moved.status == 0, "\(moved)")
        let head = try TestDatabase.psql(database.url, "SELECT head FROM practice")
        #expect(head.trimmingCharacters(in: .whitespacesAndNewlines) == String(floor), "\(head)")
        server.database = database
        try await server.start()
        let patients = try await laptop.ok("patient", "list", "--json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(patients.utf8)) as? [[String: Any]])
        let patient = try #require(list.first?["id"] as? String)
        let task = try await laptop.ok("task", "add", patient, "kind=outreach", "title=Call after the move")
        let pushed = try await laptop.ok("sync", "--json")
        #expect(pushed.contains("\"bootstrapped\":false"), "\(pushed)")
        let pulled = try await office.ok("sync", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(pulled.utf8)) as? [String: Any])
        #expect(report["bootstrapped"] as? Bool == false, "the new changes, not a bootstrap: \(pulled)")
        #expect((1..<100).contains(report["pulled"] as? Int ?? 0), "\(pulled)")
        await #expect(try office.ok("task", "show", task).contains("Call after the move"))
        await #expect(try office.export() == laptop.export())
    }
}
