import Foundation
import OutpostTestSupport
import Testing

/// `outpost init`, `site`, `person`, `team` (with `team member`) and `subgroup`, run as a user would.
struct StructureCommandTests {
    @Test func initCreatesAReplicaWithTheGivenIDAndRefusesToOverwriteIt() async throws {
        let sandbox = try Sandbox()
        let created = try await sandbox.outpost("init", "--replica", "laptop-1")
        #expect(created.contains("created replica laptop-1 at \(sandbox.store)"))
        let status = try await #require(try sandbox.json("status") as? [String: Any])
        #expect(status["replica"] as? String == "laptop-1")
        #expect(status["pendingChanges"] as? Int == 0)

        try await sandbox.expectRefused(["init"], status: 1, mentioning: ["already exists", sandbox.store])
    }

    @Test func initRefusesAMalformedReplicaIDAndCreatesNothing() async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run(["init", "--replica", "not a replica!"])
        #expect(result.status == 2, "\(result)")
        #expect(result.errorLines == ["outpost: --replica takes letters, digits, '-' and '_', at most 64 characters"])
        #expect(!FileManager.default.fileExists(atPath: sandbox.store))
    }

    @Test func storeOptionWinsOverTheEnvironment() async throws {
        let sandbox = try Sandbox()
        let other = sandbox.path("elsewhere/other.sqlite")
        try await sandbox.outpost("init", "--store", other, "--replica", "other")
        #expect(FileManager.default.fileExists(atPath: other))
        #expect(!FileManager.default.fileExists(atPath: sandbox.store))
        await #expect(try sandbox.outpost("status", "--store", other).contains("replica:         other"))
        // Without --store and without OUTPOST_STORE, the per-user default under $XDG_DATA_HOME is used.
        let home = try await sandbox.run(
            ["init", "--replica", "home"],
            environment: ["OUTPOST_STORE": "", "XDG_DATA_HOME": sandbox.path("data")]
        )
        #expect(home.status == 0, "\(home)")
        #expect(FileManager.default.fileExists(atPath: sandbox.path("data/outpost/store.sqlite")))
    }

    @Test func siteAddListShowAndSet() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        let site = try await sandbox.outpost("site", "add", "name=Northside", "kind=clinic", "phone=555-0100")
        #expect(site.hasPrefix("sit_") && site.count == 30, "\(site)")

        let list = try await sandbox.outpost("site", "list")
        let lines = list.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(
            lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["ID", "NAME", "KIND", "STATUS"]
        )
        #expect(
            lines.last?.split(separator: " ", omittingEmptySubsequences: true) == [
                Substring(site), "Northside", "clinic", "active",
            ]
        )

        let show = try await sandbox.outpost("site", "show", site)
        #expect(show.contains("site \(site)"))
        #expect(show.contains("  name: Northside"))
        #expect(show.contains("  phone: 555-0100"))

        await #expect(
            try sandbox.outpost("site", "set", site, "name=Northside Clinic", "kind=school")
                == "\(site): 2 changes saved"
        )
        let record = try await #require(try sandbox.json("site", "show", site) as? [String: Any])
        let fields = try #require(record["fields"] as? [String: Any])
        #expect(fields["name"] as? String == "Northside Clinic")
        #expect(fields["kind"] as? String == "school")
        let listed = try await #require(try sandbox.json("site", "list") as? [[String: Any]])
        #expect(listed.map { $0["id"] as? String } == [site])
    }

    @Test func retiredRecordsLeaveTheListUnlessAllIsGiven() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        let open = try await sandbox.outpost("site", "add", "name=Open", "kind=clinic")
        let closed = try await sandbox.outpost("site", "add", "name=Closed", "kind=home-visit")
        try await sandbox.outpost("site", "set", closed, "status=inactive")
        let active = try await #require(try sandbox.json("site", "list") as? [[String: Any]])
        #expect(active.map { $0["id"] as? String } == [open])
        let all = try await #require(try sandbox.json("site", "list", "--all") as? [[String: Any]])
        #expect(Set(all.compactMap { $0["id"] as? String }) == [open, closed])
        await #expect(try sandbox.outpost("site", "show", closed).hasPrefix("site \(closed) (retired)"))
    }

    @Test func personAddRefusesAnUnknownRoleAndAMissingRequiredField() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        try await sandbox.expectRefused(
            ["person", "add", "name=Dr Who", "role=wizard"],
            mentioning: ["person.role", "physician"]
        )
        try await sandbox.expectRefused(["person", "add", "name=Dr Who"], mentioning: ["person.role"])
        try await sandbox.expectRefused(
            ["person", "add", "name=Dr Who", "role=rn", "colour=blue"],
            mentioning: ["no field 'colour'"]
        )
        try await sandbox.expectRefused(
            ["person", "add", "name=Dr Who", "role=rn", "phone=call me"],
            mentioning: ["person.phone"]
        )
        try await sandbox.expectRefused(["person", "add", "name"], mentioning: ["'name' is not FIELD=VALUE"])
        let person = try await sandbox.outpost("person", "add", "name=Dr Who", "role=physician")
        #expect(person.hasPrefix("per_"))
        await #expect(try sandbox.outpost("person", "list").contains("Dr Who"))
        await #expect(try sandbox.outpost("person", "set", person, "role=np-pa") == "\(person): 1 change saved")
        await #expect(try sandbox.outpost("person", "show", person).contains("  role: np-pa"))
    }

    @Test func subgroupAddListShowAndSet() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        let subgroup = try await sandbox.outpost(
            "subgroup",
            "add",
            "key=complex",
            "label=Complex needs",
            "monthlyPaymentCents=10000"
        )
        #expect(subgroup.hasPrefix("sub_"))
        let list = try await sandbox.outpost("subgroup", "list")
        #expect(list.hasPrefix("ID"))
        #expect(list.contains("MONTHLY PAYMENT CENTS"))
        #expect(list.contains("complex") && list.contains("Complex needs") && list.contains("10000"))
        try await sandbox.expectRefused(
            ["subgroup", "set", subgroup, "monthlyPaymentCents=-5"],
            mentioning: ["subgroup.monthlyPaymentCents"]
        )
        try await sandbox.expectRefused(
            ["subgroup", "set", subgroup, "monthlyPaymentCents=lots"],
            mentioning: ["takes a whole number"]
        )
        try await sandbox.outpost("subgroup", "set", subgroup, "monthlyPaymentCents=12000")
        await #expect(try sandbox.outpost("subgroup", "show", subgroup).contains("  monthlyPaymentCents: 12000"))
    }

    @Test func teamMembersAreAddedAndRemoved() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        let subgroup = try await sandbox.outpost(
            "subgroup",
            "add",
            "key=healthy",
            "label=Healthy",
            "monthlyPaymentCents=500"
        )
        let leader = try await sandbox.outpost("person", "add", "name=Lead", "role=physician")
        let nurse = try await sandbox.outpost("person", "add", "name=Nurse", "role=rn")
        let team = try await sandbox.outpost(
            "team",
            "add",
            "name=Team A",
            "subgroup=\(subgroup)",
            "leader=\(leader)",
            "members=\(leader)"
        )
        #expect(team.hasPrefix("tea_"))
        await #expect(try sandbox.outpost("team", "member", "add", team, nurse) == "\(team): \(nurse) added")
        var fields = try await #require(
            (try sandbox.json("team", "show", team) as? [String: Any])?["fields"] as? [String: Any]
        )
        #expect(fields["members"] as? [String] == [leader, nurse].sorted())

        await #expect(try sandbox.outpost("team", "member", "remove", team, leader) == "\(team): \(leader) removed")
        fields = try await #require(
            (try sandbox.json("team", "show", team) as? [String: Any])?["fields"] as? [String: Any]
        )
        #expect(fields["members"] as? [String] == [nurse])

        // The list shows how many members a team has, not every id.
        let row = try await #require(try sandbox.outpost("team", "list").split(separator: "\n").last)
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).contains("1"), "\(row)")

        try await sandbox.expectRefused(
            ["team", "member", "remove", team, leader],
            mentioning: ["not a member", leader]
        )
        try await sandbox.expectRefused(
            ["team", "member", "add", team, "per_01JWMCKG000000000000000000"],
            mentioning: ["team.members", "per_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(
            ["team", "member", "add", "tea_01JWMCKG000000000000000000", nurse],
            mentioning: ["no team with id tea_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(["team", "set", team, "members=\(nurse)"], mentioning: ["members+="])
        try await sandbox.outpost("team", "set", team, "members+=\(leader)", "members-=\(nurse)")
        fields = try await #require(
            (try sandbox.json("team", "show", team) as? [String: Any])?["fields"] as? [String: Any]
        )
        #expect(fields["members"] as? [String] == [leader])
    }

    @Test func setRefusesUnknownAndMalformedIdsAndEmptyChanges() async throws {
        let sandbox = try await Sandbox.withPractice()
        let unknown = "sit_01JWMCKG000000000000000000"
        try await sandbox.expectRefused(["site", "set", unknown, "name=X"], mentioning: ["no site with id \(unknown)"])
        try await sandbox.expectRefused(["site", "show", unknown], mentioning: ["no site with id \(unknown)"])
        try await sandbox.expectRefused(["site", "show", "northside"], mentioning: ["'northside' is not a site id"])
        let patient = try Fixture.first("patient").id
        try await sandbox.expectRefused(["site", "show", patient], mentioning: ["is not a site id"])
        let site = try Fixture.first("site").id
        try await sandbox.expectRefused(["site", "set", site], mentioning: ["at least one FIELD=VALUE"])
        try await sandbox.expectRefused(["site", "set", site, "kind=castle"], mentioning: ["site.kind", "clinic"])
    }

    @Test func helpListsEveryFieldOnItsOwnIndentedLine() async throws {
        let sandbox = try Sandbox()
        let help = try await sandbox.outpost("person", "add", "--help")
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.hasPrefix("Fields of a person") })
        let end = try #require(lines[start...].firstIndex { $0.hasPrefix("USAGE:") })
        let body = lines[(start + 1)..<end].filter { !$0.isEmpty }
        for name in ["name", "role", "email", "phone", "sites", "status"] {
            #expect(body.contains { $0.hasPrefix("  \(name) — ") }, "no line for \(name) in:\n\(help)")
        }
        // No blank line inside the list, and every line fits an 80-column terminal.
        let listed = lines[(start + 1)..<end].drop { $0.isEmpty }.reversed().drop { $0.isEmpty }
        #expect(!listed.contains(""), "blank line inside the field list:\n\(help)")
        #expect(listed.allSatisfy { $0.count <= 80 }, "\(help)")
        #expect(help.contains("specialist"))
    }
}
