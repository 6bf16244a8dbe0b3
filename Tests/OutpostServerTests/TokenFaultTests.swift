import Foundation
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// Revoked and expired tokens: `401` with a clear message, `outpost sync` exits 1 with one line and keeps
/// the outbox; a device continues under the successor an administrator issues for its token, and no other token
/// ever takes over its replica id.
@Suite(.serialized)
struct TokenFaultTests {
    /// Checks a failed `outpost sync`: exit 1, one line on stderr containing `words`.
    func expectOneLineFailure(
        _ result: RunResult,
        containing words: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.status == 1, "\(result)", sourceLocation: sourceLocation)
        let line = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!line.isEmpty && !line.contains("\n"), "one line: \(result)", sourceLocation: sourceLocation)
        for word in words {
            #expect(line.contains(word), "the error should say '\(word)': \(line)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: Backend.all) func aRevokedTokenIsRefusedTheOutboxKeptAndItsSuccessorTakesOverTheReplica(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-devices")
        let url = server.url.absoluteString
        let first = try await server.issueTokenEntry(role: "admin", extra: ["--label", "desk"])
        let other = try await server.issueTokenEntry(role: "admin", extra: ["--label", "another desk"])
        let desk = Device("desk", in: devices)
        try await desk.ok("init", "--server", url, "--token", first.secret)
        try await desk.ok("import", try TinyPractice.write(in: devices))
        try await desk.ok("sync")
        try await desk.ok("patient", "set", TinyPractice.patients[0], "preferredLanguage=es", "riskTier=high")
        let replica = try await #require(try desk.status()["replica"] as? String)
        await #expect(try desk.status()["pendingChanges"] as? Int == 2)

        // While the desk's token is usable, no other token may push under its replica id.
        let body = Data(#"{"changes":[],"replica":"\#(replica)"}"#.utf8)
        try expectRefusal(
            try await server.request("POST", Wire.Path.push, token: other.secret, body: body),
            status: 403,
            code: "replica_mismatch"
        )

        let revoked = try await server.admin(["token", "revoke", first.id])
        try #require(revoked.status == 0, "\(revoked)")
        let error = try expectRefusal(
            try await server.request("GET", Wire.Path.session, token: first.secret),
            status: 401,
            code: "unauthorized"
        )
        #expect((error["message"] as? String ?? "").contains("revoked"))

        await expectOneLineFailure(try desk.run("sync"), containing: ["revoked", "kept"])
        await #expect(try desk.status()["pendingChanges"] as? Int == 2, "the outbox must be kept")

        // Revoking the desk's token does not free its replica id for any other token.
        try expectRefusal(
            try await server.request("POST", Wire.Path.push, token: other.secret, body: body),
            status: 403,
            code: "replica_mismatch"
        )
        let successor = try await server.issueTokenEntry(
            role: "",
            extra: ["--successor-of", first.id, "--label", "desk, reissued"]
        )
        let second = successor

        // A refused token changes nothing; a good one is saved and the outbox goes to the server.
        let refused = try await desk.run("remote", "set", url, "--token", first.secret)
        #expect(refused.status != 0, "\(refused)")
        try await desk.ok("remote", "set", url, "--token", second.secret)
        let text = try await desk.ok("sync", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(report["pushed"] as? Int == 2)
        #expect(report["pending"] as? Int == 0)

        let laptop = Device("laptop", in: devices)
        try await laptop.ok("init", "--server", url, "--token", second.secret)
        try await laptop.ok("sync")
        await #expect(try laptop.export() == desk.export())
        await #expect(try laptop.export().contains(#""riskTier":"high""#))
    }

    @Test(arguments: Backend.all) func anExpiredTokenIsRefusedTheOutboxKeptAndANewTokenSyncsIt(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-devices")
        let url = server.url.absoluteString
        let expired = try await server.issueTokenEntry(
            role: "admin",
            extra: ["--expires-at-millis", String(nowMillis() - 60_000)]
        )
        let error = try expectRefusal(
            try await server.request("GET", Wire.Path.session, token: expired.secret),
            status: 401,
            code: "unauthorized"
        )
        #expect((error["message"] as? String ?? "").contains("expired"))
        let listed = try await server.admin(["token", "list"])
        #expect(listed.stdout.split(separator: "\n").contains { $0.contains(expired.id) && $0.contains("expired") })

        // A device that worked offline, whose token expired before it could sync.
        let nurse = Device("nurse", in: devices)
        try await nurse.ok("init")
        try await nurse.ok("import", try TinyPractice.write(in: devices))
        let pending = try await #require(try nurse.status()["pendingChanges"] as? Int)
        let refused = try await nurse.run("remote", "set", url, "--token", expired.secret)
        #expect(refused.status != 0, "an expired token is not saved: \(refused)")
        do {
            // Saved while it was still valid, as it would have been.
            let replica = try LocalReplica(openingAt: nurse.store)
            try replica.store.setRemote(Remote(url: server.url, token: expired.secret))
        }

        await expectOneLineFailure(try nurse.run("sync"), containing: ["expired", "kept"])
        await #expect(try nurse.status()["pendingChanges"] as? Int == pending)

        let fresh = try await server.issueToken(role: "admin", extra: ["--expires-in", "30"])
        try await nurse.ok("remote", "set", url, "--token", fresh)
        let text = try await nurse.ok("sync", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(report["pushed"] as? Int == pending)
        #expect(report["pending"] as? Int == 0)
        #expect(try await server.feed(fresh).count == pending)
    }

    @Test(arguments: Backend.all) func aReplicaIDIsPerPracticeAnotherPracticesDeviceOfTheSameIDIsAnotherDevice(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-tokens")
        let first = try await server.issueTokenEntry(role: "admin")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let pushed = try await a.engine(server.transport(first.secret)).sync().pushed
        let added = try await server.admin(["practice", "add", "Other Practice"])
        try #require(added.status == 0, "\(added)")
        let other = try await server.issueToken(role: "admin", practice: added.output)

        // The other practice's `site-a` is its own device: it holds nothing of the first one's.
        let body = Data(#"{"changes":[],"replica":"site-a"}"#.utf8)
        let (status, answer) = try await server.request("POST", Wire.Path.push, token: other, body: body)
        #expect(status == 200, "\(String(decoding: answer, as: UTF8.self))")
        #expect(try Wire.makeDecoder().decode(PushResponse.self, from: answer).acknowledged == 0)
        #expect(try await server.feed(other).isEmpty)

        // The first practice's device is untouched and keeps its acknowledged counter.
        let (_, again) = try await server.request("POST", Wire.Path.push, token: first.secret, body: body)
        #expect(try Wire.makeDecoder().decode(PushResponse.self, from: again).acknowledged == UInt64(pushed))
    }

    @Test func tokenExpiryOptionsOutOfRangeAreRefusedAsBadUsage() async throws {
        let directory = try TemporaryDirectory("outpost-tokens")
        let data = directory.path("data")
        let added = try await runProcess(Built.server, ["practice", "list", "--data", data], in: directory.url)
        #expect(added.status != 0, "no store yet: \(added)")
        for arguments in [
            ["--expires-in", "99999999999999"], ["--expires-at-millis", "18446744073709551615"],
            ["--expires-in", "1", "--expires-at-millis", "1"], ["--expires-in", "0"],
        ] {
            let result = try await runProcess(
                Built.server,
                ["token", "issue", "--data", data, "--role", "admin"] + arguments,
                in: directory.url
            )
            #expect(result.status == 2, "\(arguments): \(result)")
        }
    }
}
