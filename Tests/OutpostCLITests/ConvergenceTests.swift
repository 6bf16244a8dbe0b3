import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostTestSupport
import Testing

/// Replicas that hold the same practice and receive the same edits, in different orders, batches and with
/// duplicates, export byte-identical JSON through `outpost export`.
///
/// The practice is imported once with `outpost import` on replica A; B and C receive A's import changes as
/// a new device would (in pages). Then A and B edit concurrently through the CLI — some edits on the same
/// records and fields — and the edits are exchanged: A and B receive each other's, C receives everything
/// shuffled, split into pages and partly duplicated.
struct ConvergenceTests {
    /// Delivers `changes` to `store` shuffled, in pages of seeded sizes, re-sending a seeded share of them.
    private func deliver(
        _ changes: [Change],
        to store: LocalStore,
        using generator: inout SeededGenerator
    ) throws {
        var queue = changes.shuffled(using: &generator)
        let duplicates = queue.prefix(queue.count / 5)
        queue += duplicates
        queue.shuffle(using: &generator)
        while !queue.isEmpty {
            let page = Int.random(in: 1...max(1, min(queue.count, 400)), using: &generator)
            try store.applyRemote(Array(queue.prefix(page)))
            queue.removeFirst(page)
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func replicasThatSawTheSameEditsInAnyOrderExportTheSameBytes(seed: UInt64) async throws {
        var generator = SeededGenerator(seed: seed)
        let a = try Sandbox()
        let b = try Sandbox()
        let c = try Sandbox()
        try await a.outpost("init", "--replica", "a")
        try await b.outpost("init", "--replica", "b")
        try await c.outpost("init", "--replica", "c")
        try await a.outpost("import", Sandbox.fixture("practice-small.json"))
        let imported = try CareStore.open(at: a.store, key: Sandbox.key).store.pendingChanges()
        for sandbox in [b, c] {
            try deliver(imported, to: try CareStore.open(at: sandbox.store, key: Sandbox.key).store, using: &generator)
        }
        await #expect(try b.export() == a.export())

        let patients = Fixture.all("patient")
        let patient = patients[0].id
        let other = patients[1].id
        let subgroups = Fixture.all("subgroup").map(\.id)
        let task = try #require(Fixture.all("task").first { $0.fields["status"] == "requested" }?.id)
        let openTask = try #require(Fixture.all("task").first { $0.fields["status"] == "ready" }?.id)
        let team = try Fixture.first("team")
        let member = try #require(team.lists["members"]?.last)

        // Concurrent edits, as two offline laptops would make them.
        try await a.outpost("patient", "set", patient, "phone=555-0101", "subgroup=\(subgroups[3])")
        try await b.outpost("patient", "set", patient, "phone=555-0102", "subgroup=\(subgroups[2])")
        try await a.outpost("task", "done", task)
        try await b.outpost("task", "cancel", task)
        try await a.outpost("task", "note", task, "Reached by phone")
        try await b.outpost("task", "note", task, "No answer")
        try await a.outpost("team", "member", "remove", team.id, member)
        try await b.outpost("task", "assign", openTask, member)
        try await b.outpost("patient", "set", other, "careGaps+=a1c-overdue", "riskTier=high")
        try await a.outpost("patient", "set", other, "careGaps+=a1c-overdue")
        try await a.outpost("observe", other, "4548-4", "8.1", "--at", "2026-05-02T10:00:00Z")
        try await b.outpost("encounter", "add", other, "home", "--at", "2026-05-02T11:00:00Z")
        try await b.outpost("patient", "retire", patients[2].id)

        let storeA = try CareStore.open(at: a.store, key: Sandbox.key).store
        let storeB = try CareStore.open(at: b.store, key: Sandbox.key).store
        let importedIDs = Set(imported.map(\.id))
        let editsA = try storeA.pendingChanges().filter { !importedIDs.contains($0.id) }
        let editsB = try storeB.pendingChanges()
        #expect(!editsA.isEmpty && !editsB.isEmpty)
        try deliver(editsB, to: storeA, using: &generator)
        try deliver(editsA, to: storeB, using: &generator)
        try deliver(editsA + editsB, to: try CareStore.open(at: c.store, key: Sandbox.key).store, using: &generator)

        let exported = try await a.export()
        await #expect(try b.export() == exported, "seed \(seed): a and b differ")
        await #expect(try c.export() == exported, "seed \(seed): a and c differ")

        // The concurrent writes to review fields wait for a person; both notes are kept; the lww phone has one
        // winner everywhere.
        let record = try await #require(try a.json("patient", "show", patient) as? [String: Any])
        #expect(record["conflicts"] as? [String] == ["subgroup"])
        let phone = (record["fields"] as? [String: Any])?["phone"] as? String
        #expect(phone == "555-0101" || phone == "555-0102")
        let taskRecord = try await #require(try c.json("task", "show", task) as? [String: Any])
        #expect(taskRecord["conflicts"] as? [String] == ["status"])
        let notes = (taskRecord["fields"] as? [String: Any])?["notes"] as? [[String: Any]] ?? []
        #expect(Set(notes.compactMap { $0["value"] as? String }).isSuperset(of: ["Reached by phone", "No answer"]))
        for sandbox in [a, b, c] {
            let status = try await #require(try sandbox.json("status") as? [String: Any])
            #expect(status["openConflicts"] as? Int == 2, "\(status)")
        }
    }
}
