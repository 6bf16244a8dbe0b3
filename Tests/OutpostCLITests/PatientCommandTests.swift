import Foundation
import OutpostTestSupport
import Testing

/// `outpost patient add|list|show|set|retire`, on a store holding the small fixture practice.
struct PatientCommandTests {
    private func ids(_ object: Any) -> [String] {
        (object as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    @Test func addShowAndSetAPatient() async throws {
        let sandbox = try await Sandbox.withPractice()
        let team = try Fixture.first("team")
        let subgroup = try #require(team.fields["subgroup"])
        let patient = try await sandbox.outpost(
            "patient",
            "add",
            "givenName=Ana",
            "familyName=Quint",
            "birthDate=1961-04-02",
            "sex=female",
            "subgroup=\(subgroup)",
            "primaryTeam=\(team.id)",
            "riskTier=high",
            "conditions=E11.9",
            "conditions=I10"
        )
        #expect(patient.hasPrefix("pat_") && patient.count == 30, "\(patient)")

        let show = try await sandbox.outpost("patient", "show", patient)
        #expect(show.hasPrefix("patient \(patient)\n"))
        #expect(show.contains("  familyName: Quint"))
        #expect(show.contains("  conditions: E11.9,I10"))
        #expect(show.contains("  status: active"))

        await #expect(
            try sandbox.outpost("patient", "set", patient, "phone=555-0199", "conditions-=I10")
                == "\(patient): 2 changes saved"
        )
        let record = try await #require(try sandbox.json("patient", "show", patient) as? [String: Any])
        let fields = try #require(record["fields"] as? [String: Any])
        #expect(fields["phone"] as? String == "555-0199")
        #expect(fields["conditions"] as? [String] == ["E11.9"])
        #expect(record["conflicts"] as? [String] == [])
    }

    @Test func listShowsReadableHeadersAndEveryActivePatient() async throws {
        let sandbox = try await Sandbox.withPractice()
        let lines = try await sandbox.outpost("patient", "list").split(separator: "\n").map(String.init)
        let header = try #require(lines.first)
        #expect(header.hasPrefix("ID  "))
        for column in ["FAMILY NAME", "GIVEN NAME", "BIRTH DATE", "SUBGROUP", "PRIMARY TEAM", "RISK TIER", "STATUS"] {
            #expect(header.contains(column), "\(header)")
        }
        #expect(lines.count == Fixture.all("patient").count + 1)
        await #expect(Set(ids(try sandbox.json("patient", "list"))) == Set(Fixture.all("patient").map(\.id)))
    }

    @Test func listFiltersBySubgroupTeamSiteAndRisk() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patients = Fixture.all("patient")
        let subgroup = try Fixture.first("subgroup") { $0.fields["key"] == "at-risk" }
        await #expect(
            Set(ids(try sandbox.json("patient", "list", "--subgroup", "at-risk")))
                == Set(patients.filter { $0.fields["subgroup"] == subgroup.id }.map(\.id))
        )
        await #expect(
            Set(ids(try sandbox.json("patient", "list", "--subgroup", subgroup.id)))
                == Set(patients.filter { $0.fields["subgroup"] == subgroup.id }.map(\.id))
        )
        let team = try #require(patients.last?.fields["primaryTeam"])
        let byTeam = Set(patients.filter { $0.fields["primaryTeam"] == team }.map(\.id))
        #expect(!byTeam.isEmpty)
        await #expect(Set(ids(try sandbox.json("patient", "list", "--team", team))) == byTeam)

        let secondSite = try #require(patients.first { ($0.lists["sites"] ?? []).count > 1 }?.lists["sites"]?.last)
        let bySite = Set(patients.filter { $0.lists["sites"]?.contains(secondSite) == true }.map(\.id))
        #expect(!bySite.isEmpty && bySite.count < patients.count)
        await #expect(Set(ids(try sandbox.json("patient", "list", "--site", secondSite))) == bySite)

        let veryHigh = Set(patients.filter { $0.fields["riskTier"] == "very-high" }.map(\.id))
        #expect(!veryHigh.isEmpty)
        await #expect(Set(ids(try sandbox.json("patient", "list", "--risk", "very-high"))) == veryHigh)
        await #expect(
            Set(ids(try sandbox.json("patient", "list", "--risk", "very-high", "--team", team)))
                == veryHigh.intersection(byTeam)
        )
    }

    @Test func listRefusesUnknownFilterValues() async throws {
        let sandbox = try await Sandbox.withPractice()
        try await sandbox.expectRefused(["patient", "list", "--risk", "extreme"], mentioning: ["--risk", "very-high"])
        try await sandbox.expectRefused(
            ["patient", "list", "--subgroup", "frail"],
            mentioning: ["no subgroup", "frail"]
        )
        try await sandbox.expectRefused(
            ["patient", "list", "--team", "tea_01JWMCKG000000000000000000"],
            mentioning: ["no team with id tea_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(
            ["patient", "list", "--site", "downtown"],
            mentioning: ["'downtown' is not a site id"]
        )
    }

    @Test func retireHidesThePatientFromListsButKeepsTheRecord() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patients = Fixture.all("patient")
        let first = patients[0].id
        let second = patients[1].id
        await #expect(try sandbox.outpost("patient", "retire", first) == "\(first): inactive")
        await #expect(try sandbox.outpost("patient", "retire", second, "--status", "deceased") == "\(second): deceased")
        let active = Set(ids(try await sandbox.json("patient", "list")))
        #expect(!active.contains(first) && !active.contains(second))
        #expect(active.count == patients.count - 2)
        await #expect(Set(ids(try sandbox.json("patient", "list", "--all"))).count == patients.count)
        await #expect(try sandbox.outpost("patient", "show", first).hasPrefix("patient \(first) (retired)"))
        try await sandbox.expectRefused(["patient", "retire", first, "--status", "gone"], mentioning: ["--status"])
        try await sandbox.expectRefused(
            ["patient", "retire", "pat_01JWMCKG000000000000000000"],
            mentioning: ["no patient with id pat_01JWMCKG000000000000000000"]
        )
    }

    @Test func badValuesAreRefusedWithoutEchoingPatientData() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patient = try Fixture.first("patient")
        let name = try #require(patient.fields["familyName"])
        for (arguments, mention) in [
            (["birthDate=2020-13-45"], "patient.birthDate"),
            (["birthDate=2999-01-01"], "patient.birthDate"),
            (["riskTier=extreme"], "patient.riskTier"),
            (["sex=sometimes"], "patient.sex"),
            (["primaryTeam=tea_01JWMCKG000000000000000000"], "patient.primaryTeam"),
            (["consentToText=perhaps"], "patient.consentToText"),
            (["favouriteColour=blue"], "no field 'favouriteColour'"),
            (["conditions=E11.9"], "conditions+="),
            (["notes-=anything"], "append-only"),
            (["mergedInto=\(patient.id)"], "'outpost patient merge KEEP DUPLICATE --reason …'"),
            (["resolutions+=birthDate: resolved"], "'outpost conflicts resolve ID"),
            (["fhirIDs+=Patient/123"], "'outpost fhir import'"),
            (["givenName=\u{1B}[2J\u{1B}[31mEve"], "control character, U+1B at position 1"),
            (["phone=  "], "only spaces; write phone= to clear"),
        ] {
            let result = try await sandbox.expectRefused(
                ["patient", "set", patient.id] + arguments,
                mentioning: [mention]
            )
            #expect(!result.stderr.contains(name), "patient data in the error: \(result.stderr)")
        }
        try await sandbox.expectRefused(
            ["patient", "add", "givenName=A", "familyName=B", "birthDate=1999-02-30"],
            mentioning: ["patient.birthDate"]
        )
        try await sandbox.expectRefused(
            ["patient", "add", "givenName=A", "familyName=B", "birthDate=1999-02-03", "fhirIDs=Patient/1"],
            mentioning: ["'outpost fhir import'"]
        )
        let unchanged = try await sandbox.outpost("patient", "show", patient.id)
        #expect(!unchanged.contains("resolutions:") && !unchanged.contains("fhirIDs:"))
        // Spaces around a value are trimmed: the same allergy twice, not two.
        try await sandbox.outpost("patient", "set", patient.id, "allergies+=Penicillin ", "allergies+= Penicillin")
        let allergies = try #require(
            (try await sandbox.json("patient", "show", patient.id) as? [String: Any])?["fields"] as? [String: Any]
        )["allergies"]
        #expect((allergies as? [String])?.filter { $0.hasPrefix("Penicillin") || $0.hasPrefix(" ") } == ["Penicillin"])
    }

    @Test func aFHIRLinkCanBeRemovedButNotAdded() async throws {
        let sandbox = try await Sandbox.withPractice()
        let bundle = sandbox.directory.appendingPathComponent("one.json")
        try Data(
            #"""
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient",
             "id": "p1", "name": [{"family": "Linked", "given": ["Ann"]}], "birthDate": "1980-02-03",
             "gender": "female"}}]}
            """#.utf8
        ).write(to: bundle)
        _ = try await sandbox.outpost("fhir", "import", bundle.path, "--team", try Fixture.first("team").id)
        let rows = try #require(try await sandbox.json("patient", "list", "--all") as? [[String: Any]])
        let linked = try #require(
            rows.first { row in (row["fields"] as? [String: Any])?["familyName"] as? String == "Linked" }
        )
        let id = try #require(linked["id"] as? String)
        #expect(try await sandbox.outpost("patient", "show", id).contains("fhirIDs: Patient/p1"))
        _ = try await sandbox.outpost("patient", "set", id, "fhirIDs-=Patient/p1")
        #expect(!(try await sandbox.outpost("patient", "show", id)).contains("Patient/p1"))
    }
}
