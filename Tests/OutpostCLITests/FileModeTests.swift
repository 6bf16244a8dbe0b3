import Foundation
import OutpostTestSupport
import Testing

/// Files that hold patient data are readable by their owner only, whatever the umask `outpost` starts with.
struct FileModeTests {
    /// Runs `outpost` under a permissive umask (022, the usual shell default), as a user's shell would.
    func outpost(_ sandbox: Sandbox, _ arguments: [String]) async throws {
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let result = try await ChildProcess.run(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "umask 022; exec '\(Executables.outpost.path)' \(quoted)"],
            in: sandbox.directory,
            environment: sandbox.environment()
        )
        try #require(result.status == 0, "outpost \(arguments): \(result)")
    }

    func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int)
    }

    @Test func theStoreItsWALAndEveryExportAreOwnerOnly() async throws {
        let sandbox = try Sandbox()
        try await outpost(sandbox, ["init"])
        try await outpost(sandbox, ["import", Sandbox.fixture("practice-small.json")])
        try await outpost(sandbox, ["export", "--output", sandbox.path("export.json")])
        try await outpost(sandbox, ["fhir", "export", "--out", sandbox.path("fhir")])
        var files = [sandbox.store, sandbox.path("export.json")]
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: sandbox.store + suffix) {
            files.append(sandbox.store + suffix)
        }
        let fhir = try FileManager.default.contentsOfDirectory(atPath: sandbox.path("fhir"))
        #expect(fhir.contains("Patient.ndjson"))
        files += fhir.map { sandbox.path("fhir/\($0)") }
        for file in files {
            let bits = try mode(file)
            #expect(bits & 0o077 == 0, "\(file) is readable by others: \(String(bits, radix: 8))")
        }
        #expect(try mode(sandbox.path("fhir")) & 0o077 == 0, "the export folder is the owner's only")
    }
}
