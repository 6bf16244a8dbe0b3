import Foundation
import GRDB
import OutpostTestSupport
import Testing

/// Two practices, four devices with different scopes, on the real server.
@Suite(.serialized)
struct ScopeEndToEndTests {
    func list(_ device: Device, _ arguments: String...) async throws -> [[String: Any]] {
        let text = try await device.ok(arguments: arguments + ["--json"])
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
    }

    func ids(_ device: Device, _ arguments: String...) async throws -> Set<String> {
        let text = try await device.ok(arguments: arguments + ["--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        return Set(rows.compactMap { $0["id"] as? String })
    }

    /// An admin replica that loaded the small practice and pushed it.
    func practiceAdmin(
        _ server: TestServer,
        in folder: TemporaryDirectory,
        encoding: String? = nil
    ) async throws -> Device {
        let admin = Device("admin", in: folder, encoding: encoding)
        try await admin.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await admin.ok("import", Built.fixture("practice-small.json"))
        try await admin.ok("sync")
        return admin
    }

    /// The tasks of `patients`, as the admin's full replica holds them.
    func tasks(of patients: Set<String>, in admin: Device) async throws -> Set<String> {
        Set(
            try await list(admin, "task", "list").filter {
                patients.contains(($0["fields"] as? [String: Any])?["patient"] as? String ?? "")
            }.compactMap { $0["id"] as? String }
        )
    }

    /// Run with both sync encodings, with and without gzip: scoped pulls carry records and removals in each.
    @Test(arguments: Backend.all, Device.wires)
    func eachDeviceSeesExactlyItsScopeAndPatientsMoveInAndOutWithoutAResync(
        backend: Backend,
        encoding: String
    ) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-scopes")
        let url = server.url.absoluteString
        let admin = try await practiceAdmin(server, in: folder, encoding: encoding)
        let teams = try await list(admin, "team", "list").compactMap { $0["id"] as? String }.sorted()
        let sites = try await list(admin, "site", "list").compactMap { $0["id"] as? String }.sorted()
        try #require(teams.count >= 2 && !sites.isEmpty)
        let team = teams[0]
        let otherTeam = teams[1]
        let school = sites[0]

        let nurse = Device("nurse", in: folder, encoding: encoding)
        try await nurse.join(server, token: try server.issueToken(role: "clinician", extra: ["--teams", team]))
        let kiosk = Device("kiosk", in: folder, encoding: encoding)
        try await kiosk.join(server, token: try server.issueToken(role: "site-device", extra: ["--sites", school]))
        // Another practice on the same server.
        let other = try await server.admin(["practice", "add", "Other practice"]).output
        let stranger = Device("stranger", in: folder, encoding: encoding)
        try await stranger.ok("init", "--server", url, "--token", try server.issueToken(role: "admin", practice: other))
        try await stranger.ok("site", "add", "name=Other clinic", "kind=clinic")
        try await stranger.ok("sync")

        // Each sees exactly its scope: the practice's structure, and the patients (with their tasks) of its
        // team or site.
        let teamPatients = try await ids(admin, "patient", "list", "--team", team)
        let sitePatients = try await ids(admin, "patient", "list", "--site", school)
        try #require(!teamPatients.isEmpty && !sitePatients.isEmpty)
        await #expect(try ids(nurse, "patient", "list") == teamPatients)
        await #expect(try ids(nurse, "task", "list") == tasks(of: teamPatients, in: admin))
        await #expect(try ids(kiosk, "patient", "list") == sitePatients)
        await #expect(try ids(kiosk, "task", "list") == tasks(of: sitePatients, in: admin))
        for device in [nurse, kiosk] {
            await #expect(try ids(device, "site", "list") == Set(sites))
            await #expect(try ids(device, "team", "list") == Set(teams))
        }
        await #expect(try ids(admin, "patient", "list").count > teamPatients.count)
        await #expect(try ids(stranger, "patient", "list").isEmpty)
        await #expect(try ids(stranger, "site", "list").count == 1)
        try await admin.ok("sync")
        await #expect(try ids(admin, "site", "list") == Set(sites))

        // A patient of the nurse's team: the nurse edits it offline while the admin moves it to another
        // team. The nurse's edit reaches the server, then the patient leaves the nurse's laptop.
        let moving = try #require(teamPatients.sorted().first)
        let movingTasks = try await tasks(of: [moving], in: admin)
        try await nurse.ok("patient", "set", moving, "preferredLanguage=es")
        try await admin.ok("patient", "set", moving, "primaryTeam=\(otherTeam)")
        try await admin.ok("sync")
        let report = try await nurse.ok("sync")
        #expect(report.contains("pushed 1"), "\(report)")
        #expect(report.contains("removed 1 patients"), "\(report)")
        await #expect(try ids(nurse, "patient", "list") == teamPatients.subtracting([moving]))
        await #expect(try ids(nurse, "task", "list").isDisjoint(with: movingTasks))
        await #expect(try nurse.status()["pendingChanges"] as? Int == 0)
        try await admin.ok("sync")
        let moved = try await #require(
            try JSONSerialization.jsonObject(with: Data(try admin.ok("patient", "show", moving, "--json").utf8))
                as? [String: Any]
        )
        #expect((moved["fields"] as? [String: Any])?["preferredLanguage"] as? String == "es")

        // Back to the nurse's team: the patient and its tasks arrive again, without a resync.
        try await admin.ok("patient", "set", moving, "primaryTeam=\(team)")
        try await admin.ok("sync")
        let back = try await nurse.ok("sync", "--json")
        let moves = try #require(try JSONSerialization.jsonObject(with: Data(back.utf8)) as? [String: Any])
        #expect(moves["bootstrapped"] as? Bool == false)
        await #expect(try ids(nurse, "patient", "list") == teamPatients)
        await #expect(try ids(nurse, "task", "list") == tasks(of: teamPatients, in: admin))

        // The stranger still holds nothing of this practice, and this practice nothing of the stranger's.
        try await stranger.ok("sync")
        await #expect(try ids(stranger, "patient", "list").isEmpty)
        await #expect(!(try stranger.export()).contains(moving))
        await #expect(!(try nurse.export()).contains("Other clinic"))
    }

    /// A nurse registers a patient for another team from the CLI and edits it before she syncs: her sync stores
    /// both and removes the patient from her laptop, nothing refused, and the admin holds it with her edit. Before,
    /// her laptop kept the patient as she registered it, stale, and refused her later edits (protocol/README.md
    /// section 11).
    @Test(arguments: Backend.all)
    func aPatientANurseRegistersForAnotherTeamLeavesHerLaptopAtHerSync(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-scopes")
        let scene = try await ScopedNurse(on: server, in: folder)
        let (admin, nurse) = (scene.admin, scene.nurse)
        let registered = try await scene.registerForTheOtherTeam("Ana", "preferredLanguage=en")
        // Each write says the patient is outside her scope and leaves at the next sync; one of her own team's does not.
        let edited = try await nurse.run("patient", "set", registered, "preferredLanguage=fr")
        #expect(edited.status == 0, "\(edited)")
        #expect(
            edited.errorLines == [
                "outpost: note: \(registered) is outside this replica's scope (neither its team nor its sites are its "
                    + "token's): the next sync stores it on the server, then removes it from this replica; the server "
                    + "keeps it for the practice"
            ],
            "\(edited)"
        )
        let own = try #require(try await scene.nursePatients().first { $0 != registered })
        let ownEdit = try await nurse.run("patient", "set", own, "preferredLanguage=fr")
        #expect(ownEdit.status == 0 && ownEdit.errorLines.isEmpty, "\(ownEdit)")
        await #expect(try nurse.ok("patient", "show", registered).contains("Ana"))
        let report = try await nurse.ok("sync")
        #expect(report.contains("removed 1 patients") && !report.contains("refused"), "\(report)")
        await #expect(try nurse.run("patient", "show", registered).status == 2)
        await #expect(try nurse.status()["pendingChanges"] as? Int == 0)
        await #expect(try nurse.status()["refusedChanges"] as? Int == 0)
        try await admin.ok("sync")
        await #expect(try ids(admin, "patient", "list", "--team", scene.teams[1]).contains(registered))
        let shown = try await admin.ok("patient", "show", registered, "--json")
        let record = try #require(try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any])
        #expect((record["fields"] as? [String: Any])?["preferredLanguage"] as? String == "fr", "\(shown)")

        // Patients a FHIR import creates unplaced (no team) are outside her scope too: the import says they leave
        // at her next sync unless she assigns them, and they do; the practice keeps them.
        let imported = try await nurse.run("fhir", "import", Built.fixture("fhir/ndjson/Patient.ndjson"))
        #expect(imported.stdout.contains("await assignment"), "\(imported)")
        #expect(imported.stderr.contains("note: this replica's token sees only its scope"), "\(imported)")
        let unplaced = try await ids(nurse, "patient", "list").subtracting(try ids(admin, "patient", "list"))
        try #require(!unplaced.isEmpty)
        let handed = try await nurse.ok("sync")
        #expect(handed.contains("removed \(unplaced.count) patients") && !handed.contains("refused"), "\(handed)")
        await #expect(try ids(nurse, "patient", "list").isDisjoint(with: unplaced))
        try await admin.ok("sync")
        await #expect(try ids(admin, "patient", "list").isSuperset(of: unplaced))
    }

    @Test(arguments: Backend.all, ["team", "site"])
    func aScopedTokenCannotPushEditsToAPatientOutsideItsScopeNorPullWithoutItsReplica(
        backend: Backend,
        scopedBy kind: String
    )
        async throws
    {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-scopes")
        let url = server.url.absoluteString
        let admin = try await practiceAdmin(server, in: folder)
        let token: String
        let outside: String
        if kind == "team" {
            let teams = try await list(admin, "team", "list").compactMap { $0["id"] as? String }.sorted()
            token = try await server.issueToken(role: "clinician", extra: ["--teams", teams[0]])
            outside = try await #require(try ids(admin, "patient", "list", "--team", teams[1]).sorted().first)
        } else {
            let sites = try await list(admin, "site", "list").compactMap { $0["id"] as? String }.sorted()
            let everyone = try await ids(admin, "patient", "list")
            var found: String?
            for candidate in sites {
                let seen = try await ids(admin, "patient", "list", "--site", candidate)
                if !seen.isEmpty && seen != everyone {
                    found = candidate
                    break
                }
            }
            let site = try #require(found, "a site that some patients but not all are seen at")
            token = try await server.issueToken(role: "site-device", extra: ["--sites", site])
            let away = try await ids(admin, "patient", "list").subtracting(
                try ids(admin, "patient", "list", "--site", site)
            )
            outside = try #require(away.sorted().first)
        }

        // A raw push under the scoped token, editing a patient of another team: refused, nothing stored.
        let nurse = Device("nurse", in: folder)
        try await nurse.ok("init", "--server", url, "--token", token)
        try await nurse.ok("sync")
        let before = try await server.request("GET", "/v1/changes?since=0&limit=5000", token: server.adminToken)
        let change = """
            {"replica":"rogue-device","changes":[{"id":"rogue-device/1","record":{"type":"patient","id":"\(outside)"},\
            "field":"preferredLanguage","op":"assign","value":"fr","replaces":[],"clock":{"ms":\(UInt64(Date().timeIntervalSince1970 * 1000)),"c":0},\
            "author":"replica:rogue-device"}]}
            """
        let (status, body) = try await server.request("POST", "/v1/push", token: token, body: Data(change.utf8))
        #expect(status == 403)
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains("out_of_scope"), "\(text)")
        #expect(!text.contains("preferredLanguage\":\"fr"))
        let after = try await server.request("GET", "/v1/changes?since=0&limit=5000", token: server.adminToken)
        #expect(before.1 == after.1)
        // A pull without the device's replica id is refused for a scoped token.
        let (pullStatus, _) = try await server.request("GET", "/v1/changes?since=0", token: token)
        #expect(pullStatus == 400)
    }

    /// The small practice pushed by an admin device; a nurse's device scoped to its first team and an office's
    /// device for the whole practice, each bootstrapped; the team's first patient, whom the purge tests erase.
    func purgeScene(
        on backend: Backend,
        _ name: String
    ) async throws -> (
        server: TestServer, folder: TemporaryDirectory, admin: Device, nurse: Device, office: Device, patient: String
    ) {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory(name)
        let admin = try await practiceAdmin(server, in: folder)
        let team = try await #require(try list(admin, "team", "list").compactMap { $0["id"] as? String }.sorted().first)
        let nurse = Device("nurse", in: folder)
        try await nurse.join(server, token: try server.issueToken(role: "clinician", extra: ["--teams", team]))
        let office = Device("office", in: folder)
        try await office.join(server, token: server.adminToken)
        let patient = try await #require(try ids(admin, "patient", "list", "--team", team).sorted().first)
        return (server, folder, admin, nurse, office, patient)
    }

    @Test(arguments: Backend.all) func aLegalPurgeErasesThePatientFromTheServerAndEveryDevice(
        backend: Backend
    ) async throws {
        let (server, folder, admin, nurse, office, patient) = try await purgeScene(on: backend, "outpost-purge")
        let shown = try await #require(
            try JSONSerialization.jsonObject(with: Data(try admin.ok("patient", "show", patient, "--json").utf8))
                as? [String: Any]
        )
        // The medical record number is unique to the patient (names are not).
        let mrn = try #require((shown["fields"] as? [String: Any])?["mrn"] as? String)
        let owned = try await tasks(of: [patient], in: admin)
        try #require(!owned.isEmpty)

        let refused = try await server.admin(["purge", "patient", patient])
        #expect(refused.status == 2, "a purge needs a reason: \(refused)")
        let purged = try await server.admin(["purge", "patient", patient, "--reason", "court order 2026-117"])
        try #require(purged.status == 0, "\(purged)")

        // The server holds nothing of the patient: not in the feed, not in a snapshot.
        for path in ["/v1/changes?since=0&limit=5000", "/v1/snapshot?limit=5000"] {
            let (_, body) = try await server.request("GET", path, token: server.adminToken)
            let text = String(decoding: body, as: UTF8.self)
            // (The patient's id may appear only in a pull's `removed`, which tells devices to erase it.)
            let leaked = text.contains(mrn) || owned.contains { text.contains($0) }
            #expect(!leaked, "\(path) still holds the purged patient")
        }
        // Every device removes it on its next sync, scoped or not.
        for device in [admin, nurse, office] {
            try await device.ok("sync")
            await #expect(!(try ids(device, "patient", "list")).contains(patient), "\(device.name)")
            await #expect(try ids(device, "task", "list").isDisjoint(with: owned), "\(device.name)")
            let leaked = try await device.export().contains(mrn)
            #expect(!leaked, "\(device.name)")
        }
        await #expect(try admin.export() == office.export())
        // A new device never sees it; the audit entry keeps the id, the reason and no patient data.
        let late = Device("late", in: folder)
        try await late.join(server, token: server.adminToken)
        await #expect(try late.export() == admin.export())
        let audit = try await server.admin(["purge", "list", "--json"])
        #expect(audit.stdout.contains(patient))
        #expect(audit.stdout.contains("court order 2026-117"))
        let leaked = audit.stdout.contains(mrn)
        #expect(!leaked)
    }

    /// Edits made offline to a patient an administrator purges meanwhile: a whole-practice device edits the patient
    /// and adds a task for it; a nurse scoped to its team adds a note to one of its tasks (a change without the
    /// task's `patient` field, which the server can tell only by the erased ids the purge kept). When they sync,
    /// the server acknowledges each such change and stores none: its feed and snapshots hold nothing of the
    /// patient, the devices remove it and keep nothing in their outboxes, and `outpost sync` says how many edits
    /// went.
    @Test(arguments: Backend.all) func editsMadeOfflineToAPatientPurgedMeanwhileAreAcknowledgedAndNotStored(
        backend: Backend
    ) async throws {
        let (server, folder, admin, nurse, office, patient) = try await purgeScene(
            on: backend,
            "outpost-purge-offline"
        )
        let owned = try await tasks(of: [patient], in: admin)
        let noted = try #require(owned.sorted().first)

        // Offline: nobody syncs until the purge is done.
        try await office.ok("patient", "set", patient, "phone=(406) 555-0142")
        let added = try await office.ok("task", "add", patient, "kind=outreach", "title=Call about the fall")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await nurse.ok("task", "note", noted, "Left a message with the daughter")
        let purged = try await server.admin(["purge", "patient", patient, "--reason", "court order 2026-131"])
        try #require(purged.status == 0, "\(purged)")

        for device in [office, nurse] {
            let text = try await device.ok("sync", "--json")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect((report["erased"] as? Int ?? 0) > 0, "\(device.name): \(text)")
            #expect(report["pushed"] as? Int == 0, "\(device.name): \(text)")
            #expect(report["pending"] as? Int == 0 && report["heldAside"] as? Int == 0, "\(device.name): \(text)")
            #expect(report["purged"] as? Int == 1, "\(device.name): \(text)")
            let said = try await device.ok("sync")
            #expect(!said.contains("dropped"), "counted once: \(said)")
        }
        let metrics = String(decoding: try await server.request("GET", "/metrics").1, as: UTF8.self)
        let counted = metrics.split(separator: "\n").first { $0.hasPrefix("outpost_changes_erased_total") }
        #expect((counted.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0) > 0, "\(metrics)")
        // The server holds nothing of the patient: not in the feed, not in a snapshot.
        for path in ["/v1/changes?since=0&limit=5000", "/v1/snapshot?limit=5000"] {
            let (_, body) = try await server.request("GET", path, token: server.adminToken)
            let text = String(decoding: body, as: UTF8.self)
            let leaked = text.contains("555-0142") || text.contains(added) || owned.contains { text.contains($0) }
            #expect(!leaked, "\(path) holds the purged patient's edits again")
        }
        for device in [admin, office, nurse] {
            try await device.ok("sync")
            await #expect(!(try ids(device, "patient", "list")).contains(patient), "\(device.name)")
            await #expect(try ids(device, "task", "list").isDisjoint(with: owned.union([added])), "\(device.name)")
        }
        await #expect(try admin.export() == office.export())
        let late = Device("late", in: folder)
        try await late.join(server, token: server.adminToken)
        await #expect(try late.export() == admin.export())
    }

    /// A device that bootstraps again while it holds records (its checkpoint lost: a compaction past it, a
    /// discard; here taken from its store) is sent a snapshot of its scope as it is now, and no pull announces
    /// what left its scope or was purged before that snapshot's checkpoint. The snapshot's first page names
    /// those patients (`removed`), and the device removes them with their records, in either encoding.
    @Test(arguments: Backend.all, ["json", "binary"])
    func aDeviceBootstrappingAgainRemovesThePatientsThatLeftItsScopeOrWerePurged(
        backend: Backend,
        encoding: String
    ) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-rebootstrap")
        let admin = try await practiceAdmin(server, in: folder)
        let teams = try await list(admin, "team", "list").compactMap { $0["id"] as? String }.sorted()
        try #require(teams.count >= 2)
        let nurse = Device("nurse", in: folder, encoding: encoding)
        try await nurse.join(server, token: try server.issueToken(role: "clinician", extra: ["--teams", teams[0]]))
        let office = Device("office", in: folder, encoding: encoding)
        try await office.join(server, token: server.adminToken)
        let patients = try await ids(admin, "patient", "list", "--team", teams[0]).sorted()
        try #require(patients.count >= 3)
        let (moved, purged) = (patients[0], patients[1])
        let gone = try await tasks(of: [moved, purged], in: admin)
        try #require(!gone.isEmpty)

        // The admin moves one of the nurse's patients to another team, and the server purges another.
        try await admin.ok("patient", "set", moved, "primaryTeam=\(teams[1])")
        try await admin.ok("sync")
        let result = try await server.admin(["purge", "patient", purged, "--reason", "court order 2026-118"])
        try #require(result.status == 0, "\(result)")
        // Both devices lose their checkpoints before they pull.
        for device in [nurse, office] {
            let store = try DatabaseQueue(path: device.store)
            try await store.write { try $0.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1") }
            try store.close()
        }
        for device in [nurse, office] {
            let text = try await device.ok("sync", "--json")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(report["bootstrapped"] as? Bool == true, "\(device.name): \(report)")
            #expect(report["purged"] as? Int == (device.name == "nurse" ? 2 : 1), "\(device.name): \(report)")
        }
        await #expect(try ids(nurse, "patient", "list") == Set(patients).subtracting([moved, purged]))
        await #expect(try ids(nurse, "task", "list").isDisjoint(with: gone))
        await #expect(!(try ids(office, "patient", "list")).contains(purged))
        await #expect(try ids(office, "patient", "list").contains(moved))
        try await admin.ok("sync")
        await #expect(try office.export() == admin.export())

        // A patient the device edited offline, then lost from its scope: its edit is pushed before the snapshot,
        // then the patient is removed.
        let edited = patients[2]
        try await nurse.ok("patient", "set", edited, "preferredLanguage=es")
        try await admin.ok("patient", "set", edited, "primaryTeam=\(teams[1])")
        try await admin.ok("sync")
        let store = try DatabaseQueue(path: nurse.store)
        try await store.write { try $0.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1") }
        try store.close()
        let synced = try await nurse.ok("sync", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(synced.utf8)) as? [String: Any])
        #expect(report["pushed"] as? Int == 1, "its edit reaches the server first: \(report)")
        await #expect(!(try ids(nurse, "patient", "list")).contains(edited), "then the patient leaves: \(report)")
        try await admin.ok("sync")
        let shown = try await #require(
            try JSONSerialization.jsonObject(with: Data(try admin.ok("patient", "show", edited, "--json").utf8))
                as? [String: Any]
        )
        #expect((shown["fields"] as? [String: Any])?["preferredLanguage"] as? String == "es")
    }

    /// A whole-practice device that bootstraps again may be sent pages the server kept from an earlier snapshot
    /// (``SnapshotCache``), whose checkpoint is older than the patient it created and pushed since; the pull
    /// after them leaves out its own changes. It removes nothing the server did not name, so it keeps that patient.
    @Test(arguments: Backend.all)
    func aDeviceBootstrappingAgainFromKeptPagesKeepsThePatientItCreatedSince(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-rebootstrap-kept")
        let admin = try await practiceAdmin(server, in: folder)
        let office = Device("office", in: folder)
        try await office.join(server, token: server.adminToken)
        let patient = try #require(try await ids(admin, "patient", "list").sorted().first)
        let registered = try await office.registerPatient(like: patient)
        try await office.ok("sync")
        let store = try DatabaseQueue(path: office.store)
        try await store.write { try $0.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1") }
        try store.close()
        let cached = try await server.snapshotPages(built: "cached")
        let text = try await office.ok("sync", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(report["bootstrapped"] as? Bool == true, "\(report)")
        #expect(report["purged"] as? Int == 0, "\(report)")
        #expect(try await server.snapshotPages(built: "cached") > cached, "the kept pages were sent")
        await #expect(try ids(office, "patient", "list").contains(registered))
        try await admin.ok("sync")
        await #expect(try office.export() == admin.export())
    }
}
