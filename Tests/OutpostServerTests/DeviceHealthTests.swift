import Foundation
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// Replication health on the real server: what each device last did and reported, how far behind it is, and
/// retiring a device.
@Suite(.serialized)
struct DeviceHealthTests {
    func devices(_ server: TestServer, _ extra: [String] = []) async throws -> [[String: Any]] {
        let result = try await server.admin(["devices", "list", "--json"] + extra)
        try #require(result.status == 0, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    }

    func device(_ server: TestServer, _ replica: String) async throws -> [String: Any] {
        try #require(try await devices(server, ["--all"]).first { $0["replica"] as? String == replica })
    }

    @Test func eachDeviceShowsWhenItSyncedHowFarBehindItIsAndWhatItReportedAndARetiredOneMayNotSync()
        async throws
    {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-devices-health")
        let url = server.url.absoluteString
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", url, "--token", server.adminToken, "--replica", "office-1")
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let laptop = Device("laptop", in: folder)
        let token = try await server.issueToken(role: "clinician", extra: ["--label", "school laptop"])
        try await laptop.ok("init", "--server", url, "--token", token, "--replica", "laptop-1")
        try await laptop.ok("sync")

        // The office edits; the laptop has not pulled them yet.
        let patients = try await #require(
            try JSONSerialization.jsonObject(with: Data(try office.ok("patient", "list", "--json").utf8))
                as? [[String: Any]]
        )
        for patient in patients.prefix(3) {
            try await office.ok("patient", "set", try #require(patient["id"] as? String), "preferredLanguage=es")
        }
        try await office.ok("sync")
        var entry = try await device(server, "laptop-1")
        #expect(entry["behindChanges"] as? Int == 3, "\(entry)")
        #expect(entry["label"] as? String == "school laptop")
        #expect(entry["role"] as? String == "clinician")
        #expect(entry["client"] as? String == "outpost/\(OutpostVersion.software)")
        #expect(entry["lastPullMillis"] != nil)
        await #expect(try device(server, "office-1")["lastPushMillis"] != nil)
        try await laptop.ok("sync")
        entry = try await device(server, "laptop-1")
        #expect(entry["behindChanges"] as? Int == 0, "\(entry)")
        #expect(entry["outbox"] as? Int == 0)

        // What a device reports of its outbox is kept; a report that is not a count is refused.
        let transport = HTTPTransport(baseURL: server.url, token: token)
        var pull = TransportRequest(
            method: "GET",
            path: Wire.Path.changes,
            query: [("since", "0"), ("limit", "1"), ("replica", "laptop-1")]
        )
        pull.headers = [Wire.outboxHeader: "412"]
        #expect(try await transport.send(pull).status == 200)
        await #expect(try device(server, "laptop-1")["outbox"] as? Int == 412)
        pull.headers = [Wire.outboxHeader: "lots"]
        let refused = try await transport.send(pull)
        #expect(refused.status == 400)
        #expect(try Wire.makeDecoder().decode(ErrorBody.self, from: refused.body).error.field == Wire.outboxHeader)

        await #expect(try devices(server, ["--stale", "1d"]).isEmpty, "both synced just now")
        let metrics = try await server.request("GET", "/metrics")
        #expect(String(decoding: metrics.1, as: UTF8.self).contains("outpost_devices{seen_within=\"1d\"} 2"))

        let retired = try await server.admin(["devices", "retire", "laptop-1"])
        try #require(retired.status == 0, "\(retired)")
        let after = try await laptop.run("sync")
        #expect(after.status != 0)
        #expect(after.stderr.contains("retired"), "\(after.stderr)")
        await #expect(try devices(server).allSatisfy { $0["replica"] as? String != "laptop-1" })
        await #expect(try device(server, "laptop-1")["retiredAtMillis"] != nil)
        let audit = try await server.admin(["audit", "--json"]).stdout
        #expect(audit.contains("device.retire") && audit.contains("laptop-1"))
    }

    /// A device that asked for its first snapshot page and never finished a sync is listed with no push and no
    /// pull ("never"), and behind the feed by the changes it has not pulled.
    @Test func aDeviceThatNeverSyncedIsListedAsNeverHavingPushedOrPulled() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-devices-never")
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let token = try await server.issueToken(role: "clinician", extra: ["--label", "spare laptop"])
        let page = try await server.request("GET", "/v1/snapshot?limit=1&replica=spare-1", token: token)
        try #require(page.0 == 200, "\(String(decoding: page.1, as: UTF8.self))")

        let entry = try await device(server, "spare-1")
        #expect(entry["lastPushMillis"] == nil && entry["lastPullMillis"] == nil, "\(entry)")
        #expect((entry["behindChanges"] as? Int ?? 0) > 0, "\(entry)")
        let table = try await server.admin(["devices", "list"])
        let line = try #require(table.stdout.split(separator: "\n").first { $0.hasPrefix("spare-1") })
        #expect(line.components(separatedBy: "never").count - 1 == 2, "no push and no pull: \(line)")
        // One device told: a field a line by default, JSON with --json.
        let shown = try await server.admin(["devices", "show", "spare-1"])
        #expect(shown.status == 0 && shown.stdout.contains("replica:") && !shown.stdout.hasPrefix("{"), "\(shown)")
        let json = try await server.admin(["devices", "show", "spare-1", "--json"])
        #expect(json.stdout.hasPrefix("{"), "\(json)")
    }
}
