import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// `outpost-server backup` and `restore` with real server processes and `outpost` devices, on SQLite and (with
/// `OUTPOST_TEST_POSTGRES_URL`) PostgreSQL: a restore loses nothing a device still holds (the new epoch makes
/// devices bootstrap again and push again what the restored store lacks), a backup taken while a device pushes
/// is consistent, and what is not a backup, or a restore over a store without `--force`, changes nothing.
struct BackupRestoreTests {
    /// The first patient of a device's store.
    func firstPatient(_ device: Device) async throws -> String {
        let patients = try await device.ok("patient", "list", "--json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(patients.utf8)) as? [[String: Any]])
        return try #require(list.first?["id"] as? String)
    }

    /// The store's backup, through the command, while the server runs.
    func backup(_ server: TestServer, to path: String) async throws {
        let result = try await server.admin(["backup", "--out=\(path)"])
        try #require(result.status == 0, "backup: \(result)")
        #expect(result.output.hasPrefix("backed up 1 practice, "), "\(result.output)")
    }

    /// Stops the server, restores `path` over its store and starts it again on the same port.
    func restore(_ server: TestServer, from path: String) async throws {
        await server.stop()
        let result = try await server.admin(["restore", path, "--force"])
        try #require(result.status == 0, "restore: \(result)")
        #expect(result.output.contains("new epoch epo_"), "\(result.output)")
        try await server.start()
    }

    @Test(arguments: Backend.all)
    func aServerRestoredFromAnOlderBackupEndsWithEveryChangeAnyDeviceMade(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-restore")
        let url = server.url.absoluteString
        let office = Device("office", in: devices)
        let laptop = Device("laptop", in: devices)
        try await office.ok("init", "--server", url, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        try await laptop.ok("init", "--server", url, "--token", try server.issueToken(role: "clinician"))
        try await laptop.ok("sync")
        let patient = try await firstPatient(office)
        let early = try await office.ok("task", "add", patient, "kind=outreach", "title=Before the backup")
        try await office.ok("sync")

        let file = devices.path("nightly.backup")
        try await backup(server, to: file)

        // After the backup: both devices edit and sync; the laptop completes the office's task, each adds one,
        // and the laptop adds one more that it never pushes before the restore. The office also registers a
        // patient, which the laptop receives.
        let officeTask = try await office.ok("task", "add", patient, "kind=outreach", "title=Office, after")
        let registered = try await office.registerPatient(like: patient)
        try await office.ok("sync")
        try await laptop.ok("sync")
        try await laptop.ok("task", "done", early)
        let laptopTask = try await laptop.ok("task", "add", patient, "kind=outreach", "title=Laptop, after")
        try await laptop.ok("sync")
        try await office.ok("sync")
        let offline = try await laptop.ok("task", "add", patient, "kind=outreach", "title=Laptop, offline")
        try await laptop.ok("sync")
        try await office.ok("sync")
        // The reference: where a run without the restore ends.
        let reference = try await office.export()
        await #expect(try laptop.export() == reference)

        try await restore(server, from: file)
        var restored: [String: Any] = [:]
        for round in 0..<2 {
            // The laptop first: it bootstraps from a store that lacks the patient the office registered after the
            // backup, until the office pushes it again. The laptop keeps it meanwhile (a snapshot of a restored
            // store removes nothing a device holds).
            for device in [laptop, office] {
                let text = try await device.ok("sync", "--json")
                let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                if round == 0 { restored[device.name] = report }
                if round == 0 && device.name == "laptop" {
                    await #expect(try laptop.ok("patient", "show", registered).contains("Ruiz"))
                }
            }
        }
        for device in ["office", "laptop"] {
            let report = try #require(restored[device] as? [String: Any])
            #expect(report["serverRestored"] as? Bool == true, "\(device): \(report)")
            #expect(report["bootstrapped"] as? Bool == true, "\(device): \(report)")
            #expect((report["resent"] as? Int ?? 0) > 0, "\(device) pushed again what the backup lacked: \(report)")
        }
        // A device that joins now holds it all from the server alone.
        let fresh = Device("fresh", in: devices)
        try await fresh.join(server, token: server.adminToken)
        for device in [office, laptop, fresh] {
            await #expect(try device.export() == reference, "\(device.name) differs from the run without a restore")
        }
        for task in [officeTask, laptopTask, offline] {
            try await fresh.ok("task", "show", task)
        }
        // Once through, a sync is ordinary again.
        let again = try await office.ok("sync", "--json")
        #expect(!again.contains("\"serverRestored\":true"), "\(again)")
    }

    /// A school's site device settles a conflict, which a site device may not (its store forgot its role,
    /// ``ForgetfulSchool``): refused, while its later edits are stored; the backup is taken; an admin settles the
    /// conflict, the school retries its change, no longer a resolution, and the server stores it. Restored from the
    /// backup, the server lacks it although it holds later changes of the school: the school sends it again (its
    /// copy, even once the device compacted its history), after the admin's resolution is sent again, without ever
    /// showing it as refused, and after every device syncs twice the exports equal those of the run without the
    /// restore.
    @Test(arguments: Backend.all)
    func aRefusedChangeRetriedAndStoredAfterTheBackupIsSentAgainAfterTheRestore(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-restore-retried")
        let scene = try await ForgetfulSchool(on: server, in: devices)
        let (admin, school, patients) = (scene.admin, scene.school, scene.patients)
        try #require(patients.count >= 3)
        try await scene.conflict(on: patients[0])
        try scene.forgetRole()
        try await school.ok("patient", "set", patients[0], "birthDate=1975-05-06")
        try await school.ok("patient", "set", patients[1], "preferredLanguage=es")
        try await school.ok("patient", "set", patients[2], "preferredLanguage=pt")
        let refused = try await school.ok("sync")
        #expect(refused.contains("pushed 2,") && refused.contains("refused: 1 change"), "\(refused)")
        let held = try await school.rows("outbox", "list")
        let id = try #require(held.first?["id"] as? String)
        try #require(held.count == 1)
        try await admin.ok("sync")

        let file = devices.path("nightly.backup")
        try await backup(server, to: file)

        // After the backup: the cause goes (an admin settles the conflict), the change retried and stored.
        try await admin.ok("conflicts", "resolve", "\(patients[0]).birthDate", "--value", "1970-01-02")
        try await admin.ok("sync")
        try await school.ok("outbox", "retry", id)
        let retried = try await school.ok("sync")
        #expect(retried.contains("pushed 1,") && !retried.contains("refused"), "\(retried)")
        try await school.ok("patient", "set", patients[1], "preferredLanguage=en")
        try await school.ok("sync")
        try await admin.ok("sync")
        // The device compacts its history: the retried edit is acknowledged; nothing here needs its log row.
        try await school.ok("compact")
        let reference = (admin: try await admin.export(), school: try await school.export())
        await #expect(
            try scene.birthDates(admin, patients[0]) == ["1970-01-02", "1975-05-06"],
            "the retried edit reached the server"
        )

        try await restore(server, from: file)
        for round in 0..<2 {
            for device in [admin, school] {
                let text = try await device.ok("sync", "--json")
                let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                #expect(report["refused"] as? Int ?? 0 == 0, "\(device.name), round \(round): \(report)")
                if round == 0 { #expect(report["serverRestored"] as? Bool == true, "\(device.name): \(report)") }
            }
            // Never shown as refused: not in the outbox list, not in status, not in what the device reports.
            await #expect(try school.ok("outbox", "list") == "no refused changes held aside")
            await #expect(try school.status()["refusedChanges"] as? Int == 0)
            let listed = try await server.admin(["devices", "list", "--all", "--json"])
            let entries = try #require(
                try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
            )
            let entry = try #require(entries.first { $0["replica"] as? String == "school-1" })
            #expect(entry["refused"] as? Int == 0, "\(entry)")
        }
        let fresh = Device("fresh", in: devices)
        try await fresh.join(server, token: server.adminToken)
        await #expect(try fresh.export() == reference.admin, "the restored server lacks a change a device held")
        await #expect(try admin.export() == reference.admin)
        await #expect(try school.export() == reference.school)
    }

    /// A scoped nurse's edit to a patient that leaves her scope after the backup is sent again after a restore
    /// from it. The nurse removed the patient and kept her own acknowledged edits to it, sealed (the page named it
    /// in `leftScope`); after the restore only a change's author sends it again, and she does. She learns the
    /// patient left from a pull page, or from a snapshot's first page when she bootstraps again (a new server URL
    /// forgets her checkpoint), in either encoding.
    @Test(arguments: Backend.all, [("json", false), ("json", true), ("binary", false), ("binary", true)])
    func aScopedEditToAPatientThatLeftTheScopeAfterTheBackupIsSentAgainAfterARestore(
        backend: Backend,
        way: (encoding: String, bootstrapping: Bool)
    ) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-restore-left")
        let scene = try await ScopedNurse(on: server, in: devices, encoding: way.encoding)
        let (admin, nurse) = (scene.admin, scene.nurse)
        let patient = try await editThenHandOver(scene, on: server, backup: devices.path("nightly.backup"))
        if way.bootstrapping {
            try await nurse.ok("remote", "set", server.url.absoluteString + "/")
        }
        let removed = try await nurse.ok("sync")
        #expect(removed.contains("removed 1 patients"), "\(removed)")
        let reference = try await admin.export()
        #expect(reference.contains("\"pt\""), "the nurse's edit reached the server")

        try await restore(server, from: devices.path("nightly.backup"))
        for _ in 0..<2 {
            for device in [admin, nurse] { try await device.ok("sync") }
        }
        let fresh = Device("fresh", in: devices)
        try await fresh.join(server, token: server.adminToken)
        await #expect(try admin.export() == reference, "the admin's device keeps what it pulled")
        await #expect(try fresh.export() == reference, "the restored server has the nurse's edit again")
        #expect(try await !scene.nursePatients().contains(patient), "the patient stays off the nurse's device")
    }

    /// A purge erases everything of a patient on every device, the edits a device kept of a patient that left its
    /// scope included: the nurse's device drops them when the purge reaches it, and a server restored from a backup
    /// taken before both is not sent them (it holds the patient again, as before the purge, until the purge is
    /// made again: docs/backup.md).
    @Test(arguments: Backend.all)
    func aPurgeDropsTheEditsAScopedDeviceKeptOfAPatientThatLeftItsScope(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-restore-purged")
        let scene = try await ScopedNurse(on: server, in: devices)
        let (admin, nurse) = (scene.admin, scene.nurse)
        let patient = try await editThenHandOver(scene, on: server, backup: devices.path("nightly.backup"))
        let removed = try await nurse.ok("sync")
        #expect(removed.contains("removed 1 patients"), "\(removed)")
        let purged = try await server.admin(["purge", "patient", patient, "--reason", "court order 2026-131"])
        try #require(purged.status == 0, "\(purged)")
        for device in [admin, nurse] { try await device.ok("sync") }

        try await restore(server, from: devices.path("nightly.backup"))
        for _ in 0..<2 {
            for device in [admin, nurse] { try await device.ok("sync") }
        }
        let fresh = Device("fresh", in: devices)
        try await fresh.join(server, token: server.adminToken)
        let restored = try await fresh.export()
        // The purge, made after the backup, is made again by the restore: the backup's copy of the patient is gone.
        #expect(!restored.contains(patient), "the restore made the purge again")
        #expect(!restored.contains("\"pt\""), "the nurse's device did not send its edit to the purged patient again")
    }

    /// A restore does not undo what the replaced store recorded after the backup for security and the law: a token
    /// revoked since stays revoked, a patient purged since stays purged (one the backup holds is erased again, one
    /// registered after it is kept as erased, so a device that still holds it cannot push it back), and the audit
    /// entries saying so are kept.
    @Test(arguments: Backend.all)
    func aRestoreKeepsTheRevocationsPurgesAndAuditMadeAfterTheBackup(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-restore-kept")
        let office = Device("office", in: devices)
        let tablet = Device("tablet", in: devices)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let lost = try await server.issueTokenEntry(role: "clinician")
        let laptop = Device("laptop", in: devices)
        try await laptop.join(server, token: lost.secret)
        try await tablet.join(server, token: server.adminToken)
        let held = try await firstPatient(office)
        let file = devices.path("nightly.backup")
        try await backup(server, to: file)

        // After the backup: the laptop is lost and its token revoked; a patient the backup holds and one registered
        // since are purged. The tablet received the new patient and has not synced since.
        let registered = try await office.registerPatient(like: held)
        try await office.ok("sync")
        try await tablet.ok("sync")
        #expect(try await tablet.export().contains(registered))
        let revoked = try await server.admin(["token", "revoke", lost.id])
        try #require(revoked.status == 0, "\(revoked)")
        for patient in [held, registered] {
            let purged = try await server.admin(["purge", "patient", patient, "--reason", "court order 2026-131"])
            try #require(purged.status == 0, "\(purged)")
        }

        await server.stop()
        let result = try await server.admin(["restore", file, "--force"])
        try #require(result.status == 0, "restore: \(result)")
        #expect(result.output.contains("1 token revoked again \(lost.id)"), "\(result.output)")
        #expect(result.output.contains("2 purges made again \(held), \(registered)"), "\(result.output)")
        try await server.start()

        let refused = try await laptop.run("sync")
        #expect(refused.status != 0 && refused.stderr.contains("revoked"), "\(refused)")
        for _ in 0..<2 {
            for device in [office, tablet] { try await device.ok("sync") }
        }
        let fresh = Device("fresh", in: devices)
        try await fresh.join(server, token: server.adminToken)
        let restored = try await fresh.export()
        #expect(!restored.contains(held) && !restored.contains(registered), "a purge was undone by the restore")
        let purges = try await server.admin(["purge", "list"])
        #expect(purges.output.contains(held) && purges.output.contains(registered), "\(purges)")
        let audit = try await server.admin(["audit", "--json"])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]])
        // The replaced store's revocation, carried over as it was, and the restored store's own, made again.
        let revocations = entries.filter {
            $0["action"] as? String == "token.revoke" && $0["subject"] as? String == lost.id
        }
        #expect(revocations.count == 2, "\(revocations)")
        #expect(Set(revocations.compactMap { $0["atMillis"] as? Int }).count == 2, "each keeps its own time")
        #expect(entries.contains { $0["action"] as? String == "restore.carry-over" })
    }

    /// The nurse's scene after a backup to `backup`: the nurse edits her first patient (`preferredLanguage=pt`)
    /// and syncs; the admin pulls the edit and hands the patient to the other team, and syncs. The nurse has not
    /// synced since. Returns the patient.
    private func editThenHandOver(
        _ scene: ScopedNurse,
        on server: TestServer,
        backup file: String
    ) async throws
        -> String
    {
        let (admin, nurse) = (scene.admin, scene.nurse)
        let patient = try #require(try await scene.nursePatients().first)
        try await backup(server, to: file)
        try await nurse.ok("patient", "set", patient, "preferredLanguage=pt")
        try await nurse.ok("sync")
        try await admin.ok("sync")
        try await admin.ok("patient", "set", patient, "primaryTeam=\(scene.teams[1])")
        try await admin.ok("sync")
        return patient
    }

    @Test(arguments: Backend.all)
    func aBackupTakenWhileADevicePushesIsConsistentAndRestores(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-backup-load")
        let token = server.adminToken
        let office = try LocalReplica("office", in: devices)
        try TinyPractice.load(into: office.care)
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        for index in 0..<60 {
            try office.care.update([.append(patient, "notes", .string("Follow-up note \(index)"))])
        }
        let total = try office.store.status().pendingChanges
        // The office pushes at most ten changes at a time (a batch ends at a record's end); `outpost-server backup`
        // runs in the middle, once the third push is answered, and another one concurrently with the whole sync.
        let firstThree = try office.store.pushBatchSizes(limit: 10, count: 3).reduce(0, +)
        let file = devices.path("during.backup")
        let concurrent = devices.path("concurrent.backup")
        let backup = ["backup"] + server.backendArguments
        let folder = devices.url
        let transport = FaultTransport(
            server.transport(token),
            after: { request, count, _ in
                guard request.path == Wire.Path.push, count == 3 else { return }
                let result = try ChildProcess.runBlocking(
                    Built.server,
                    backup + ["--out=\(file)"],
                    in: folder,
                    environment: ProcessInfo.processInfo.environment
                )
                guard result.status == 0 else { throw HarnessError(description: "backup: \(result.stderr)") }
            }
        )
        async let concurrentRun = runProcess(Built.server, backup + ["--out=\(concurrent)"], in: folder)
        let report = try await office.engine(transport, pushBatch: 10).sync()
        #expect(report.pushed == total)
        let reference = try office.export()
        let concurrentResult = try await concurrentRun
        try #require(concurrentResult.status == 0, "\(concurrentResult)")

        try await restore(server, from: file)
        // Consistent: the restored records (a snapshot) are exactly its feed replayed from the start, and the
        // feed holds the first three pushes, no more, no less.
        #expect(
            try await server.feed(token).count == firstThree,
            "the backup holds the three pushes answered before it"
        )
        try await expectRecordsAreTheFeedReplayed(server, token: token, in: devices)

        // Restorable: the office pushes again what the backup missed, and a device that joins ends equal to it.
        let again = try await office.engine(server.transport(token)).sync()
        #expect(
            again.serverRestored && again.resent == total - firstThree && again.pushed == total - firstThree,
            "\(again)"
        )
        _ = try await office.engine(server.transport(token)).sync()
        let fresh = try LocalReplica("fresh", in: devices)
        _ = try await fresh.engine(server.transport(token)).sync()
        #expect(try fresh.export() == reference)
        #expect(try office.export() == reference)
        #expect(try await server.feed(token).count == total)

        // The backup taken concurrently with the sync restores into another server, just as consistent.
        let other = try await TestServer(backend: backend)
        try await restore(other, from: concurrent)
        try await expectRecordsAreTheFeedReplayed(other, token: token, in: devices)
    }

    /// A restore the device has not seen when it pushes: between a sync's session and its push, or during
    /// `outpost sync --watch`, which reads the session once. The push must not be stored in the restored store:
    /// its answer would acknowledge the device's counters up to this push, and the changes the backup lacks
    /// below them (stored, and acknowledged, after the backup) would never be sent again. The push is refused
    /// (`410 checkpoint_expired`), and the device reads the session again, puts back what the server lacks and
    /// pushes it all. With `besidePushFrom` 1 the device pulls beside its push (``SyncEngine/Options``).
    @Test(arguments: Backend.all, [1, 1_000])
    func aPushAfterARestoreTheDeviceHasNotSeenLosesNothingTheBackupLacks(
        backend: Backend,
        besidePushFrom: Int
    ) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-restore-push")
        let token = server.adminToken
        let office = try LocalReplica("office", in: devices)
        try TinyPractice.load(into: office.care)
        _ = try await office.engine(server.transport(token)).sync()
        let file = devices.path("before.backup")
        try await backup(server, to: file)
        // After the backup: an edit the server stores and acknowledges, then one still in the outbox.
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        _ = try office.care.update([.append(patient, "notes", .string("Stored after the backup"))])
        _ = try await office.engine(server.transport(token)).sync()
        _ = try office.care.update([.append(patient, "notes", .string("Pushed after the restore"))])
        let reference = try office.export()

        // The server is restored once the sync has read the session, before its first push is sent.
        let reached = AsyncStream<Void>.makeStream()
        let resume = AsyncStream<Void>.makeStream()
        let transport = PausingTransport(server.transport(token), reached: reached.continuation, resume: resume.stream)
        let engine = office.engine(transport, pullBesidePushFrom: besidePushFrom)
        async let syncing = engine.sync()
        for await _ in reached.stream { break }
        try await restore(server, from: file)
        resume.continuation.yield()
        let report = try await syncing
        #expect(report.serverRestored, "\(report)")
        #expect(report.resent == 1, "the edit stored after the backup was sent again: \(report)")
        #expect(transport.snapshots.withLock { $0 } == 1, "one bootstrap, in the new epoch")
        let session = try await server.request("GET", "/v1/session", token: token).1
        let epoch = try Wire.makeDecoder().decode(SessionInfo.self, from: session).epoch
        #expect(try office.store.serverEpoch() == epoch, "the new epoch is kept")

        _ = try await office.engine(server.transport(token)).sync()
        let fresh = try LocalReplica("fresh", in: devices)
        _ = try await fresh.engine(server.transport(token)).sync()
        #expect(try fresh.export() == reference, "the restored server lacks an edit the device made")
        #expect(try office.export() == reference)
    }

    /// Checks that a server's records (a snapshot bootstrap) are exactly its feed replayed from the start.
    func expectRecordsAreTheFeedReplayed(
        _ server: TestServer,
        token: String,
        in devices: TemporaryDirectory
    )
        async throws
    {
        let feed = try await server.feed(token)
        let snapshot = try LocalReplica("snapshot-\(server.port)", in: devices)
        _ = try await snapshot.engine(server.transport(token), retries: 2).sync()
        let replay = try LocalReplica("replay-\(server.port)", in: devices)
        try replay.store.applyPage(changes: feed, records: [], removed: [], checkpoint: nil)
        #expect(try replay.export() == snapshot.export(), "the backup's records and feed disagree")
    }

    @Test(arguments: Backend.all)
    func whatIsNotABackupAndARestoreOverAStoreWithoutForceChangeNothing(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-restore-refused")
        let token = server.adminToken
        let office = Device("office", in: devices)
        try await office.join(server, token: token)
        let file = devices.path("good.backup")
        try await backup(server, to: file)
        let holdings = try await server.holdings(token)
        let session = try await server.request("GET", "/v1/session", token: token).1
        let epoch = try #require(try Wire.makeDecoder().decode(SessionInfo.self, from: session).epoch)

        // A backup file is never overwritten.
        let twice = try await server.admin(["backup", "--out=\(file)"])
        #expect(twice.status == 2 && twice.stderr.contains("exists"), "\(twice)")

        // Refused while the server runs: its lock on the SQLite directory, its connections to PostgreSQL.
        let running = try await server.admin(["restore", file, "--force"])
        #expect(running.status == 1, "\(running)")
        #expect(running.stderr.contains(backend == .sqlite ? "a server is running on" : "open to this database"))
        await server.stop()
        let garbage = devices.path("garbage.backup")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: garbage))
        let notSQLite = try await server.admin(["restore", garbage, "--force"])
        #expect(notSQLite.status == 2, "\(notSQLite)")
        #expect(notSQLite.stderr.contains("is not an Outpost server backup"), "\(notSQLite)")
        #expect(notSQLite.stderr.split(separator: "\n").count == 1, "one line: \(notSQLite.stderr)")
        // A SQLite database that is not a backup: a device's store.
        let deviceStore = try await server.admin(["restore", office.store, "--force"])
        #expect(deviceStore.status == 2, "\(deviceStore)")
        #expect(deviceStore.stderr.contains("is not an Outpost server backup"), "\(deviceStore)")
        let missing = try await server.admin(["restore", devices.path("none.backup"), "--force"])
        #expect(missing.status == 2 && missing.stderr.contains("does not exist"), "\(missing)")
        let withoutForce = try await server.admin(["restore", file])
        #expect(withoutForce.status == 2, "\(withoutForce)")
        #expect(withoutForce.stderr.contains("--force"), "\(withoutForce)")

        try await server.start()
        #expect(try await server.holdings(token) == holdings, "a refused restore changed the store")
        let after = try await server.request("GET", "/v1/session", token: token).1
        #expect(try Wire.makeDecoder().decode(SessionInfo.self, from: after).epoch == epoch)
    }

    @Test(.enabled(if: TestDatabase.isWanted, "OUTPOST_TEST_POSTGRES_URL is unset"))
    func aSQLiteBackupRestoresIntoPostgreSQLAndAPostgreSQLBackupIsNotTakenBySQLite() async throws {
        let sqlite = try await TestServer(backend: .sqlite)
        let devices = try TemporaryDirectory("outpost-backup-kinds")
        let token = sqlite.adminToken
        let office = Device("office", in: devices)
        try await office.ok("init", "--server", sqlite.url.absoluteString, "--token", token)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let file = devices.path("sqlite.backup")
        try await backup(sqlite, to: file)
        await sqlite.stop()

        let postgres = try await TestServer(backend: .postgres)
        try await restore(postgres, from: file)
        let database = try #require(postgres.database)
        try Self.expectEachRecordCreatedOnce(database.url)
        try await office.ok("remote", "set", postgres.url.absoluteString)
        try await office.ok("sync")
        let fresh = Device("fresh", in: devices)
        try await fresh.join(postgres, token: token)
        await #expect(try fresh.export() == office.export())

        let back = devices.path("postgres.backup")
        try await backup(postgres, to: back)
        let refused = try await sqlite.admin(["restore", back, "--force"])
        #expect(refused.status == 2 && refused.stderr.contains("is a backup of a PostgreSQL store"), "\(refused)")
        let again = try await TestServer(backend: .postgres)
        try await restore(again, from: back)
        try Self.expectEachRecordCreatedOnce(try #require(again.database).url)
    }

    /// Whether a change creates its record (what a layout-3 pull page names in full) survived the copy: exactly
    /// one change per record says so, among more changes than records. Before the copy kept it, every change said so.
    static func expectEachRecordCreatedOnce(_ url: String) throws {
        let counts = try TestDatabase.psql(
            url,
            "SELECT count(*), count(*) FILTER (WHERE creates), count(DISTINCT (type, id)) FROM change"
        )
        let numbers = counts.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").compactMap {
            Int($0)
        }
        try #require(numbers.count == 3, "\(counts)")
        #expect(numbers[0] > numbers[2], "more changes than records: \(counts)")
        #expect(numbers[1] == numbers[2], "one creating change per record: \(counts)")
    }

    @Test func aPullOrAPushFromAnotherEpochIsToldToBootstrapAgain() async throws {
        let server = try await TestServer()
        let token = server.adminToken
        let devices = try TemporaryDirectory("outpost-epoch")
        let office = Device("office", in: devices)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", token)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let session = try await server.request("GET", "/v1/session", token: token).1
        let epoch = try #require(try Wire.makeDecoder().decode(SessionInfo.self, from: session).epoch)
        #expect(epoch.hasPrefix("epo_") && epoch.count == 36)
        let head = try await server.feed(token).count
        try #require(head > 0)
        let other = "epo_" + String(repeating: "0", count: 32)
        let stale = try await server.request(
            "GET",
            "/v1/changes?since=1",
            token: token,
            headers: [Wire.epochHeader: other]
        )
        #expect(stale.0 == 410, "\(stale)")
        let body = try Wire.makeDecoder().decode(ErrorBody.self, from: stale.1)
        #expect(body.error.code == .checkpointExpired && body.error.message.contains("restored from a backup"))
        // A push of changes from another epoch stores nothing; one with no changes (what a device asks to learn
        // what the server holds of it) is answered.
        let office2 = try LocalReplica("office-2", in: devices)
        _ = try await office2.engine(server.transport(token)).sync()
        let patient = RecordRef(type: "patient", id: try await firstPatient(office))
        let edits = try office2.care.update([.append(patient, "notes", .string("Seen at home"))])
        for encoding in ["json", "binary"] {
            let push = PushRequest(replica: office2.store.replicaID, changes: edits)
            let body = encoding == "json" ? try Wire.makeEncoder().encode(push) : Data(push.binaryEncoded())
            var headers = [Wire.epochHeader: other]
            if encoding == "binary" { headers["Content-Type"] = BinaryWire.contentType }
            let refused = try await server.request("POST", "/v1/push", token: token, body: body, headers: headers)
            #expect(refused.0 == 410, "\(encoding): \(refused)")
            let error = try Wire.makeDecoder().decode(ErrorBody.self, from: refused.1).error
            #expect(error.code == .checkpointExpired && error.field == Wire.epochHeader, "\(encoding): \(error)")
            #expect(error.message.contains("restored from a backup"))
        }
        #expect(try await server.feed(token).count == head, "a push of another epoch stored nothing")
        let question = try Wire.makeEncoder().encode(PushRequest(replica: office2.store.replicaID, changes: []))
        let asked = try await server.request(
            "POST",
            "/v1/push",
            token: token,
            body: question,
            headers: [Wire.epochHeader: other]
        )
        #expect(asked.0 == 200, "\(asked)")
        let accepted = try await server.request(
            "POST",
            "/v1/push",
            token: token,
            body: try Wire.makeEncoder().encode(PushRequest(replica: office2.store.replicaID, changes: edits)),
            headers: [Wire.epochHeader: epoch]
        )
        #expect(accepted.0 == 200, "a push of this epoch is stored: \(accepted)")
        #expect(try await server.feed(token).count == head + edits.count)

        // The same epoch, no epoch (a client before epochs) and a pull from the start are served.
        for (path, headers) in [
            ("/v1/changes?since=1", [Wire.epochHeader: epoch]), ("/v1/changes?since=1", [:]),
            ("/v1/changes?since=0", [Wire.epochHeader: other]),
        ] {
            let answer = try await server.request("GET", path, token: token, headers: headers)
            #expect(answer.0 == 200, "\(path) \(headers)")
        }
    }
}

/// Forwards every exchange to a real transport, except that the first push waits: once the session is answered
/// (a sync that read a session before reads it beside its first push), it says so on `reached`, and is sent once
/// `resume` yields (the test restores the server meanwhile).
private final class PausingTransport: SyncTransport {
    let base: any SyncTransport
    let reached: AsyncStream<Void>.Continuation
    let resume: Mutex<AsyncStream<Void>?>
    let answered = AsyncStream<Void>.makeStream()
    let waitsForTheSession = Mutex(true)
    /// How many snapshots were begun (a snapshot page asked for without `after`).
    let snapshots = Mutex(0)

    init(_ base: any SyncTransport, reached: AsyncStream<Void>.Continuation, resume: AsyncStream<Void>) {
        self.base = base
        self.reached = reached
        self.resume = Mutex(resume)
    }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        if request.path == Wire.Path.push, let resume = resume.withLock({ $0.take() }) {
            if waitsForTheSession.withLock({ $0 }) { for await _ in answered.stream { break } }
            reached.yield()
            reached.finish()
            for await _ in resume { break }
        }
        if request.path == Wire.Path.snapshot, !request.query.contains(where: { $0.0 == "after" }) {
            snapshots.withLock { $0 += 1 }
        }
        let response = try await base.send(request)
        if request.path == Wire.Path.session, waitsForTheSession.withLock({ $0 }) {
            waitsForTheSession.withLock { $0 = false }
            answered.continuation.yield()
            answered.continuation.finish()
        }
        return response
    }
}
