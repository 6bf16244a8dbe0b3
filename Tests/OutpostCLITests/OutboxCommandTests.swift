import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// `outpost outbox list|show|retry|discard` on a store whose last push the server answered with per-change
/// refusals (recorded through the library, as the sync engine does), and the bad input they refuse.
struct OutboxCommandTests {
    /// A replica with the small practice imported and three patients edited, all pushed, the second edit
    /// refused by the server.
    func refusedSandbox() async throws -> (Sandbox, refused: ChangeID) {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init", "--replica", "desk")
        try await sandbox.outpost("import", Sandbox.fixture("practice-small.json"))
        let patients = try await #require(try sandbox.json("patient", "list") as? [[String: Any]])
            .compactMap { $0["id"] as? String }.prefix(3)
        try #require(patients.count == 3)
        for patient in patients {
            try await sandbox.outpost("patient", "set", patient, "preferredLanguage=fr")
        }
        let store = try CareStore.open(at: sandbox.store, key: Sandbox.key).store
        let pushed = try store.pendingChanges()
        let refused = pushed[pushed.count - 2]
        let response = PushResponse(
            accepted: pushed.count - 1,
            duplicates: 0,
            acknowledged: try #require(pushed.last?.id.counter),
            serverTimeMillis: 0,
            refused: [
                RefusedChange(
                    id: refused.id,
                    code: "out_of_scope",
                    message: "change 5 edits \(refused.record), whose patient is outside this token's scope",
                    field: "record"
                )
            ]
        )
        #expect(try store.recordPush(pushed, response: response) == 1)
        return (sandbox, refused.id)
    }

    @Test func listShowRetryAndDiscardARefusedChange() async throws {
        let (sandbox, id) = try await refusedSandbox()
        let status = try await #require(try sandbox.json("status") as? [String: Any])
        #expect(status["pendingChanges"] as? Int == 0)
        #expect(status["refusedChanges"] as? Int == 1)
        await #expect(
            try sandbox.outpost("status").contains(
                "refused changes: 1 change refused by the server and held aside; see them with 'outpost outbox list'"
            )
        )

        let listed = try await sandbox.outpost("outbox", "list")
        #expect(listed.hasPrefix("\(id)  refused  patient/pat_"), "\(listed)")
        #expect(listed.contains(".preferredLanguage"), "\(listed)")
        #expect(listed.contains("out_of_scope"))
        let rows = try await #require(try sandbox.json("outbox", "list") as? [[String: Any]])
        #expect(rows.count == 1 && rows.first?["id"] as? String == id.description)
        // By its full id or by its counter alone.
        for spelling in [id.description, String(id.counter)] {
            let shown = try await sandbox.outpost("outbox", "show", spelling)
            #expect(shown.contains("change:   \(id)") && shown.contains("out_of_scope (record)"), "\(shown)")
        }

        await #expect(
            try sandbox.outpost("outbox", "retry", String(id.counter)) == "\(id) will be sent again with the next sync"
        )
        let retrying = try await #require(try sandbox.json("outbox", "list") as? [[String: Any]])
        #expect(retrying.first?["state"] as? String == "retry")

        try await sandbox.outpost(
            "outbox",
            "discard",
            id.description,
            "--reason",
            "entered twice; the other copy is kept"
        )
        await #expect(try sandbox.outpost("outbox", "list") == "no refused changes held aside")
        let discarded = try await #require(try sandbox.json("outbox", "list", "--discarded") as? [[String: Any]])
        #expect(discarded.first?["state"] as? String == "discarded")
        #expect(discarded.first?["discardReason"] as? String == "entered twice; the other copy is kept")
        #expect(discarded.first?["discardedBy"] as? String == "replica:desk")
        let shown = try await sandbox.outpost("outbox", "show", id.description)
        #expect(shown.contains("entered twice; the other copy is kept"), "\(shown)")
        let status2 = try await #require(try sandbox.json("status") as? [String: Any])
        #expect(status2["refusedChanges"] as? Int == 0)
        // The discard is in the audit trail, next to the change it gave up.
        let audit = try await #require(try sandbox.json("audit") as? [[String: Any]])
        let entry = audit.first { $0["change"] as? String == id.description }
        #expect(
            (entry?["discarded"] as? [String: Any])?["reason"] as? String == "entered twice; the other copy is kept"
        )
        #expect(audit.filter { $0["discarded"] != nil }.count == 1)
        await #expect(
            try sandbox.outpost("audit").contains(
                "\(id) was refused by the server and discarded by replica:desk at "
            )
        )
    }

    @Test func badInputIsRefusedWithExitTwoAndChangesNothing() async throws {
        let (sandbox, id) = try await refusedSandbox()
        let before = try await sandbox.outpost("outbox", "list", "--json")

        try await sandbox.expectRefused(["outbox", "discard", id.description], mentioning: ["--reason"])
        try await sandbox.expectRefused(
            ["outbox", "discard", id.description, "--reason", "  "],
            mentioning: ["--reason"]
        )
        for unknown in ["desk/999", "999", "other-device/1"] {
            for arguments in [["show", unknown], ["retry", unknown], ["discard", unknown, "--reason", "x"]] {
                try await sandbox.expectRefused(
                    ["outbox"] + arguments,
                    mentioning: ["is not a refused change of this replica", "outpost outbox list"]
                )
            }
        }
        try await sandbox.expectRefused(["outbox", "show", "not-an-id/"], mentioning: ["not a change id"])
        try await sandbox.expectRefused(["outbox", "retry"], mentioning: ["--all"])
        try await sandbox.expectRefused(["outbox", "retry", id.description, "--all"], mentioning: ["--all"])

        await #expect(try sandbox.outpost("outbox", "list", "--json") == before)
        await #expect(
            try sandbox.outpost("outbox", "retry", "--all") == "1 refused change will be sent again with the next sync"
        )
    }

    @Test func aStoreWithNothingRefusedSaysSo() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init", "--replica", "desk")
        await #expect(try sandbox.outpost("outbox", "list") == "no refused changes held aside")
        await #expect(try sandbox.outpost("outbox") == "no refused changes held aside")
        await #expect(!(try sandbox.outpost("status")).contains("refused"))
    }
}
