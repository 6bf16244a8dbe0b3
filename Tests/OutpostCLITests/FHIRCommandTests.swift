import Foundation
import OutpostClient
import OutpostTestSupport
import Testing

/// `outpost fhir import|export`, run as a user would, on the FHIR fixtures (fixtures/fhir).
struct FHIRCommandTests {
    static func fhir(_ name: String) -> String { Sandbox.fixture("fhir/" + name) }

    /// A sandbox with a new, empty store.
    static func emptyStore() async throws -> Sandbox {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init", "--replica", "fhir-test")
        return sandbox
    }

    /// Every record's fields, log entries reduced to their values (their clocks and authors differ between
    /// stores), by type and id.
    static func records(_ sandbox: Sandbox) async throws -> [String: String] {
        let export = try await sandbox.export()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(export.utf8)) as? [String: Any])
        var out: [String: String] = [:]
        for record in object["records"] as? [[String: Any]] ?? [] {
            var fields = record["fields"] as? [String: Any] ?? [:]
            for (name, value) in fields {
                if let entries = value as? [[String: Any]] { fields[name] = entries.map { $0["value"] ?? NSNull() } }
            }
            let text = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
            out["\(record["type"] ?? "")/\(record["id"] ?? "")"] = String(decoding: text, as: UTF8.self)
        }
        return out
    }

    @Test func importsABundleOnceAndAgainChangesNothing() async throws {
        let sandbox = try await Self.emptyStore()
        let first = try await sandbox.run([
            "fhir", "import", Self.fhir("practice-bundle.json"), "--team", "CareTeam/example",
        ])
        #expect(first.status == 0, "\(first)")
        #expect(first.stdout.contains("created 11 ("), "\(first)")
        #expect(first.stderr.contains("not kept: Patient.name (1)"), "\(first)")
        let patients = try await #require(try sandbox.json("patient", "list") as? [[String: Any]])
        #expect(patients.count == 1)
        #expect((patients.first?["fields"] as? [String: Any])?["familyName"] as? String == "Chalmers")

        let before = try sandbox.snapshot()
        let again = try await sandbox.outpost("fhir", "import", Self.fhir("practice-bundle.json"))
        #expect(again.contains("created 0, updated 0, unchanged 11; 0 field edits"), "\(again)")
        let after = try sandbox.snapshot()
        #expect(after.export == before.export)
        #expect(after.pending == before.pending)
    }

    @Test func aBundleIntoAPracticeJoinsItsSubgroupByKeyAndKeepsItsOneOrganization() async throws {
        let sandbox = try await Sandbox.withPractice()
        let team = try Fixture.first("team").id
        let result = try await sandbox.run(["fhir", "import", Self.fhir("practice-bundle.json"), "--team", team])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("not kept: Organization (a store holds one practice) (1)"), "\(result)")
        let created = result.stdout.components(separatedBy: ", updated").first ?? ""
        #expect(created.contains("created") && !created.contains("subgroup"), "\(result)")
        let chronic = try await #require(
            try sandbox.json("patient", "list", "--subgroup", "chronic") as? [[String: Any]]
        )
        #expect(chronic.contains { ($0["fields"] as? [String: Any])?["familyName"] as? String == "Chalmers" })
    }

    @Test func newerDataUpdatesWithEditsThatSync() async throws {
        let sandbox = try await Self.emptyStore()
        try await sandbox.outpost("fhir", "import", Self.fhir("practice-bundle.json"), "--team", "CareTeam/example")
        let pending = try await sandbox.pendingChanges()
        let newer = sandbox.path("newer.ndjson")
        try Data(
            (#"{"resourceType":"Patient","id":"example","name":[{"family":"Chalmers","given":["Peter","James"]}],"#
                + #""gender":"male","birthDate":"1974-12-25","telecom":[{"system":"phone","value":"03 9999 0000"}]}"#
                + "\n").utf8
        ).write(to: URL(fileURLWithPath: newer))
        let output = try await sandbox.outpost("fhir", "import", newer)
        #expect(output.contains("updated 1 (1 patient)"), "\(output)")
        await #expect(try sandbox.pendingChanges() == pending + 1)
        let patients = try await #require(try sandbox.json("patient", "list") as? [[String: Any]])
        #expect((patients.first?["fields"] as? [String: Any])?["phone"] as? String == "03 9999 0000")
    }

    @Test func anNDJSONFolderImportsInAnyOrderAndStrictRefusesWhatIsNotKept() async throws {
        let sandbox = try await Self.emptyStore()
        try await sandbox.expectRefused(
            ["fhir", "import", Self.fhir("ndjson"), "--team", "CareTeam/t1", "--strict"],
            mentioning: ["--strict", "unmodelled code: Observation.code (1)", "not kept: Patient.maritalStatus (1)"]
        )
        let result = try await sandbox.run(["fhir", "import", Self.fhir("ndjson"), "--team", "CareTeam/t1"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("unmodelled code: Observation.code (1)"), "\(result)")
        let observations = try await #require(try sandbox.json("observation", "list") as? [[String: Any]])
        #expect(observations.count == 3)
    }

    @Test func patientsTheDataDoesNotPlaceAwaitAssignmentInThePanelUntilAssigned() async throws {
        // The NDJSON folder's patients are in a Group (a subgroup) but on no care team, and no --team is
        // given: the import places them awaiting assignment instead of refusing the file.
        let sandbox = try await Self.emptyStore()
        let result = try await sandbox.run(["fhir", "import", Self.fhir("ndjson")])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("2 new patient(s) await assignment"), "\(result)")
        let patients = try await #require(try sandbox.json("patient", "list") as? [[String: Any]])
        #expect(patients.count == 2)
        let panel = try await sandbox.outpost("panel")
        for patient in patients {
            #expect(panel.contains("awaiting assignment: \(patient["id"] as? String ?? "?")"), "\(panel)")
        }
        let json = try await #require(try sandbox.json("panel") as? [String: Any])
        #expect((json["awaitingAssignment"] as? [String])?.count == 2)
        // Assigning a team ends the state; a required placement, once given, cannot be cleared again.
        let team = try await #require((try sandbox.json("team", "list") as? [[String: Any]])?.first?["id"] as? String)
        let first = try #require(patients.first?["id"] as? String)
        try await sandbox.outpost("patient", "set", first, "primaryTeam=\(team)")
        let after = try await #require(try sandbox.json("panel") as? [String: Any])
        #expect(after["awaitingAssignment"] as? [String] == [patients.last?["id"] as? String ?? "?"])
        try await sandbox.expectRefused(["patient", "set", first, "primaryTeam="], mentioning: ["primaryTeam"])
        // Patients added by hand still need both: validation is unchanged outside the import.
        try await sandbox.expectRefused(
            ["patient", "add", "givenName=Ana", "familyName=Ruiz", "birthDate=1980-01-02", "sex=female"],
            mentioning: ["patient.subgroup"]
        )
        // With defaults nothing awaits.
        let placed = try await Self.emptyStore()
        let withTeam = try await placed.run(["fhir", "import", Self.fhir("ndjson"), "--team", "CareTeam/t1"])
        #expect(withTeam.status == 0 && !withTeam.stdout.contains("await"), "\(withTeam)")
        await #expect((try placed.json("panel") as? [String: Any])?["awaitingAssignment"] as? [String] == [])
    }

    @Test func malformedInputsAreRefusedAndNothingIsWritten() async throws {
        let sandbox = try await Sandbox.withPractice()
        let defaults = ["--subgroup", "healthy", "--team", try Fixture.first("team").id]
        let cases: [(String, [String])] = [
            ("invalid/not-json.json", ["not-json.json:3", "invalid JSON"]),
            ("invalid/wrong-type.json", ["wrong-type.json", "resourceType", "Patiant"]),
            ("invalid/cut-off.ndjson", ["cut-off.ndjson:2", "invalid JSON"]),
            ("invalid/unknown-gender.json", ["unknown-gender.json", "Patient.gender"]),
            ("invalid/dangling-reference.json", ["dangling-reference.json entry[0]", "Observation.subject"]),
        ]
        for (name, mentions) in cases {
            try await sandbox.expectRefused(["fhir", "import", Self.fhir(name)] + defaults, mentioning: mentions)
        }
        // A valid file beside an invalid one: still nothing written.
        try await sandbox.expectRefused(
            ["fhir", "import", Self.fhir("ndjson"), Self.fhir("invalid/cut-off.ndjson")] + defaults,
            mentioning: ["cut-off.ndjson:2"]
        )
    }

    @Test func exportWritesNDJSONAndAManifestAndReimportsToTheSameRecords() async throws {
        let source = try await Sandbox.withPractice()
        let out = source.path("export")
        let output = try await source.outpost("fhir", "export", "--out", out)
        #expect(output.hasPrefix("exported "))
        let manifestData = try Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let files = try #require(manifest["output"] as? [[String: Any]])
        #expect(manifest["transactionTime"] is String && manifest["requiresAccessToken"] as? Bool == false)
        let types = files.compactMap { $0["type"] as? String }
        #expect(Set(types).isSuperset(of: ["Patient", "Observation", "Encounter", "Task", "CareTeam", "Group"]))
        for file in files {
            let text = try String(contentsOfFile: out + "/" + (file["url"] as? String ?? ""), encoding: .utf8)
            #expect(text.split(separator: "\n").count == file["count"] as? Int)
        }
        let patientLines = try String(contentsOfFile: out + "/Patient.ndjson", encoding: .utf8).split(separator: "\n")
        #expect(patientLines.count == Fixture.all("patient").count)

        let copy = try await Self.emptyStore()
        let imported = try await copy.run(["fhir", "import", out, "--strict"])
        #expect(imported.status == 0, "\(imported)")
        await #expect(try Self.records(copy) == Self.records(source))
        // And importing the export into the store it came from changes nothing.
        let before = try source.snapshot()
        let again = try await source.outpost("fhir", "import", out)
        #expect(again.contains("created 0, updated 0"), "\(again)")
        #expect(try source.snapshot().export == before.export)
    }

    @Test func scorecardsOfAPracticeThroughFHIREqualTheOriginals() async throws {
        let source = try await Self.emptyStore()
        try await source.outpost("import", Sandbox.fixture("practice-scorecard.json"))
        let out = source.path("export")
        try await source.outpost("fhir", "export", "--out", out)
        let copy = try await Self.emptyStore()
        try await copy.outpost("fhir", "import", out, "--strict")
        for arguments in [["--period", "2026-Q2"], ["--period", "2026-Q2", "--by", "team"]] {
            let original = try await source.outpost(arguments: ["scorecard"] + arguments + ["--json"])
            await #expect(try copy.outpost(arguments: ["scorecard"] + arguments + ["--json"]) == original)
        }
    }

    @Test func exportFiltersByTypeAndSince() async throws {
        let sandbox = try await Sandbox.withPractice()
        let out = sandbox.path("patients")
        try await sandbox.outpost("fhir", "export", "--type", "Patient", "--type", "Condition", "--out", out)
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(names == ["Condition.ndjson", "Patient.ndjson", "manifest.json"])
        let later = sandbox.path("later")
        try await sandbox.outpost("fhir", "export", "--since", "2999-01-01", "--out", later)
        #expect(try FileManager.default.contentsOfDirectory(atPath: later) == ["manifest.json"])
        try await sandbox.expectRefused(["fhir", "export", "--type", "Claim", "--out", later], mentioning: ["--type"])
    }
}
