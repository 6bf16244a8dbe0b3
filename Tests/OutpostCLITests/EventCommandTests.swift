import Foundation
import OutpostTestSupport
import Testing

/// `outpost observe`, `outpost observation …` and `outpost encounter …`.
struct EventCommandTests {
    private func fields(_ sandbox: Sandbox, _ group: String, _ id: String) async throws -> [String: Any] {
        try await #require((try sandbox.json(group, "show", id) as? [String: Any])?["fields"] as? [String: Any])
    }

    @Test func observeRecordsAValueWithItsUsualUnitAndTheReplicasSite() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patient = try Fixture.first("patient").id
        let site = try Fixture.first("site").id
        try await sandbox.outpost("use", "--site", site)
        let observation = try await sandbox.outpost("observe", patient, "4548-4", "7.2", "--at", "2026-05-01T09:30:00Z")
        #expect(observation.hasPrefix("obs_"))
        let fields = try await fields(sandbox, "observation", observation)
        #expect(fields["patient"] as? String == patient)
        #expect(fields["code"] as? String == "4548-4")
        #expect(fields["value"] as? String == "7.2")
        #expect(fields["unit"] as? String == "%")
        #expect(fields["effectiveAt"] as? String == "2026-05-01T09:30:00Z")
        #expect(fields["status"] as? String == "final")
        #expect(fields["site"] as? String == site)

        let other = try await sandbox.outpost("observe", patient, "2089-1", "3.1", "--unit", "mmol/L")
        await #expect(try self.fields(sandbox, "observation", other)["unit"] as? String == "mmol/L")
        let ifcc = try await sandbox.outpost("observe", patient, "4548-4", "53", "--unit", "mmol/mol")
        await #expect(try self.fields(sandbox, "observation", ifcc)["unit"] as? String == "mmol/mol")
        let listed = try await #require(try sandbox.json("observation", "list") as? [[String: Any]])
        #expect(listed.contains { $0["id"] as? String == observation })
        #expect(listed.count == Fixture.all("observation").count + 3)
        // One patient's: the three recorded here and the fixture's of that patient.
        let own = try await #require(try sandbox.json("observation", "list", "--patient", patient) as? [[String: Any]])
        let fixture = Fixture.all("observation").filter { $0.fields["patient"] == patient }.count
        #expect(own.count == fixture + 3 && own.contains { $0["id"] as? String == ifcc })
        try await sandbox.expectRefused(["site", "list", "--patient", patient], mentioning: ["--patient"])
    }

    @Test func observeRefusesBadInput() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patient = try Fixture.first("patient").id
        try await sandbox.expectRefused(
            ["observe", patient, "1234-5", "7"],
            mentioning: ["observation.code", "4548-4"]
        )
        try await sandbox.expectRefused(
            ["observe", patient, "4548-4", "7.2", "--at", "yesterday"],
            mentioning: ["observation.effectiveAt"]
        )
        try await sandbox.expectRefused(
            ["observe", patient, "4548-4", "7.2", "--at", "2999-01-01T00:00:00Z"],
            mentioning: ["observation.effectiveAt"]
        )
        try await sandbox.expectRefused(["observe", patient, "4548-4", "high"], mentioning: ["observation.value"])
        try await sandbox.expectRefused(
            ["observe", patient, "8480-6", "17", "--unit", "kPa"],
            mentioning: ["observation.unit", "'kPa' is not a unit Outpost records systolic blood pressure", "mm[Hg]"]
        )
        try await sandbox.expectRefused(
            ["observe", patient, "4548-4", "7.2", "--unit", "mg/dL"],
            mentioning: ["observation.unit", "% or mmol/mol"]
        )
        try await sandbox.expectRefused(
            ["observe", "pat_01JWMCKG000000000000000000", "4548-4", "7.2"],
            mentioning: ["no patient with id pat_01JWMCKG000000000000000000"]
        )
        try await sandbox.expectRefused(
            ["observe", patient, "4548-4", "7.2", "--site", "sit_01JWMCKG000000000000000000"],
            mentioning: ["observation.site"]
        )
    }

    @Test func anObservationIsCorrectedByMarkingItEnteredInError() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patient = try Fixture.first("patient").id
        let observation = try await sandbox.outpost("observe", patient, "8480-6", "180")
        try await sandbox.expectRefused(
            ["observation", "set", observation, "value=120"],
            mentioning: ["observation.value"]
        )
        try await sandbox.outpost("observation", "set", observation, "status=entered-in-error")
        await #expect(
            try sandbox.outpost("observation", "show", observation).hasPrefix("observation \(observation) (retired)")
        )
    }

    @Test func encounterAddListAndShow() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patient = try Fixture.first("patient").id
        let site = try Fixture.first("site").id
        let encounter = try await sandbox.outpost(
            "encounter",
            "add",
            patient,
            "home",
            "--at",
            "2026-04-02T15:00:00Z",
            "--cost-cents",
            "12500",
            "--site",
            site
        )
        #expect(encounter.hasPrefix("enc_"))
        let fields = try await fields(sandbox, "encounter", encounter)
        #expect(fields["kind"] as? String == "home")
        #expect(fields["occurredAt"] as? String == "2026-04-02T15:00:00Z")
        #expect(fields["costCents"] as? Int == 12500)
        #expect(fields["site"] as? String == site)
        #expect(fields["status"] as? String == "finished")
        let list = try await sandbox.outpost("encounter", "list")
        #expect(list.contains(encounter))
        #expect(list.split(separator: "\n").first?.contains("OCCURRED AT") == true)
        await #expect(try sandbox.outpost("encounter", "show", encounter).contains("  costCents: 12500"))

        // A cost that arrives later (claims) may be added once.
        let uncosted = try await sandbox.outpost("encounter", "add", patient, "ed-visit")
        try await sandbox.outpost("encounter", "set", uncosted, "costCents=90000")
        await #expect(try self.fields(sandbox, "encounter", uncosted)["costCents"] as? Int == 90000)
    }

    @Test func encounterAddRefusesBadInput() async throws {
        let sandbox = try await Sandbox.withPractice()
        let patient = try Fixture.first("patient").id
        try await sandbox.expectRefused(
            ["encounter", "add", patient, "spaceship"],
            mentioning: ["encounter.kind", "office"]
        )
        try await sandbox.expectRefused(
            ["encounter", "add", patient, "home", "--at", "2026-02-30T10:00:00Z"],
            mentioning: ["encounter.occurredAt"]
        )
        try await sandbox.expectRefused(
            ["encounter", "add", patient, "home", "--cost-cents=-1"],
            mentioning: ["encounter.costCents"]
        )
        try await sandbox.expectRefused(
            ["encounter", "add", patient, "home", "--cost-cents", "lots"],
            mentioning: ["--cost-cents"]
        )
        try await sandbox.expectRefused(
            ["encounter", "add", "pat_01JWMCKG000000000000000000", "home"],
            mentioning: ["no patient with id pat_01JWMCKG000000000000000000"]
        )
    }
}
