import Foundation
import OutpostClient
import OutpostModel
import OutpostTestSupport
import Testing

/// `outpost patient merge` and `outpost patient unmerge` on the small fixture practice.
struct MergeCommandTests {
    /// Active patients the panel counts, over every team.
    static func panelPatients(_ sandbox: Sandbox) async throws -> Int {
        let panel = try #require(try await sandbox.json("panel") as? [String: Any])
        let teams = try #require(panel["teams"] as? [[String: Any]])
        return teams.compactMap { $0["patients"] as? Int }.reduce(0, +)
    }

    @Test func aDuplicateMergesIntoTheSurvivorAndUnmergesBack() async throws {
        let sandbox = try await Sandbox.withPractice()
        let before = try await Self.panelPatients(sandbox)
        let original = try #require(Fixture.all("patient").first { $0.fields["status"] == "active" })
        let family = try #require(original.fields["familyName"])
        // The same person registered again offline, the family name typed in capitals.
        let copy = try await sandbox.outpost(
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
        let task = try await sandbox.outpost("task", "add", copy, "kind=outreach", "title=Call back")
        await #expect(try Self.panelPatients(sandbox) == before + 1)

        let merged = try await sandbox.outpost(
            "patient",
            "merge",
            original.id,
            copy,
            "--reason",
            "registered twice offline"
        )
        #expect(merged.hasPrefix("\(copy): merged into \(original.id)"), "\(merged)")
        #expect(merged.contains("\(original.id).familyName"), "\(merged)")
        // The differing family name waits in the inbox, on the survivor.
        let conflicts = try await #require(try sandbox.json("conflicts", "list") as? [[String: Any]])
        #expect(conflicts.contains { $0["id"] as? String == "\(original.id).familyName" }, "\(conflicts)")
        // The person is counted once; the duplicate's task follows the survivor; no pair is left to merge.
        await #expect(try Self.panelPatients(sandbox) == before)
        let tasks = try await #require(try sandbox.json("task", "list", "--patient", original.id) as? [[String: Any]])
        #expect(tasks.contains { $0["id"] as? String == task })
        await #expect(try sandbox.outpost("patient", "duplicates") == "(none)")
        // Audited: the link and the reason, with who and when, in the duplicate's history.
        let history = try await #require(try sandbox.json("history", copy) as? [[String: Any]])
        #expect(history.contains { $0["field"] as? String == "mergedInto" && $0["value"] as? String == original.id })
        #expect(
            history.contains {
                $0["field"] as? String == "merges"
                    && $0["value"] as? String == "merged into \(original.id): registered twice offline"
            }
        )

        // Merges that make no sense are refused, and write nothing.
        try await sandbox.expectRefused(
            ["patient", "merge", original.id, copy, "--reason", "again"],
            mentioning: ["already merged"]
        )
        try await sandbox.expectRefused(
            ["patient", "merge", copy, original.id, "--reason", "back"],
            mentioning: [copy]
        )
        try await sandbox.expectRefused(["patient", "merge", original.id, original.id, "--reason", "x"])
        try await sandbox.expectRefused(
            ["patient", "merge", original.id, "pat_nope", "--reason", "x"],
            mentioning: ["pat_nope"]
        )
        try await sandbox.expectRefused(["patient", "merge", original.id, copy], mentioning: ["--reason"])
        try await sandbox.expectRefused(
            ["patient", "unmerge", original.id, "--reason", "x"],
            mentioning: ["not merged"]
        )

        // Undone: the duplicate is a patient of its own again, with its task.
        let unmerged = try await sandbox.outpost("patient", "unmerge", copy, "--reason", "two people after all")
        #expect(unmerged == "\(copy): unmerged from \(original.id)")
        await #expect(try Self.panelPatients(sandbox) == before + 1)
        let own = try await #require(try sandbox.json("task", "list", "--patient", copy) as? [[String: Any]])
        #expect(own.map { $0["id"] as? String } == [task])
        let after = try await #require(try sandbox.json("task", "list", "--patient", original.id) as? [[String: Any]])
        #expect(!after.contains { $0["id"] as? String == task })
        await #expect(try sandbox.outpost("patient", "duplicates").contains(copy))
    }

    /// The survivor's chart shows what stays on its duplicate (an allergy, a note, a phone it lacks), each marked
    /// with where it is from; the list leaves the duplicate out, `--all` keeps it; the duplicate says whom it
    /// follows; a FHIR export marks it inactive, replaced by the survivor.
    @Test func theSurvivorShowsItsDuplicatesAllergiesAndNotesAndListsHideTheDuplicate() async throws {
        let sandbox = try await Sandbox.withPractice()
        let original = try #require(Fixture.all("patient").first { $0.fields["status"] == "active" })
        _ = try await sandbox.outpost("patient", "set", original.id, "phone=")
        let copy = try await sandbox.outpost(
            arguments: ["patient", "add"]
                + ["givenName", "familyName", "birthDate", "sex", "subgroup", "primaryTeam"].map {
                    "\($0)=\(original.fields[$0] ?? "")"
                } + ["allergies=Latex", "notes=walk-in at the school clinic", "phone=(406) 555-0199"]
        )
        _ = try await sandbox.outpost("patient", "merge", original.id, copy, "--reason", "one person")
        let chart = try await sandbox.outpost("patient", "show", original.id)
        #expect(chart.contains("Latex (from merged \(copy))"), "\(chart)")
        #expect(chart.contains("walk-in at the school clinic (from merged \(copy))"), "\(chart)")
        #expect(chart.contains("phone: (406) 555-0199 (from merged \(copy))"), "\(chart)")
        await #expect(
            try sandbox.outpost("patient", "show", copy).hasPrefix("patient \(copy) (merged into \(original.id))")
        )
        let listed = try #require(try await sandbox.json("patient", "list") as? [[String: Any]])
        #expect(!listed.contains { $0["id"] as? String == copy })
        #expect(listed.contains { $0["id"] as? String == original.id })
        let all = try #require(try await sandbox.json("patient", "list", "--all") as? [[String: Any]])
        #expect(all.contains { $0["id"] as? String == copy })

        let folder = sandbox.path("fhir")
        _ = try await sandbox.outpost("fhir", "export", "--out", folder)
        let lines = try String(contentsOfFile: folder + "/Patient.ndjson", encoding: .utf8).split(separator: "\n")
        let exported = try #require(lines.first { $0.contains(copy.replacingOccurrences(of: "_", with: "-")) })
        #expect(exported.contains(#""active":false"#))
        #expect(exported.contains(#""type":"replaced-by""#))
    }
}

/// Merges made on replicas apart from each other, exchanged as sync delivers them.
struct MergeSyncTests {
    @Test func oppositeAndChainedMergesMadeApartConvergeToOneSurvivor() async throws {
        var sandboxes: [Sandbox] = []
        for name in ["a", "b", "c"] {
            let sandbox = try Sandbox()
            try await sandbox.outpost("init", "--replica", name)
            sandboxes.append(sandbox)
        }
        try await sandboxes[0].outpost("import", Sandbox.fixture("practice-small.json"))
        let imported = try CareStore.open(at: sandboxes[0].store, key: Sandbox.key).store.pendingChanges()
        for sandbox in sandboxes.dropFirst() {
            try CareStore.open(at: sandbox.store, key: Sandbox.key).store.applyRemote(imported)
        }
        let before = try await MergeCommandTests.panelPatients(sandboxes[0])
        let ids = Fixture.all("patient").filter { $0.fields["status"] == "active" }.prefix(3).map(\.id).sorted()
        // Apart: A merges 0 into 1, B merges 1 into 0 (the opposite), C merges 1 into 2 (a chain on B's).
        try await sandboxes[0].outpost("patient", "merge", ids[1], ids[0], "--reason", "a")
        try await sandboxes[1].outpost("patient", "merge", ids[0], ids[1], "--reason", "b")
        try await sandboxes[2].outpost("patient", "merge", ids[2], ids[1], "--reason", "c")
        let made = try sandboxes.map { try CareStore.open(at: $0.store, key: Sandbox.key).store.pendingChanges() }
        for (index, sandbox) in sandboxes.enumerated() {
            let store = try CareStore.open(at: sandbox.store, key: Sandbox.key).store
            for (other, changes) in made.enumerated() where other != index { try store.applyRemote(changes) }
        }
        let export = try await sandboxes[0].export()
        for sandbox in sandboxes {
            await #expect(try sandbox.export() == export)
            let merges = try CareStore.open(at: sandbox.store, key: Sandbox.key).patientMerges()
            // 0 and 1 form a cycle (0 survives, the smaller id); 1 also points at 2 on a concurrent write to
            // the same field: whichever link wins, every replica resolves the same survivors.
            #expect(merges == (try CareStore.open(at: sandboxes[0].store, key: Sandbox.key).patientMerges()))
            #expect(Set(ids.map { merges.survivor(of: $0) }).count <= 2)
        }
        let counted = try await MergeCommandTests.panelPatients(sandboxes[0])
        let merges = try CareStore.open(at: sandboxes[0].store, key: Sandbox.key).patientMerges()
        #expect(counted == before - merges.survivors.count)
        for sandbox in sandboxes { await #expect(try MergeCommandTests.panelPatients(sandbox) == counted) }
        // B's and C's concurrent links for patient 1 wait in the inbox.
        let conflicts = try await #require(try sandboxes[1].json("conflicts", "list") as? [[String: Any]])
        #expect(conflicts.contains { $0["id"] as? String == "\(ids[1]).mergedInto" }, "\(conflicts)")
    }
}
