import Foundation
import OutpostTestSupport
import Testing

/// Imports synced through the real server: the records an import creates reach the server whole whatever the order
/// of its input. A folder of Bulk Data NDJSON files is read in name order, observations before the patients they
/// name and care teams before their members, and a practice file may give its records in any order; the server
/// judges a push change by change and refuses a reference to a record it does not hold yet, so an import writes
/// records in creation rank (`CareModel.creationRank`), not in input order.
@Suite(.serialized)
struct ImportSyncTests {
    /// The observations of `device`'s replica: their ids and the patient each names.
    func observationPatients(_ device: Device) async throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try await device.rows("observation", "list") {
            let id = try #require(row["id"] as? String)
            out[id] = (row["fields"] as? [String: Any])?["patient"] as? String ?? ""
        }
        return out
    }

    /// An office replica of a new practice on `server` runs `import` (its arguments) and syncs, which the server
    /// stores whole (nothing refused); then a new laptop bootstraps. Returns both.
    func importAndSync(
        _ server: TestServer,
        in folder: TemporaryDirectory,
        _ arguments: String...
    ) async throws -> (office: Device, laptop: Device) {
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await office.ok(arguments: arguments)
        let synced = try await office.ok("sync")
        #expect(!synced.contains("refused"), "\(synced)")
        await #expect(try office.status()["refusedChanges"] as? Int == 0)
        let laptop = Device("laptop", in: folder)
        try await laptop.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await laptop.ok("sync")
        return (office, laptop)
    }

    @Test(arguments: Backend.all)
    func anNDJSONFolderImportedIntoANewPracticeReachesTheServerWhole(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-import-sync")
        let (office, laptop) = try await importAndSync(
            server,
            in: folder,
            "fhir",
            "import",
            Built.fixture("fhir/ndjson"),
            "--team",
            "CareTeam/t1"
        )
        // The new device receives every record as the office holds it: each observation names its patient, the
        // team has its leader and members.
        let observations = try await observationPatients(laptop)
        #expect(observations.count == 3)
        #expect(observations == (try await observationPatients(office)))
        let patients = Set(try await laptop.rows("patient", "list").compactMap { $0["id"] as? String })
        #expect(observations.values.allSatisfy(patients.contains), "\(observations) \(patients)")
        let team = try #require(try await laptop.rows("team", "list").first?["fields"] as? [String: Any])
        #expect(team["leader"] as? String != nil && (team["members"] as? [Any])?.count == 1, "\(team)")
        await #expect(try laptop.export() == (try await office.export()))
    }

    /// A practice file with its records in reverse order (care records first, the practice last) is written in
    /// creation rank: the office's sync is stored whole, and a new device holds what the office holds.
    @Test(arguments: Backend.all)
    func aPracticeFileInAnyOrderReachesTheServerWhole(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-import-sync")
        let data = try Data(contentsOf: URL(fileURLWithPath: Built.fixture("practice-small.json")))
        var dump = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        dump["records"] = Array(try #require(dump["records"] as? [Any]).reversed())
        let reversed = folder.path("reversed.json")
        try JSONSerialization.data(withJSONObject: dump).write(to: URL(fileURLWithPath: reversed))
        let (office, laptop) = try await importAndSync(server, in: folder, "import", reversed)
        await #expect(try laptop.export() == (try await office.export()))
    }

    /// Files already in creation rank (patients, then observations), the same patients in two of them: a record
    /// named by more than one resource is written once all its resources are read, and still before the first record
    /// of a higher rank (here, the observations naming it).
    @Test(arguments: Backend.all)
    func patientsNamedInTwoFilesAreWrittenBeforeTheObservationsNamingThem(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-import-sync")
        let input = folder.path("input")
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        for (name, fixture) in [("a", "Patient"), ("b", "Patient"), ("c", "Observation")] {
            try FileManager.default.copyItem(
                atPath: Built.fixture("fhir/ndjson/\(fixture).ndjson"),
                toPath: input + "/\(name).ndjson"
            )
        }
        let (_, laptop) = try await importAndSync(server, in: folder, "fhir", "import", input)
        let observations = try await observationPatients(laptop)
        #expect(observations.count == 3 && !observations.values.contains(""), "\(observations)")
    }

    /// A nurse scoped to her team imports the folder into it: the structure is left out (her token may not write
    /// it), and the patients and their observations, created by her own push, are stored whole.
    @Test(arguments: Backend.all)
    func aScopedNurseImportingTheFolderIntoHerTeamHasEveryObservationStored(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-import-sync")
        let scene = try await ScopedNurse(on: server, in: folder)
        let (admin, nurse) = (scene.admin, scene.nurse)
        let before = try await observationPatients(nurse)
        let own = try await nurse.run("fhir", "import", Built.fixture("fhir/ndjson"), "--team", scene.teams[0])
        #expect(own.status == 0 && !own.stderr.contains("outside this replica's scope"), "\(own)")
        let synced = try await nurse.ok("sync")
        #expect(!synced.contains("refused"), "\(synced)")
        await #expect(try nurse.status()["refusedChanges"] as? Int == 0)
        let observations = try await observationPatients(nurse).filter { before[$0.key] == nil }
        #expect(observations.count == 3)
        try await admin.ok("sync")
        let stored = try await observationPatients(admin)
        for (id, patient) in observations { #expect(stored[id] == patient, "\(id)") }

        // Placed by --team in another team, the new patients leave her replica at the next sync: the import says so.
        let elsewhere = try await nurse.run(
            "fhir",
            "import",
            Built.fixture("fhir/practice-bundle.json"),
            "--team",
            scene.teams[1]
        )
        #expect(elsewhere.status == 0, "\(elsewhere)")
        #expect(
            elsewhere.stderr.contains("note: --team \(scene.teams[1]) is outside this replica's scope"),
            "\(elsewhere)"
        )
    }
}
