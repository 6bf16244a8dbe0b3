import Foundation
import OutpostClient
import OutpostModel
import OutpostTestSupport
import Testing

/// `outpost patient merge` and `outpost patient unmerge` on the small fixture practice.
struct MergeCommandTests {
    /// Active patients the panel counts, over every team.
    static func panelPatients(_ sandbox: Sandbox) throws -> Int {
        let panel = try #require(try sandbox.json("panel") as? [String: Any])
        let teams = try #require(panel["teams"] as? [[String: Any]])
        return teams.compactMap { $0["patients"] as? Int }.reduce(0, +)
    }

    @Test func aDuplicateMergesIntoTheSurvivorAndUnmergesBack() throws {
        let sandbox = try Sandbox.withPractice()
        let before = try Self.panelPatients(sandbox)
        let original = try #require(Fixture.all("patient").first { $0.fields["status"] == "active" })
        let family = try #require(original.fields["familyName"])
        // The same person registered again offline, the family name typed in capitals.
        let copy = try sandbox.outpost(
            "patient",
            "add",
            "givenName=\(original.fields["givenName"] ?? "")",
            "familyName=\(family.uppercased())",
            "birthDate=\(original.fields["birthDate"] ?? "")",
            "sex=\(original.fields["sex"] ?? "")",
            "subgroup=\(original.fields["subgroup"] ?? "")",
            "primaryTeam=\(original.fields["primaryTeam"] ?? "")",
            "notes=seen at the school clinic"
        )
        let task = try sandbox.outpost("task", "add", copy, "kind=outreach", "title=Call back")
        #expect(try Self.panelPatients(sandbox) == before + 1)

        let merged = try sandbox.outpost("patient", "merge", original.id, copy, "--reason", "registered twice offline")
        #expect(merged.hasPrefix("\(copy): merged into \(original.id)"), "\(merged)")
        #expect(merged.contains("\(original.id).familyName"), "\(merged)")
        // The differing family name waits in the inbox, on the survivor.
        let conflicts = try #require(try sandbox.json("conflicts", "list") as? [[String: Any]])
        #expect(conflicts.contains { $0["id"] as? String == "\(original.id).familyName" }, "\(conflicts)")
        // The person is counted once; the duplicate's task follows the survivor; no pair is left to merge.
        #expect(try Self.panelPatients(sandbox) == before)
        let tasks = try #require(try sandbox.json("task", "list", "--patient", original.id) as? [[String: Any]])
        #expect(tasks.contains { $0["id"] as? String == task })
        #expect(try sandbox.outpost("patient", "duplicates") == "(none)")
        // Audited: the link and the reason, with who and when, in the duplicate's history.
        let history = try #require(try sandbox.json("history", copy) as? [[String: Any]])
        #expect(history.contains { $0["field"] as? String == "mergedInto" && $0["value"] as? String == original.id })
        #expect(
            history.contains {
                $0["field"] as? String == "merges"
                    && $0["value"] as? String == "merged into \(original.id): registered twice offline"
            }
        )

        // Merges that make no sense are refused, and write nothing.
        try sandbox.expectRefused(
            ["patient", "merge", original.id, copy, "--reason", "again"],
            mentioning: ["already merged"]
        )
        try sandbox.expectRefused(["patient", "merge", copy, original.id, "--reason", "back"], mentioning: [copy])
        try sandbox.expectRefused(["patient", "merge", original.id, original.id, "--reason", "x"])
        try sandbox.expectRefused(
            ["patient", "merge", original.id, "pat_nope", "--reason", "x"],
            mentioning: ["pat_nope"]
        )
        try sandbox.expectRefused(["patient", "merge", original.id, copy], mentioning: ["--reason"])
        try sandbox.expectRefused(["patient", "unmerge", original.id, "--reason", "x"], mentioning: ["not merged"])

        // Undone: the duplicate is a patient of its own again, with its task.
        let unmerged = try sandbox.outpost("patient", "unmerge", copy, "--reason", "two people after all")
        #expect(unmerged == "\(copy): unmerged from \(original.id)")
        #expect(try Self.panelPatients(sandbox) == before + 1)
        let own = try #require(try sandbox.json("task", "list", "--patient", copy) as? [[String: Any]])
        #expect(own.map { $0["id"] as? String } == [task])
        let after = try #require(try sandbox.json("task", "list", "--patient", original.id) as? [[String: Any]])
        #expect(!after.contains { $0["id"] as? String == task })
        #expect(try sandbox.outpost("patient", "duplicates").contains(copy))
    }
}

/// Merges made on replicas apart from each other, exchanged as sync delivers them.
struct MergeSyncTests {
    @Test func oppositeAndChainedMergesMadeApartConvergeToOneSurvivor() throws {
        let sandboxes = try ["a", "b", "c"].map { name in
            let sandbox = try Sandbox()
            try sandbox.outpost("init", "--replica", name)
            return sandbox
        }
        try sandboxes[0].outpost("import", Sandbox.fixture("practice-small.json"))
        let imported = try CareStore.open(at: sandboxes[0].store, key: Sandbox.key).store.pendingChanges()
        for sandbox in sandboxes.dropFirst() {
            try CareStore.open(at: sandbox.store, key: Sandbox.key).store.applyRemote(imported)
        }
        let before = try MergeCommandTests.panelPatients(sandboxes[0])
        let ids = Fixture.all("patient").filter { $0.fields["status"] == "active" }.prefix(3).map(\.id).sorted()
        // Apart: A merges 0 into 1, B merges 1 into 0 (the opposite), C merges 1 into 2 (a chain on B's).
        try sandboxes[0].outpost("patient", "merge", ids[1], ids[0], "--reason", "a")
        try sandboxes[1].outpost("patient", "merge", ids[0], ids[1], "--reason", "b")
        try sandboxes[2].outpost("patient", "merge", ids[2], ids[1], "--reason", "c")
        let made = try sandboxes.map { try CareStore.open(at: $0.store, key: Sandbox.key).store.pendingChanges() }
        for (index, sandbox) in sandboxes.enumerated() {
            let store = try CareStore.open(at: sandbox.store, key: Sandbox.key).store
            for (other, changes) in made.enumerated() where other != index { try store.applyRemote(changes) }
        }
        let export = try sandboxes[0].export()
        for sandbox in sandboxes {
            #expect(try sandbox.export() == export)
            let merges = try CareStore.open(at: sandbox.store, key: Sandbox.key).patientMerges()
            // 0 and 1 form a cycle (0 survives, the smaller id); 1 also points at 2 on a concurrent write to
            // the same field: whichever link wins, every replica resolves the same survivors.
            #expect(merges == (try CareStore.open(at: sandboxes[0].store, key: Sandbox.key).patientMerges()))
            #expect(Set(ids.map { merges.survivor(of: $0) }).count <= 2)
        }
        let counted = try MergeCommandTests.panelPatients(sandboxes[0])
        let merges = try CareStore.open(at: sandboxes[0].store, key: Sandbox.key).patientMerges()
        #expect(counted == before - merges.survivors.count)
        for sandbox in sandboxes { #expect(try MergeCommandTests.panelPatients(sandbox) == counted) }
        // B's and C's concurrent links for patient 1 wait in the inbox.
        let conflicts = try #require(try sandboxes[1].json("conflicts", "list") as? [[String: Any]])
        #expect(conflicts.contains { $0["id"] as? String == "\(ids[1]).mergedInto" }, "\(conflicts)")
    }
}
