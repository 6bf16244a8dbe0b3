import Foundation
import OutpostTestSupport
import Testing

/// Sync end to end between encrypted stores, each device with its own passphrase.
@Suite(.serialized)
struct EncryptedSyncTests {
    /// Runs `outpost` on `device`'s store, unlocked with `passphrase` (the test key file turned off).
    func run(_ device: Device, _ passphrase: String, _ arguments: [String]) async throws -> RunResult {
        var environment = device.environment
        environment["OUTPOST_KEY_FILE"] = ""
        environment["OUTPOST_PASSPHRASE"] = passphrase
        return try await runProcess(Built.outpost, arguments, in: device.directory.url, environment: environment)
    }

    @discardableResult
    func ok(_ device: Device, _ passphrase: String, _ arguments: String...) async throws -> String {
        let result = try await run(device, passphrase, arguments)
        try #require(result.status == 0, "outpost \(arguments.joined(separator: " ")): \(result)")
        return result.output
    }

    /// The fixture's patients' family names (6 bytes or more, so random ciphertext cannot hold one by chance).
    func familyNames() throws -> [String] {
        let data = try #require(FileManager.default.contents(atPath: Built.fixture("practice-small.json")))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let records = try #require(object["records"] as? [[String: Any]])
        return records.flatMap { record -> [String] in
            guard record["type"] as? String == "patient", let fields = record["fields"] as? [String: Any] else {
                return []
            }
            return ["familyName", "givenName"].compactMap { field in
                (fields[field] as? String).flatMap { $0.utf8.count >= 6 ? $0 : nil }
            }
        }
    }

    @Test func twoDevicesWithTheirOwnPassphrasesConvergeAndNeitherFileHoldsANameInClear() async throws {
        let server = try await TestServer()
        let devices = try TemporaryDirectory("outpost-encrypted-devices")
        let url = server.url.absoluteString
        let a = Device("a", in: devices)
        let b = Device("b", in: devices)
        try await ok(a, "office passphrase", "init", "--server", url, "--token", server.adminToken)
        try await ok(a, "office passphrase", "import", Built.fixture("practice-small.json"))
        try await ok(a, "office passphrase", "sync")
        try await ok(b, "laptop passphrase", "init", "--server", url, "--token", server.adminToken)
        await #expect(try ok(b, "laptop passphrase", "sync").contains("bootstrapped"))

        let list = try await ok(b, "laptop passphrase", "patient", "list", "--json")
        let patients = try #require(try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]])
        let patient = try #require(patients.first?["id"] as? String)
        try await ok(b, "laptop passphrase", "patient", "set", patient, "phone=(406) 555-0199")
        try await ok(a, "office passphrase", "patient", "set", patient, "preferredLanguage=es")
        try await ok(b, "laptop passphrase", "sync")
        try await ok(a, "office passphrase", "sync")
        try await ok(b, "laptop passphrase", "sync")

        let exportA = try await ok(a, "office passphrase", "export", "--format", "json")
        await #expect(exportA == (try ok(b, "laptop passphrase", "export", "--format", "json")))
        #expect(exportA.contains("(406) 555-0199"))

        // Each store opens with its own passphrase only.
        let crossed = try await run(b, "office passphrase", ["status"])
        #expect(crossed.status == 1 && crossed.stderr.contains("passphrase does not open"), "\(crossed)")

        let needles = try familyNames() + ["(406) 555-0199"]
        #expect(needles.count > 10)
        for device in [a, b] {
            for suffix in ["", "-wal", "-shm"] {
                guard let bytes = FileManager.default.contents(atPath: device.store + suffix) else { continue }
                let seen = needles.filter { bytes.range(of: Data($0.utf8)) != nil }
                #expect(seen.isEmpty, "\(device.name)\(suffix) holds \(seen.count) patient values in clear")
            }
        }
    }
}
