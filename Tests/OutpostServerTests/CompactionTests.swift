import Foundation
import GRDB
import OutpostTestSupport
import Testing

/// Coordinated compaction on the real server, driven through the real `outpost` and `outpost-server` binaries:
/// devices report their refused changes, a discard is withdrawn on the device, and compaction drops superseded
/// values without changing any export, even for a device that was gone past the horizon.
@Suite(.serialized)
struct CompactionTests {
    func json<T>(_ text: String, as type: T.Type = [[String: Any]].self) throws -> T {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? T)
    }

    func ids(_ device: Device, _ arguments: String...) async throws -> [String] {
        try json(try await device.ok(arguments: arguments + ["--json"])).compactMap { $0["id"] as? String }.sorted()
    }

    func language(_ device: Device, _ id: String) async throws -> String? {
        let shown = try json(try await device.ok("patient", "show", id, "--json"), as: [String: Any].self)
        return (shown["fields"] as? [String: Any])?["preferredLanguage"] as? String
    }

    func device(_ server: TestServer, _ replica: String) async throws -> [String: Any] {
        let result = try await server.admin(["devices", "list", "--all", "--json"])
        try #require(result.status == 0, "\(result)")
        return try #require(try json(result.stdout).first { $0["replica"] as? String == replica })
    }

    /// Makes the server believe `replica` was last seen `days` ago (no test waits for time to pass).
    func age(_ server: TestServer, _ replica: String, days: Int64) throws {
        let millis = days * 86_400_000
        if let database = server.database {
            try TestDatabase.psql(
                database.url,
                "UPDATE device SET last_seen = last_seen - \(millis) WHERE replica = '\(replica)'"
            )
        } else {
            let queue = try DatabaseQueue(path: server.dataDirectory + "/outpost-server.sqlite")
            try queue.write { db in
                try db.execute(
                    sql: "UPDATE device SET lastSeen = lastSeen - ? WHERE replica = ?",
                    arguments: [millis, replica]
                )
            }
        }
    }

    func compact(_ server: TestServer, _ extra: [String] = []) async throws -> String {
        let result = try await server.admin(["compact"] + extra)
        try #require(result.status == 0, "\(result)")
        return result.stdout
    }

    /// Runs `outpost-server compact` and every device's `outpost sync` at once; returns what compact printed.
    func concurrently(_ server: TestServer, _ devices: [Device]) async throws -> String {
        let syncs = devices.map { (directory: $0.directory.url, environment: $0.environment) }
        let compact = (arguments: ["compact"] + server.backendArguments, directory: server.directory.url)
        let results = try await withThrowingTaskGroup(of: (Bool, RunResult).self) { group in
            group.addTask { (true, try await runProcess(Built.server, compact.arguments, in: compact.directory)) }
            for sync in syncs {
                group.addTask {
                    (
                        false,
                        try await runProcess(Built.outpost, ["sync"], in: sync.directory, environment: sync.environment)
                    )
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (_, result) in results { #expect(result.status == 0, "\(result)") }
        return results.first { $0.0 }?.1.stdout ?? ""
    }

    /// A school's site device that forgot its role (``ForgetfulSchool``) settles a conflict on a patient it
    /// registered, which a site device may not: refused and held aside. `devices list` shows the device's refused
    /// count as it reported it; discarded, the change is withdrawn on the device at once (its log holds every change
    /// of the record: the conflict shows again) and the next sync reports none.
    @Test(arguments: Backend.all)
    func devicesListShowsRefusedChangesAndADiscardIsWithdrawnOnTheDevice(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-compaction")
        let scene = try await ForgetfulSchool(on: server, in: folder)
        let (admin, school) = (scene.admin, scene.school)
        let subgroup = try #require(try await admin.rows("subgroup", "list").first?["id"] as? String)
        let registered = try await school.ok(
            "patient",
            "add",
            "givenName=Ana",
            "familyName=Ruiz",
            "birthDate=1980-01-02",
            "sex=female",
            "primaryTeam=\(scene.teams[0])",
            "subgroup=\(subgroup)",
            "status=active"
        )
        for device in [school, admin, scene.clinician] { try await device.ok("sync") }
        try await scene.conflict(on: registered)
        await #expect(try device(server, "school-1")["refused"] as? Int == 0)

        try scene.forgetRole()
        try await school.ok("patient", "set", registered, "birthDate=1975-05-06")
        await #expect(try scene.birthDates(school, registered) == ["1975-05-06"])
        let synced = try await school.ok("sync")
        #expect(synced.contains("refused: 1 change"), "\(synced)")
        let entry = try await device(server, "school-1")
        #expect(entry["refused"] as? Int == 1, "\(entry)")
        #expect(entry["outbox"] as? Int == 0, "\(entry)")
        let table = try await server.admin(["devices", "list"])
        #expect(table.stdout.contains("REFUSED"), "\(table.stdout)")

        let held: [[String: Any]] = try json(try await school.ok("outbox", "list", "--json"))
        let id = try #require(held.first?["id"] as? String)
        let discarded = try await school.ok("outbox", "discard", id, "--reason", "not mine to settle")
        #expect(!discarded.contains("bootstraps again"), "its log holds every change of the record: \(discarded)")
        let conflicting = ["1970-01-02", "1971-03-04"]
        await #expect(try scene.birthDates(school, registered) == conflicting, "the discarded change no longer shows")
        await #expect(try school.status()["pendingChanges"] as? Int == 0)
        try await school.ok("sync")
        await #expect(try device(server, "school-1")["refused"] as? Int == 0)
        try await admin.ok("sync")
        await #expect(try scene.birthDates(admin, registered) == conflicting)
        let audit = try await school.ok("audit", "--patient", registered)
        #expect(audit.contains("discarded"), "the discard stays on record: \(audit)")

        // Its token revoked, the device stays listed, marked so (it cannot sync until given another token).
        #expect(entry["tokenRevokedAtMillis"] == nil, "\(entry)")
        let tokenID = try #require(entry["token"] as? String)
        try #require(try await server.admin(["token", "revoke", tokenID]).status == 0)
        await #expect(try device(server, "school-1")["tokenRevokedAtMillis"] as? Int != nil)
        let listed = try await server.admin(["devices", "list"])
        #expect(listed.stdout.contains("\(tokenID) (revoked)"), "\(listed.stdout)")
    }

    /// A laptop syncs, goes offline, edits, and is not seen for longer than the horizon while the office edits
    /// on. Compaction moves the floor past the laptop's checkpoint and drops superseded values. Back, the laptop
    /// is told its checkpoint expired, bootstraps again and pushes its edits: nothing is lost, and every export
    /// (office, laptop, a device that joins afterwards) is identical.
    @Test(arguments: Backend.all)
    func aDeviceOfflinePastTheHorizonComesBackAndLosesNothing(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-compaction")
        let url = server.url.absoluteString
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", url, "--token", server.adminToken, "--replica", "office-1")
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let laptop = Device("laptop", in: folder)
        let token = try await server.issueToken(role: "clinician")
        try await laptop.ok("init", "--server", url, "--token", token, "--replica", "laptop-1")
        try await laptop.ok("sync")
        let patients = try await ids(office, "patient", "list")
        try #require(patients.count >= 6)

        // Offline on the laptop: edits that never reach the server before compaction.
        for patient in patients.prefix(3) { try await laptop.ok("patient", "set", patient, "preferredLanguage=pt") }
        // The office edits on, each phone twice: the first values are superseded.
        for patient in patients.suffix(3) {
            try await office.ok("patient", "set", patient, "phone=(406) 555-0101")
            try await office.ok("patient", "set", patient, "phone=(406) 555-0102")
        }
        try await office.ok("sync")
        // The server counts a device as holding the lower of the checkpoints its last two pulls asked from (a page
        // it was sent may not be written yet): the office syncs on, as it would through the day.
        try await office.ok("sync")
        try await office.ok("sync")
        try age(server, "laptop-1", days: 100)

        let report = try await compact(server, ["--horizon=90d"])
        #expect(report.contains("expired (bootstrap again on their next sync): laptop-1"), "\(report)")
        #expect(report.contains("held back by office-1"), "\(report)")
        #expect(!report.contains("dropped 0 of"), "superseded phone values are dropped: \(report)")
        let audit = try await server.admin(["audit", "--json"])
        #expect(audit.stdout.contains("\"compact\""), "\(audit.stdout)")

        let result = try await laptop.run("sync")
        try #require(result.status == 0, "\(result)")
        let back = result.output
        #expect(back.contains("bootstrapped"), "\(back)")
        // The engine's warning, on a line of its own, as a person reads it.
        #expect(
            result.errorLines == [
                "outpost: warning: the server cannot serve this replica's checkpoint; bootstrapping again"
            ],
            "\(result)"
        )
        #expect(back.contains("pushed 3"), "\(back)")
        try await office.ok("sync")
        for patient in patients.prefix(3) { await #expect(try language(office, patient) == "pt") }
        let late = Device("late", in: folder)
        try await late.join(server, token: try await server.issueToken(role: "clinician"))
        let exported = try await office.ok("export")
        await #expect(try laptop.ok("export") == exported)
        await #expect(try late.ok("export") == exported)
    }

    /// Compaction while devices sync and edit: no export changes for a device that only syncs, a device that
    /// bootstraps afterwards reads the same, and after edits made during compaction every device converges.
    /// A device's own `outpost compact` drops acknowledged superseded values and keeps its unsent edit.
    @Test(arguments: Backend.all)
    func compactionUnderConcurrentSyncChangesNoExport(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-compaction")
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        var devices = [office]
        for name in ["laptop", "tablet"] {
            let device = Device(name, in: folder)
            try await device.join(server, token: try await server.issueToken(role: "clinician"))
            devices.append(device)
        }
        let patients = try await ids(office, "patient", "list")
        for (index, device) in devices.enumerated() {
            for patient in patients.prefix(4) {
                try await device.ok("patient", "set", patient, "phone=(406) 555-01\(index)\(index)")
            }
            try await device.ok("sync")
        }
        for device in devices { try await device.ok("sync") }
        let before = try await office.ok("export")
        for device in devices { await #expect(try device.ok("export") == before) }

        // Syncs with nothing new, while compaction runs: nothing changes.
        let report = try await concurrently(server, devices)
        #expect(report.contains("dropped"), "\(report)")
        for device in devices { await #expect(try device.ok("export") == before) }
        let fresh = Device("fresh", in: folder)
        try await fresh.join(server, token: try await server.issueToken(role: "clinician"))
        await #expect(try fresh.ok("export") == before)

        // Edits and syncs during another compaction: every device converges.
        for (index, device) in devices.enumerated() {
            try await device.ok("patient", "set", patients[4 + index], "preferredLanguage=fr")
        }
        _ = try await concurrently(server, devices)
        for device in devices + [fresh] { try await device.ok("sync") }
        for device in devices + [fresh] { try await device.ok("sync") }
        let converged = try await office.ok("export")
        #expect(converged != before)
        for device in devices + [fresh] { await #expect(try device.ok("export") == converged) }

        // A device compacts its own history: acknowledged superseded values go, the unsent edit stays.
        let laptop = devices[1]
        try await laptop.ok("patient", "set", patients[1], "preferredLanguage=it")
        try await laptop.ok("patient", "set", patients[1], "preferredLanguage=de")
        try await laptop.ok("sync")
        try await laptop.ok("patient", "set", patients[0], "preferredLanguage=es")
        let local: [String: Any] = try json(try await laptop.ok("compact", "--json"), as: [String: Any].self)
        #expect((local["dropped"] as? Int ?? 0) > 0, "\(local)")
        await #expect(try laptop.status()["pendingChanges"] as? Int == 1)
        await #expect(try language(laptop, patients[0]) == "es")
        try await laptop.ok("sync")
        try await office.ok("sync")
        await #expect(try language(office, patients[0]) == "es")
        await #expect(try laptop.ok("export") == (try office.ok("export")))
    }
}
