import Foundation
import OutpostClient
import OutpostTestSupport
import Testing

/// The conflict inbox across a real server and three real CLI replicas.
@Suite(.serialized)
struct ConflictEndToEndTests {
    func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    func conflicts(_ device: Device) async throws -> [[String: Any]] {
        try #require(try await json(try device.ok("conflicts", "list", "--json")) as? [[String: Any]])
    }

    func firstPatient(_ device: Device) async throws -> String {
        let list = try #require(try await json(try device.ok("patient", "list", "--json")) as? [[String: Any]])
        return try #require(list.first?["id"] as? String)
    }

    /// A server, an admin replica `a` holding the small practice, and clinician replicas `b` and `c`.
    func practice(
        _ backend: Backend,
        wire: String? = nil
    ) async throws -> (TestServer, TemporaryDirectory, Device, Device, Device) {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-conflicts")
        let url = server.url.absoluteString
        let a = Device("a", in: folder, encoding: wire)
        let b = Device("b", in: folder, encoding: wire)
        let c = Device("c", in: folder, encoding: wire)
        try await a.ok("init", "--server", url, "--token", server.adminToken)
        try await a.ok("import", Built.fixture("practice-small.json"))
        try await a.ok("sync")
        for device in [b, c] {
            try await device.ok("init", "--server", url, "--token", try server.issueToken(role: "clinician"))
            try await device.ok("sync")
        }
        return (server, folder, a, b, c)
    }

    @Test(arguments: Backend.all, ["binary", "json-plain"])
    func concurrentEditsConflictResolutionsClearEverywhereAndCompetingResolutionsConflictAgain(
        backend: Backend,
        wire: String
    )
        async throws
    {
        let (server, folder, a, b, c) = try await practice(backend, wire: wire)
        _ = folder
        let patient = try await firstPatient(a)
        let id = "\(patient).birthDate"

        // Offline, a and b change the same review field and the same lww field.
        try await a.ok("patient", "set", patient, "birthDate=1970-01-02", "phone=(406) 555-0101")
        try await b.ok("patient", "set", patient, "birthDate=1971-03-04", "phone=(406) 555-0202")
        for device in [a, b, c, a, b] { try await device.ok("sync") }
        for device in [a, b, c] {
            let open = try await conflicts(device)
            #expect(open.map { $0["id"] as? String } == [id], "\(device.name): \(open)")
            #expect(open.first?["values"] as? Int == 2)
        }
        let status = try await c.ok("status")
        #expect(status.contains("open conflicts:  1"))
        // The umbrella store's admins see it too, read from the server's state.
        let onServer = try await server.admin(["conflicts", "list", "--json"])
        try #require(onServer.status == 0, "\(onServer)")
        let serverList = try #require(try json(onServer.stdout) as? [[String: Any]])
        #expect(serverList.map { $0["id"] as? String } == [id])
        let serverShow = try await server.admin(["conflicts", "show", id, "--json"])
        #expect((try json(serverShow.stdout) as? [[String: Any]])?.count == 2)

        // c resolves; once everyone syncs, no replica has it open, and all hold c's choice.
        let shown = try await #require(try json(try c.ok("conflicts", "show", id, "--json")) as? [String: Any])
        let values = try #require(shown["values"] as? [[String: Any]])
        #expect(values.count == 2)
        #expect(values.filter { $0["provisional"] as? Bool == true }.count == 1)
        #expect(Set(values.compactMap { $0["device"] as? String }).count == 2)
        let picked = try #require(values.first?["value"] as? String)
        try await c.ok("conflicts", "resolve", id, "--pick", "1", "--reason", "checked the ID card")
        await #expect(try conflicts(c).isEmpty)
        for device in [c, a, b] { try await device.ok("sync") }
        await #expect(try server.admin(["conflicts", "list"]).output == "no open conflicts")
        let export = try await a.export()
        for device in [a, b, c] {
            await #expect(try conflicts(device).isEmpty, "\(device.name)")
            let record = try await #require(
                try json(try device.ok("patient", "show", patient, "--json")) as? [String: Any]
            )
            #expect((record["fields"] as? [String: Any])?["birthDate"] as? String == picked)
            await #expect(try device.export() == export)
        }

        // The audit trail names every step with its device, the resolution with its reason.
        let audit = try await #require(try json(try b.ok("audit", "--patient", patient, "--json")) as? [[String: Any]])
        let birthDates = audit.filter { $0["field"] as? String == "birthDate" }
        let devices = Set(birthDates.compactMap { $0["device"] as? String })
        #expect(devices.count == 3, "a's and b's edits and c's resolution: \(birthDates)")
        let resolution = try #require(audit.first { $0["field"] as? String == "resolutions" })
        #expect((resolution["value"] as? String)?.contains("checked the ID card") == true)
        #expect(resolution["device"] as? String == birthDates.last?["device"] as? String)

        // Two people resolve a new conflict differently while apart: a new conflict, nothing lost.
        try await a.ok("patient", "set", patient, "birthDate=1972-05-06")
        try await b.ok("patient", "set", patient, "birthDate=1973-07-08")
        for device in [a, b, a] { try await device.ok("sync") }
        try await #require(try conflicts(a).count == 1)
        try await #require(try conflicts(b).count == 1)
        try await a.ok("conflicts", "resolve", id, "--pick", "1", "--reason", "a decides")
        try await b.ok("conflicts", "resolve", id, "--value", "1974-09-10", "--reason", "b decides")
        for device in [a, b, c, a] { try await device.ok("sync") }
        for device in [a, b, c] {
            let open = try await conflicts(device)
            #expect(open.map { $0["id"] as? String } == [id], "\(device.name)")
            #expect(open.first?["values"] as? Int == 2)
        }
        await #expect(try a.export() == c.export())
    }

    @Test(arguments: Backend.all) func aSiteDeviceCannotResolveAndBadResolutionsChangeNothing(
        backend: Backend
    ) async throws {
        let (server, folder, a, b, _) = try await practice(backend)
        let school = Device("school", in: folder)
        try await school.ok(
            "init",
            "--server",
            server.url.absoluteString,
            "--token",
            try server.issueToken(role: "site-device")
        )
        try await school.ok("sync")
        let patient = try await firstPatient(a)
        let id = "\(patient).birthDate"
        try await a.ok("patient", "set", patient, "birthDate=1970-01-02")
        try await b.ok("patient", "set", patient, "birthDate=1971-03-04")
        for device in [a, b, a, school] { try await device.ok("sync") }
        try await #require(try conflicts(school).count == 1)
        let before = try await school.export()

        let refused = try await school.run("conflicts", "resolve", id, "--pick", "1")
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("site-device"))
        for arguments in [
            ["conflicts", "resolve", "pat_01JWMCKG00000000000000000.birthDate", "--pick", "1"],
            ["conflicts", "resolve", id, "--pick", "3"],
            ["conflicts", "resolve", id, "--value", "not-a-date"],
            ["conflicts", "show", "nonsense"],
        ] {
            let result = try await runProcess(
                Built.outpost,
                arguments,
                in: folder.url,
                environment: a.environment
            )
            #expect(result.status == 2, "\(arguments): \(result)")
            #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        }
        await #expect(try school.export() == before)
        await #expect(try conflicts(a).count == 1)

        // The server enforces it too: a site device that forgot its role resolves locally, and the server refuses
        // the resolution's changes one by one; the device holds them aside (never lost), nothing reaches the
        // others.
        let store = try CareStore.open(
            at: school.store,
            key: { () throws(ClientError) in try .keyFile(at: TestKeyFile.path) }
        )
        try store.store.setSetting(SyncEngine.roleSetting, to: nil)
        try await school.ok("conflicts", "resolve", id, "--pick", "1")
        let push = try await school.run("sync")
        #expect(push.status == 0, "\(push)")
        #expect(push.stdout.contains("refused: 2 changes refused by the server (2 in this sync)"), "\(push)")
        await #expect(try school.status()["pendingChanges"] as? Int == 0)
        await #expect(try school.status()["refusedChanges"] as? Int == 2)
        let held = try await school.ok("outbox", "list")
        #expect(held.contains("forbidden") && held.contains("site-device token cannot resolve"), "\(held)")
        try await a.ok("sync")
        await #expect(try conflicts(a).count == 1)
        await #expect(try a.status()["pendingChanges"] as? Int == 0)
    }

    @Test(arguments: Backend.all) func bulkResolutionByRuleShowsItsPlanOnADryRunThenResolves(
        backend: Backend
    ) async throws {
        let (server, folder, a, b, _) = try await practice(backend)
        _ = (server, folder)
        let patients = try await #require(try json(try a.ok("patient", "list", "--json")) as? [[String: Any]])
            .compactMap { $0["id"] as? String }.prefix(3)
        try #require(patients.count == 3)
        for patient in patients {
            try await a.ok("patient", "set", patient, "birthDate=1970-01-02")
            try await b.ok("patient", "set", patient, "birthDate=1971-03-04")
        }
        try await a.ok("sync")
        try await b.ok("sync")
        try await a.ok("sync")
        try await #require(try conflicts(a).count == 3)

        func resolveAll(_ rule: String, _ extra: [String] = []) async throws -> RunResult {
            try await a.run(
                arguments: ["conflicts", "resolve", "--all", "--field", "patient.birthDate", "--rule", rule] + extra
            )
        }
        let dryRun = try await resolveAll("newest", ["--dry-run"]).output
        #expect(dryRun.contains("would keep"))
        #expect(dryRun.contains("nothing changed"))
        await #expect(try conflicts(a).count == 3)
        await #expect(try a.status()["pendingChanges"] as? Int == 0)

        #expect(try await resolveAll("loudest").status == 2)
        // A site the replica does not hold is refused, not read as "no value from it" for every conflict.
        let nowhere = try await resolveAll("site:sit_01JWMCKG000000000000000000")
        #expect(nowhere.status == 2 && nowhere.stderr.contains("no site with id"), "\(nowhere)")
        await #expect(try conflicts(a).count == 3)

        let done = try await a.ok("conflicts", "resolve", "--all", "--field", "patient.birthDate", "--rule", "newest")
        #expect(done.contains("resolved 3 of 3"))
        await #expect(try conflicts(a).isEmpty)
        for device in [a, b] { try await device.ok("sync") }
        await #expect(try conflicts(b).isEmpty)
        await #expect(try a.export() == b.export())
    }

    /// A clinician's bulk resolution of `status` leaves a conflict on a team open, saying why, and settles the
    /// patient's: settled on the clinician's device, the team's would be refused by the server (only an admin
    /// changes the practice's structure) and the bulk resolution would stop half way.
    @Test(arguments: Backend.all) func aClinicianBulkResolutionLeavesConflictsOnTheStructureToAnAdmin(
        backend: Backend
    ) async throws {
        let (server, folder, a, b, _) = try await practice(backend)
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await office.ok("sync")
        let team = try #require(try await a.rows("team", "list").compactMap { $0["id"] as? String }.sorted().first)
        let patient = try await firstPatient(a)
        try await a.ok("team", "set", team, "status=inactive")
        try await office.ok("team", "set", team, "status=active")
        try await a.ok("patient", "set", patient, "status=inactive")
        try await b.ok("patient", "set", patient, "status=active")
        for device in [a, office, b, a, b] { try await device.ok("sync") }
        try #require(try await conflicts(b).count == 2)

        let done = try await b.ok("conflicts", "resolve", "--all", "--field", "status", "--rule", "newest")
        #expect(
            done.contains("\(team).status: left open (the practice's structure: only an admin token may settle it)"),
            "\(done)"
        )
        #expect(done.contains("resolved 1 of 2 conflicts of status"), "\(done)")
        await #expect(try conflicts(b).map { $0["id"] as? String } == ["\(team).status"])
        let synced = try await b.ok("sync")
        #expect(!synced.contains("refused"), "\(synced)")
        try await a.ok("sync")
        await #expect(try conflicts(a).map { $0["id"] as? String } == ["\(team).status"])
    }

    @Test(arguments: Backend.all) func anOpenConflictSurvivesTheClientBeingKilled(backend: Backend) async throws {
        let (server, folder, a, b, _) = try await practice(backend)
        _ = server
        let patient = try await firstPatient(a)
        try await a.ok("patient", "set", patient, "birthDate=1970-01-02")
        try await b.ok("patient", "set", patient, "birthDate=1971-03-04")
        try await a.ok("sync")
        // b's watch brings the conflict in, then b is killed while it waits for more.
        let output = folder.path("watch.out")
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let watch = Process()
        watch.executableURL = Built.outpost
        watch.arguments = ["sync", "--watch", "--wait", "30"]
        watch.environment = b.environment.merging(["HOME": folder.url.path]) { _, new in new }
        watch.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        watch.standardError = FileHandle.nullDevice
        let exit = try watch.start()
        var polls = 0
        while polls < 6_000, watch.isRunning,
            !((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("new conflicts 1")
        {
            polls += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(watch.isRunning)
        #expect(((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("new conflicts 1"))
        kill(watch.processIdentifier, SIGKILL)
        await exit.wait()
        #expect(watch.terminationReason == .uncaughtSignal)
        let open = try await conflicts(b)
        #expect(open.map { $0["id"] as? String } == ["\(patient).birthDate"])
        await #expect(try b.ok("status").contains("open conflicts:  1"))
    }
}
