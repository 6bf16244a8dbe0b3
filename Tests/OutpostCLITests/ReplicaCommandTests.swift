import Foundation
import OutpostTestSupport
import Testing

/// `outpost status`, `use`, `history`, `export` and `import`.
struct ReplicaCommandTests {
    @Test func statusReportsReplicaOutboxConflictsAndRecordCounts() async throws {
        let sandbox = try await Sandbox.withPractice()
        let status = try await #require(try sandbox.json("status") as? [String: Any])
        #expect(status["replica"] as? String == "template")
        #expect(status["store"] as? String == sandbox.store)
        #expect(status["openConflicts"] as? Int == 0)
        #expect(status["lastSync"] == nil)
        let counts = try #require(status["records"] as? [String: Int])
        for type in ["practice", "site", "person", "team", "subgroup", "patient", "task", "observation", "encounter"] {
            #expect(counts[type] == Fixture.all(type).count, "\(type)")
        }
        let pending = try #require(status["pendingChanges"] as? Int)
        #expect(pending > Fixture.records.count)

        try await sandbox.outpost("patient", "set", try Fixture.first("patient").id, "phone=555-0142")
        await #expect(try sandbox.pendingChanges() == pending + 1)
        let text = try await sandbox.outpost("status")
        #expect(text.contains("replica:         template"))
        #expect(text.contains("pending changes: \(pending + 1)"))
        #expect(text.contains("last sync:       never"))
        #expect(text.contains("20 patient"))
    }

    @Test func useSignsLaterEditsAndRefusesUnknownPeople() async throws {
        let sandbox = try await Sandbox.withPractice()
        let person = try Fixture.first("person").id
        let site = try Fixture.first("site").id
        await #expect(try sandbox.outpost("status").contains("author:          replica:template"))
        let used = try await sandbox.outpost("use", "--person", person, "--site", site)
        #expect(used == "author: \(person)\nsite: \(site)")
        await #expect(try sandbox.outpost("status").contains("author:          \(person) at \(site)"))
        try await sandbox.expectRefused(
            ["use", "--person", "per_01JWMCKG000000000000000000"],
            mentioning: ["no person with id per_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(["use", "--site", person], mentioning: ["is not a site id"])
    }

    @Test func historyListsEveryValueWithWhoWhereAndWhen() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patient = try Fixture.first("patient").id
        let person = try Fixture.first("person").id
        let site = try Fixture.first("site").id
        try await sandbox.outpost("use", "--person", person, "--site", site)
        try await sandbox.outpost("patient", "set", patient, "phone=555-0142")
        try await sandbox.outpost("patient", "set", patient, "phone=555-0143")

        let entries = try await #require(try sandbox.json("history", patient, "--field", "phone") as? [[String: Any]])
        #expect(entries.count == 3)
        #expect(entries.map { $0["author"] as? String } == ["replica:template", person, person])
        #expect(entries.map { $0["site"] as? String } == [nil, site, site])
        #expect(entries.dropFirst().map { $0["value"] as? String } == ["555-0142", "555-0143"])
        #expect(entries.allSatisfy { $0["operation"] as? String == "assign" })
        // Each edit replaces the value its writer saw.
        #expect(entries[2]["replaces"] as? [String] == [entries[1]["change"] as? String].compactMap { $0 })

        let all = try await #require(try sandbox.json("history", patient) as? [[String: Any]])
        #expect(all.count > entries.count)
        #expect(Set(all.compactMap { $0["field"] as? String }).isSuperset(of: ["phone", "givenName", "status"]))

        let table = try await sandbox.outpost("history", patient, "--field", "phone")
        let rows = table.split(separator: "\n")
        #expect(rows.count == 4)
        #expect(rows.first?.hasPrefix("WHEN") == true)
        #expect(rows.last?.contains("555-0143") == true && rows.last?.contains(person) == true)

        try await sandbox.expectRefused(
            ["history", "pat_01JWMCKG000000000000000000"],
            mentioning: ["no patient with id"]
        )
        try await sandbox.expectRefused(["history", "nonsense"], mentioning: ["'nonsense' is not a record id"])
    }

    @Test func exportIsStableAndWritesToAFile() async throws {
        let sandbox = try await Sandbox.withPractice()
        let first = try await sandbox.export()
        #expect(first.hasPrefix("{\"format\":\"outpost-export\",\"version\":1,\"records\":[\n"))
        #expect(first.hasSuffix("]}\n"))
        #expect(first.split(separator: "\n").count == Fixture.records.count + 2)
        await #expect(try sandbox.export() == first)
        let json = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any]
        #expect((json?["records"] as? [Any])?.count == Fixture.records.count)

        let file = sandbox.path("export.json")
        await #expect(try sandbox.outpost("export", "--format", "json", "--output", file) == "")
        #expect(FileManager.default.contents(atPath: file) == Data(first.utf8))

        try await sandbox.expectRefused(["export", "--format", "csv"], mentioning: ["--format"])
        try await sandbox.expectRefused(
            ["export", "-o", sandbox.path("missing-folder/export.json")],
            status: 1,
            mentioning: ["could not write"]
        )
    }

    @Test func importLoadsAPracticeOnceAndRefusesItTwice() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        let file = Sandbox.fixture("practice-small.json")
        await #expect(try sandbox.outpost("import", file) == "imported \(Fixture.records.count) records from \(file)")
        let status = try await #require(try sandbox.json("status") as? [String: Any])
        #expect((status["records"] as? [String: Int])?.values.reduce(0, +) == Fixture.records.count)
        // Progress lines only on request (or on a terminal): plain stderr stays empty for scripts.
        try await sandbox.expectRefused(["import", file], mentioning: ["already holds"])
    }

    @Test func importRefusesEveryInvalidFixtureAndWritesNothing() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        let folder = Sandbox.packageRoot.appendingPathComponent("fixtures/invalid")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 16)
        for file in files.sorted() {
            let result = try await sandbox.expectRefused(["import", folder.appendingPathComponent(file).path])
            #expect(
                !result.stderr.contains("2999-01-01") && !result.stderr.contains("04/05/1970"),
                "\(file): \(result)"
            )
            // The line names the file, whether the file or a record in it is wrong.
            #expect(result.stderr.contains(file), "\(file): \(result)")
        }
        try await sandbox.expectRefused(["import", sandbox.path("nothing-here.json")], mentioning: ["cannot read"])
        // A folder given for the file: said so, not the file system's error.
        try await sandbox.expectRefused(["import", folder.path], mentioning: ["is a folder"])
        await #expect(try sandbox.pendingChanges() == 0)
    }

    @Test func usageErrorsAreOneLineWithExitCodeTwo() async throws {
        let sandbox = try await Sandbox.withPractice()
        for arguments in [
            ["bogus"], ["patient", "list", "--frobnicate"], ["patient", "show"], ["task", "add"],
            ["worklist", "--today"], ["site", "add", "--store"],
        ] {
            let result = try await sandbox.expectRefused(arguments)
            #expect(result.stderr.contains("--help"), "\(arguments): \(result)")
        }
        let help = try await sandbox.run(["patient", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("USAGE: outpost patient <subcommand>"))
    }
}
