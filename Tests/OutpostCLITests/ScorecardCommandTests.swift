import Foundation
import OutpostTestSupport
import Testing

/// `outpost scorecard`, `outpost panel` and `outpost gaps` on the hand-checkable sample practice
/// (fixtures/practice-scorecard.json; its expected 2026-Q2 scorecard is fixtures/practice-scorecard.expected.json).
struct ScorecardCommandTests {
    private func sample() async throws -> Sandbox {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init", "--replica", "score")
        try await sandbox.outpost("import", Sandbox.fixture("practice-scorecard.json"))
        return sandbox
    }

    private func groups(_ json: Any) throws -> [String: [String: Any]] {
        let object = try #require(json as? [String: Any])
        var byLabel: [String: [String: Any]] = [:]
        for group in try #require(object["groups"] as? [[String: Any]]) {
            byLabel[try #require(group["label"] as? String)] = group
        }
        byLabel["all"] = try #require(object["total"] as? [String: Any])
        return byLabel
    }

    @Test func theSamplePracticesQuarterMatchesTheHandCheckedGoldenFile() async throws {
        let sandbox = try await sample()
        let output = try await sandbox.outpost("scorecard", "--period", "2026-Q2", "--json")
        let golden = try String(contentsOfFile: Sandbox.fixture("practice-scorecard.expected.json"), encoding: .utf8)
        #expect(output + "\n" == golden)

        // The hand check (docs/scorecard.md, "The sample practice"): Hal is inactive; Xena died on 2026-06-16.
        let card = try groups(try await sandbox.json("scorecard", "--period", "2026-Q2"))
        #expect(card["healthy"]?["memberMonths"] as? Double == 6)
        #expect(card["chronic"]?["memberMonths"] as? Double == 6)
        #expect(card["complex"]?["memberMonths"] as? Double == 5.5)  // 3 + April, May and 15/30 of June
        #expect(card["all"]?["paymentCents"] as? Int == 73_000)  // 6 × 500 + 6 × 2,500 + 5.5 × 10,000
        #expect(card["all"]?["costCents"] as? Int == 1_407_000)
        #expect(card["all"]?["costPMPMCents"] as? Int == 80_400)  // 1,407,000 / 17.5
        #expect((card["chronic"]?["diabetesControl"] as? [String: Any])?["numerator"] as? Int == 1)
        #expect((card["chronic"]?["diabetesControl"] as? [String: Any])?["denominator"] as? Int == 2)
        #expect(card["complex"]?["edVisitsPer1000"] as? Double == 2181.8)  // 12,000 / 5.5
        #expect(card["chronic"]?["medianDaysToCloseReferral"] as? Double == 28)
    }

    @Test func fromAndToGiveTheSameScorecardAsThePeriodAndCSVHasOneRowPerGroup() async throws {
        let sandbox = try await sample()
        await #expect(
            try sandbox.outpost("scorecard", "--from", "2026-04-01", "--to", "2026-06-30", "--json")
                == sandbox.outpost("scorecard", "--period", "2026-Q2", "--json")
        )
        let csv = try await sandbox.outpost("scorecard", "--period", "2026-Q2", "--csv").split(separator: "\n")
        #expect(csv.count == 5)  // header, three subgroups, all
        #expect(csv.first?.hasPrefix("group,label,patients,memberMonths,") == true)
        #expect(csv.last?.hasPrefix("all,All patients,6,17.5,") == true)
        #expect(csv.last?.hasSuffix(",14070,1,804,730,-13340") == true)  // cost, uncosted, PMPM, payment, margin
        let table = try await sandbox.outpost("scorecard", "--period", "2026-Q2", "--by", "team")
        #expect(table.contains("TEAM BLUE") && table.contains("TEAM GREEN"))
    }

    @Test func theReadoutGivesEachMeasuresChangeAgainstTheBaseline() async throws {
        let sandbox = try await sample()
        let readout = try await #require(
            try sandbox.json("scorecard", "--baseline", "2026-04-01..2026-04-30", "--compare", "2026-05-01..2026-05-31")
                as? [String: Any]
        )
        let groups = try #require(readout["groups"] as? [[String: Any]])
        let all = try #require(groups.last)
        #expect(all["key"] as? String == "all")
        let lines = try #require(all["lines"] as? [[String: Any]])
        let ed = try #require(lines.first { $0["name"] as? String == "edVisits" })
        #expect(ed["baseline"] as? Double == 0 && ed["compare"] as? Double == 1 && ed["change"] as? Double == 1)
        let cost = try #require(lines.first { $0["name"] as? String == "cost" })
        #expect(cost["baseline"] as? Double == 150)  // Cora's office visit
        #expect(cost["compare"] as? Double == 13_800)  // Xena's ED visit and admission
        #expect(cost["change"] as? Double == 13_650)
    }

    /// A period that ends after today is measured up to today (no member-months or payments counted ahead), said
    /// on stderr; one that starts after today is refused.
    @Test func aPeriodIsMeasuredUpToToday() async throws {
        let sandbox = try await sample()
        let clipped = try await sandbox.run(["scorecard", "--period", "2026-Q2", "--today", "2026-05-15"])
        #expect(clipped.status == 0, "\(clipped)")
        #expect(clipped.stdout.hasPrefix("Scorecard 2026-04-01..2026-05-15 by subgroup"), "\(clipped.stdout)")
        #expect(clipped.stderr.contains("2026-04-01..2026-06-30 ends after today: measured up to 2026-05-15"))
        await #expect(
            try sandbox.outpost("scorecard", "--period", "2026-Q2", "--today", "2026-05-15", "--json")
                == sandbox.outpost(
                    "scorecard",
                    "--from",
                    "2026-04-01",
                    "--to",
                    "2026-05-15",
                    "--today",
                    "2026-06-30",
                    "--json"
                )
        )
        try await sandbox.expectRefused(
            ["scorecard", "--period", "2026-Q2", "--today", "2026-03-31"],
            mentioning: ["starts after today (2026-03-31)"]
        )
    }

    @Test func badPeriodsAndGroupingsAreRefused() async throws {
        let sandbox = try await sample()
        try await sandbox.expectRefused(["scorecard"], mentioning: ["--period"])
        try await sandbox.expectRefused(["scorecard", "--period", "2026-Q5"], mentioning: ["--period", "2026-Q5"])
        try await sandbox.expectRefused(["scorecard", "--from", "2026-07-01"], mentioning: ["--from and --to"])
        try await sandbox.expectRefused(
            ["scorecard", "--from", "2026-07-01", "--to", "2026-06-01"],
            mentioning: ["--from/--to"]
        )
        try await sandbox.expectRefused(
            ["scorecard", "--period", "2026", "--by", "ward"],
            mentioning: ["--by", "ward"]
        )
        try await sandbox.expectRefused(["scorecard", "--baseline", "2026-Q1"], mentioning: ["--compare"])
        try await sandbox.expectRefused(
            ["scorecard", "--period", "2026", "--json", "--csv"],
            mentioning: ["--json or --csv"]
        )
        try await sandbox.expectRefused(["gaps", "--today", "tomorrow"], mentioning: ["--today"])
    }

    @Test func panelCountsActivePatientsByTeamSubgroupAndRiskTier() async throws {
        let sandbox = try await sample()
        let panel = try await #require(try sandbox.json("panel") as? [String: Any])
        let teams = try #require(panel["teams"] as? [[String: Any]])
        #expect(teams.map { $0["label"] as? String } == ["Team Blue", "Team Green"])
        #expect(teams.map { $0["patients"] as? Int } == [2, 3])  // Hal (inactive) and Xena (deceased) left out
        #expect(teams.last?["bySubgroup"] as? [String: Int] == ["chronic": 2, "complex": 1])
        #expect(teams.last?["byRiskTier"] as? [String: Int] == ["high": 2, "very-high": 1])
        #expect(panel["openGapsBySubgroup"] as? [String: [String: Int]] == ["healthy": ["flu-vaccine": 1]])
        #expect((panel["withoutTeam"] as? [String])?.isEmpty == true)
        await #expect(
            try sandbox.outpost("panel").contains("Work to do: 0 patient(s) with no team, 0 with no subgroup")
        )
    }

    @Test func gapsCreateTasksOnceAndASecondRunCreatesNothingNew() async throws {
        let sandbox = try await sample()
        // Cora's and Cyril's latest HbA1c (2026-05-02, 2026-04-10) are more than 182 days before 2026-11-20.
        let listed = try await #require(try sandbox.json("gaps", "--today", "2026-11-20") as? [[String: Any]])
        #expect(listed.map { $0["rule"] as? String } == ["a1c-due", "a1c-due"])
        #expect(listed.allSatisfy { $0["existingTask"] == nil })
        let tasksBefore = try await #require(try sandbox.json("task", "list") as? [[String: Any]]).count

        let first = try await sandbox.run(["gaps", "--today", "2026-11-20", "--create-tasks"])
        #expect(first.status == 0 && first.stderr.contains("created 2 task(s); 0 already had one"))
        let second = try await sandbox.run(["gaps", "--today", "2026-11-20", "--create-tasks"])
        #expect(second.status == 0 && second.stderr.contains("created 0 task(s); 2 already had one"))
        let tasks = try await #require(try sandbox.json("task", "list") as? [[String: Any]])
        #expect(tasks.count == tasksBefore + 2)
        let after = try await #require(try sandbox.json("gaps", "--today", "2026-11-20") as? [[String: Any]])
        #expect(after.allSatisfy { ($0["existingTask"] as? String)?.hasPrefix("tsk_") == true })
        // In May both readings were recent: nothing is due.
        await #expect((try sandbox.json("gaps", "--today", "2026-05-25") as? [Any])?.isEmpty == true)
    }
}
