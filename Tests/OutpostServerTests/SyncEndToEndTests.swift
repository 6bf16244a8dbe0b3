import Foundation
import OutpostTestSupport
import Testing

/// Real server, real CLI replicas: offline edits, syncs in various orders, convergence.
@Suite(.serialized)
struct SyncEndToEndTests {
    /// The patients of a replica, by id, as `outpost patient show --json` gives them.
    func patient(_ device: Device, _ id: String) async throws -> [String: Any] {
        let text = try await device.ok("patient", "show", id, "--json")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    func firstPatient(_ device: Device) async throws -> String {
        let text = try await device.ok("patient", "list", "--json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        return try #require(list.first?["id"] as? String)
    }

    /// Each order of syncs with another wire variant (encoding, with or without gzip).
    static let orders: [(order: [String], wire: String)] = [
        (["a", "b", "c", "a", "b"], "binary"), (["c", "b", "a", "c", "b"], "json"),
        (["b", "a", "c", "b", "a"], "binary-plain"),
    ]

    @Test(arguments: Backend.all, 0..<3)
    func threeReplicasEditingOfflineConvergeAndOnlyTheReviewFieldConflicts(
        backend: Backend,
        variant: Int
    )
        async throws
    {
        let (order, wire) = Self.orders[variant]
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-devices")
        let url = server.url.absoluteString
        let token = server.adminToken
        let a = Device("a", in: devices, encoding: wire)
        let b = Device("b", in: devices, encoding: wire)
        let c = Device("c", in: devices, encoding: wire)
        try await a.ok("init", "--server", url, "--token", token)
        try await a.ok("import", Built.fixture("practice-small.json"))
        try await a.ok("sync")
        for device in [b, c] {
            try await device.ok("init", "--server", url, "--token", token)
            let report = try await device.ok("sync")
            #expect(report.contains("bootstrapped"), "\(report)")
        }
        let initial = try await a.export()
        await #expect(try b.export() == initial)
        await #expect(try c.export() == initial)

        // Offline: a and b change the same review field (birth date) and the same lww field (phone)
        // differently; c changes another field of the same patient.
        let id = try await firstPatient(a)
        try await a.ok("patient", "set", id, "birthDate=1970-01-02", "phone=(406) 555-0101")
        try await b.ok("patient", "set", id, "birthDate=1971-03-04", "phone=(406) 555-0202")
        try await c.ok("patient", "set", id, "preferredLanguage=es")

        let byName = ["a": a, "b": b, "c": c]
        for name in order { try await byName[name]!.ok("sync") }
        // Everyone has pushed; one more round brings everyone up to date whatever the order was.
        for device in [a, b, c] { try await device.ok("sync") }

        let final = try await a.export()
        #expect(final != initial)
        await #expect(try b.export() == final)
        await #expect(try c.export() == final)
        for device in [a, b, c] {
            let record = try await patient(device, id)
            #expect(record["conflicts"] as? [String] == ["birthDate"], "\(device.name): \(record)")
            let fields = try #require(record["fields"] as? [String: Any])
            #expect(fields["preferredLanguage"] as? String == "es")
            #expect(["(406) 555-0101", "(406) 555-0202"].contains(fields["phone"] as? String ?? ""))
            let status = try await device.status()
            #expect(status["openConflicts"] as? Int == 1)
            #expect(status["pendingChanges"] as? Int == 0)
        }
    }

    /// Run with both sync encodings, with and without gzip.
    @Test(arguments: Backend.all, Device.wires)
    func aDeviceOfflineWithThousandsOfEditsCatchesUpWithNothingLost(backend: Backend, encoding: String) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-devices")
        let url = server.url.absoluteString
        let token = server.adminToken
        let office = Device("office", in: devices, encoding: encoding)
        let laptop = Device("laptop", in: devices, encoding: encoding)
        try await office.ok("init", "--server", url, "--token", token)
        try await laptop.ok("init", "--server", url, "--token", token)
        try await office.ok("sync")
        try await laptop.ok("sync")
        // Offline, the laptop loads a whole practice (thousands of changes) and notes its tasks, while the
        // office adds a site.
        try await laptop.ok("import", Built.fixture("practice-small.json"))
        let tasks = try await JSONSerialization.jsonObject(with: Data(try laptop.ok("task", "list", "--json").utf8))
        let ids = try #require(tasks as? [[String: Any]]).compactMap { $0["id"] as? String }
        for id in ids.prefix(20) { try await laptop.ok("task", "note", id, "Called, left a message") }
        let site = try await office.ok("site", "add", "name=School clinic", "kind=school")
        try await office.ok("sync")
        let pending = try await #require(try laptop.status()["pendingChanges"] as? Int)
        #expect(pending > 5_000)

        let report = try await laptop.ok("sync", "--json")
        let moved = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any])
        #expect(moved["pushed"] as? Int == pending)
        #expect(moved["pulled"] as? Int ?? 0 > 0)
        #expect(moved["pending"] as? Int == 0)
        try await office.ok("sync")
        await #expect(try office.export() == laptop.export())
        await #expect(try laptop.ok("site", "show", site).contains("School clinic"))
    }
}
