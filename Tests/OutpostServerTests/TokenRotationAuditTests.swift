import Foundation
import OutpostTestSupport
import Testing

/// `token rotate` gives a device a new secret without losing its binding, data or outbox; every administrator's
/// act lands in the audit log, without secrets or patient data.
@Suite(.serialized)
struct TokenRotationAuditTests {
    func tokenID(_ server: TestServer, label: String) async throws -> String {
        let listed = try await server.admin(["token", "list", "--json"])
        let tokens = try #require(
            try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
        )
        // The newest of that label: a rotation's successor keeps its predecessor's label.
        return try #require(tokens.last { $0["label"] as? String == label }?["id"] as? String)
    }

    func audit(_ server: TestServer) async throws -> [[String: Any]] {
        let result = try await server.admin(["audit", "--json"])
        try #require(result.status == 0, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    }

    @Test func aRotatedTokensDeviceKeepsItsReplicaAndOutboxAndTheLogRecordsEveryActWithoutSecrets() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-rotate")
        let url = server.url.absoluteString
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", url, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let old = try await server.issueToken(role: "clinician", extra: ["--label", "laptop"])
        let oldID = try await tokenID(server, label: "laptop")
        let laptop = Device("laptop", in: folder)
        try await laptop.ok("init", "--server", url, "--token", old)
        try await laptop.ok("sync")
        let patients = try await #require(
            try JSONSerialization.jsonObject(with: Data(try laptop.ok("patient", "list", "--json").utf8))
                as? [[String: Any]]
        )
        let patient = try #require(patients.first?["id"] as? String)
        try await laptop.ok("patient", "set", patient, "preferredLanguage=fr")

        // Rotation with no grace: the old secret stops working at once; the edit waits in the outbox.
        let rotated = try await server.admin(["token", "rotate", oldID, "--grace-hours", "0"])
        try #require(rotated.status == 0, "\(rotated)")
        let new = rotated.output
        #expect(new.hasPrefix("opt_") && new != old)
        let refused = try await laptop.run("sync")
        #expect(refused.status != 0, "\(refused)")
        await #expect(try laptop.status()["pendingChanges"] as? Int == 1)

        // The device takes the new secret: same replica (no new bootstrap), its edit pushed.
        try await laptop.ok("remote", "set", url, "--token", new)
        let report = try await laptop.ok("sync")
        #expect(!report.contains("bootstrapped"), "\(report)")
        await #expect(try laptop.status()["pendingChanges"] as? Int == 0)
        try await office.ok("sync")
        await #expect(try office.export() == laptop.export())

        // With a grace period the old secret keeps working until it ends.
        let graceful = try await server.admin([
            "token", "rotate", try tokenID(server, label: "laptop"), "--grace-hours", "2",
        ])
        try #require(graceful.status == 0, "\(graceful)")
        await #expect(try laptop.run("sync").status == 0, "the current secret works during the grace period")

        let purged = try await server.admin(["purge", "patient", patient, "--reason", "court order 2026-117"])
        try #require(purged.status == 0, "\(purged)")
        let entries = try await audit(server)
        let actions = entries.compactMap { $0["action"] as? String }
        #expect(actions.first == "practice.add", "\(actions)")
        #expect(actions.filter { $0 == "token.issue" }.count == 2, "the bootstrap admin's and the laptop's: \(actions)")
        #expect(actions.filter { $0 == "token.rotate" }.count == 2, "\(actions)")
        #expect(actions.last == "purge", "\(actions)")
        #expect(entries.contains { $0["subject"] as? String == oldID })
        #expect(entries.allSatisfy { !($0["actor"] as? String ?? "").isEmpty })
        let text = try await server.admin(["audit"]).stdout + (try server.admin(["audit", "--json"]).stdout)
        for secret in [server.adminToken, old, new, graceful.output] {
            #expect(!text.contains(secret), "the audit log holds no secret")
        }
        #expect(!text.contains("court order"), "a purge's reason stays in the purge table")
        for sensitive in TinyPractice.sensitive { #expect(!text.contains(sensitive)) }
    }

    /// A token has one successor (a second one's secret would fit no device); a successor revoked since no longer
    /// counts. Revoking twice changes nothing and is audited once. A scope naming a team or site the practice does
    /// not have is refused (a typo would scope the token to nothing).
    @Test(arguments: Backend.all)
    func aTokenHasOneSuccessorARevocationIsAuditedOnceAndAScopeNamesRealTeams(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-successor")
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let laptop = try await server.issueTokenEntry(role: "clinician")
        let first = try await server.admin(["token", "rotate", laptop.id, "--json"])
        try #require(first.status == 0, "\(first)")
        let rotated = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        let successor = try #require((rotated["token"] as? [String: Any])?["id"] as? String)
        for again in [["token", "rotate", laptop.id], ["token", "issue", "--successor-of", laptop.id]] {
            let refused = try await server.admin(again)
            #expect(refused.status == 2, "\(again): \(refused)")
            #expect(refused.stderr.contains("has a successor already, \(successor)"), "\(refused.stderr)")
        }
        let revoked = try await server.admin(["token", "revoke", successor])
        #expect(revoked.output == "revoked \(successor)")
        let twice = try await server.admin(["token", "revoke", successor])
        #expect(twice.status == 0 && twice.output.hasPrefix("\(successor) was revoked already"), "\(twice)")
        let revocations = try await audit(server).filter {
            $0["action"] as? String == "token.revoke" && $0["subject"] as? String == successor
        }
        #expect(revocations.count == 1)
        await #expect(
            try server.admin(["token", "rotate", laptop.id]).status == 0,
            "a revoked successor no longer counts"
        )

        let team = "tea_01JWMCKG000000000000000000"
        let unknown = try await server.admin(["token", "issue", "--role", "clinician", "--teams", team])
        #expect(unknown.status == 2 && unknown.stderr.contains("\(team) is not a team of practice"), "\(unknown)")
        let site = "sit_01JWMCKG000000000000000000"
        let nowhere = try await server.admin(["token", "issue", "--role", "site-device", "--sites", site])
        #expect(nowhere.status == 2 && nowhere.stderr.contains("\(site) is not a site of practice"), "\(nowhere)")
    }
}
