import Foundation
import OutpostTestSupport
import Testing

/// `outpost patient duplicates` on the small fixture practice.
struct DuplicateCommandTests {
    @Test func aPatientRegisteredTwiceWithATypoIsListedOnce() async throws {
        let sandbox = try await Sandbox.withPractice()
        await #expect(try sandbox.outpost("patient", "duplicates") == "(none)")
        let original = try #require(Fixture.all("patient").first { $0.fields["status"] == "active" })
        let family = try #require(original.fields["familyName"])
        let copy = try await sandbox.outpost(
            "patient",
            "add",
            "givenName=\(original.fields["givenName"] ?? "")",
            "familyName=\(family.uppercased())",
            "birthDate=\(original.fields["birthDate"] ?? "")",
            "sex=\(original.fields["sex"] ?? "")",
            "subgroup=\(original.fields["subgroup"] ?? "")",
            "primaryTeam=\(original.fields["primaryTeam"] ?? "")"
        )
        let pairs = try await #require(try sandbox.json("patient", "duplicates") as? [[String: Any]])
        #expect(pairs.count == 1)
        #expect(Set([pairs.first?["first"] as? String, pairs.first?["second"] as? String]) == [original.id, copy])
        let evidence = pairs.first?["evidence"] as? [String] ?? []
        #expect(evidence.contains("birthDate equal") && evidence.contains("givenName equal"), "\(evidence)")
        let table = try await sandbox.outpost("patient", "duplicates")
        #expect(table.hasPrefix("PATIENT  "), "\(table)")
        #expect(table.contains(copy))
        try await sandbox.expectRefused(["patient", "duplicates", "--min-score", "2"], mentioning: ["--min-score"])
    }
}
