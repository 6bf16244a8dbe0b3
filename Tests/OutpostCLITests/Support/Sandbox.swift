import Foundation
import OutpostClient
import OutpostTestSupport
import Testing

/// What one run of the `outpost` executable did.
typealias CLIResult = ProcessResult

/// A temporary folder for one test: a store path inside it and a runner for the built `outpost`.
///
/// Each run gets a clean environment (`HOME` inside the sandbox, `OUTPOST_STORE` set to ``store``), so
/// nothing reads or writes the real user's files. The folder is removed when the sandbox is released.
///
/// Stores are encrypted, as `outpost init` makes them by default: every run gets the test run's key file
/// (`OUTPOST_KEY_FILE`, ``TestKeyFile``), so the whole suite reads and writes through the cipher.
final class Sandbox {
    /// The sandbox's folder.
    let directory: URL
    /// The key of the stores the CLI makes in sandboxes, for opening them in this process.
    static let key: StoreKeySource = { () throws(ClientError) in try StoreKey.keyFile(at: TestKeyFile.path) }
    /// The store path that runs use through `OUTPOST_STORE`.
    var store: String

    /// The package's root folder (for fixtures).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A fixture file's path, for example `fixture("practice-small.json")`.
    static func fixture(_ name: String) -> String {
        packageRoot.appendingPathComponent("fixtures").appendingPathComponent(name).path
    }

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("outpost-cli-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = directory.appendingPathComponent("store.sqlite").path
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A path inside the sandbox.
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The environment every run starts from.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": directory.path,
            "LANG": "C.UTF-8",
            "OUTPOST_STORE": store,
            "OUTPOST_KEY_FILE": TestKeyFile.path,
        ]
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Runs `outpost` with `arguments` to completion; output is captured through files, so large output
    /// cannot block the child.
    @discardableResult
    func run(
        _ arguments: [String],
        environment extra: [String: String] = [:],
        user: uid_t? = nil
    ) async throws
        -> CLIResult
    {
        if let user {
            // Runs as another (unprivileged) user: `setpriv` drops root's privileges for this process only.
            return try await ChildProcess.run(
                URL(fileURLWithPath: "/usr/bin/setpriv"),
                ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", Executables.outpost.path] + arguments,
                in: directory,
                environment: environment(extra)
            )
        }
        return try await ChildProcess.run(
            Executables.outpost,
            arguments,
            in: directory,
            environment: environment(extra)
        )
    }

    /// Runs `outpost` and requires it to succeed; returns standard output without the trailing newline.
    @discardableResult
    func outpost(
        _ arguments: String...,
        environment: [String: String] = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> String {
        try await outpost(arguments: arguments, environment: environment, sourceLocation: sourceLocation)
    }

    /// Runs `outpost` and requires it to succeed; returns standard output without the trailing newline.
    @discardableResult
    func outpost(
        arguments: [String],
        environment: [String: String] = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> String {
        let result = try await run(arguments, environment: environment)
        try #require(
            result.status == 0,
            "outpost \(arguments.joined(separator: " ")) failed: \(result)",
            sourceLocation: sourceLocation
        )
        return result.output
    }

    /// Runs `outpost … --json` and decodes its output.
    func json(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) async throws -> Any {
        let result = try await run(arguments + ["--json"])
        try #require(result.status == 0, "outpost \(arguments.joined(separator: " ")) failed: \(result)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8), options: [.fragmentsAllowed])
    }

    /// The store's canonical export (`outpost export --format json`).
    func export() async throws -> String {
        let result = try await run(["export", "--format", "json"])
        try #require(result.status == 0, "export failed: \(result)")
        return result.stdout
    }

    /// The bytes of the store's files (the database, its WAL and shared memory files, when present).
    func storeBytes() -> [String: Data] {
        var files: [String: Data] = [:]
        for suffix in ["", "-wal", "-shm", "-journal"] {
            if let data = FileManager.default.contents(atPath: store + suffix) { files[suffix] = data }
        }
        return files
    }

    /// Runs a command that must be refused: exit `status`, one line on stderr (prefixed `outpost: `) that
    /// contains every one of `mentions`, nothing on stdout, and the store's export and outbox unchanged.
    @discardableResult
    func expectRefused(
        _ arguments: [String],
        status: Int32 = 2,
        mentioning mentions: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> CLIResult {
        let before = try snapshot()
        let result = try await run(arguments)
        let command = "outpost " + arguments.joined(separator: " ")
        #expect(result.status == status, "\(command): \(result)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "\(command) printed to stdout: \(result)", sourceLocation: sourceLocation)
        #expect(
            result.errorLines.count == 1,
            "\(command): not one stderr line: \(result)",
            sourceLocation: sourceLocation
        )
        #expect(result.stderr.hasPrefix("outpost: "), "\(command): \(result)", sourceLocation: sourceLocation)
        for mention in mentions {
            #expect(
                result.stderr.contains(mention),
                "\(command): no '\(mention)' in \(result)",
                sourceLocation: sourceLocation
            )
        }
        let after = try snapshot()
        #expect(after.export == before.export, "\(command) changed the store", sourceLocation: sourceLocation)
        #expect(after.pending == before.pending, "\(command) wrote changes", sourceLocation: sourceLocation)
        return result
    }

    /// The store's canonical export and outbox size, read in this process (faster than two more runs).
    func snapshot() throws -> (export: String, pending: Int) {
        let store = try CareStore.open(at: store, key: Sandbox.key)
        return (try store.exportCanonicalJSON(), try store.store.status().pendingChanges)
    }

    /// The replica's outbox size, from `outpost status --json`.
    func pendingChanges() async throws -> Int {
        let status = try await json("status") as? [String: Any]
        return try #require(status?["pendingChanges"] as? Int)
    }
}

extension Sandbox {
    /// A sandbox whose store holds the small fixture practice (`fixtures/practice-small.json`), copied from a
    /// template made once per test run.
    static func withPractice() async throws -> Sandbox {
        let sandbox = try Sandbox()
        let template = try await PracticeTemplate.shared.get().get()
        try FileManager.default.copyItem(atPath: template, toPath: sandbox.store)
        return sandbox
    }
}

/// A store holding the small fixture practice, imported once by the real CLI and copied by each test.
enum PracticeTemplate {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The template store's path, or why it could not be made; made on first use.
    static let shared = Once<Result<String, Failure>> { await make() }

    private static func make() async -> Result<String, Failure> {
        do {
            let sandbox = try Sandbox()
            // A folder of its own, kept for the whole test run (the sandbox's own folder goes with it).
            let directory = TestScratch.root.appendingPathComponent("cli-template")
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            sandbox.store = directory.appendingPathComponent("store.sqlite").path
            for arguments in [["init", "--replica", "template"], ["import", Sandbox.fixture("practice-small.json")]] {
                let result = try await sandbox.run(arguments)
                guard result.status == 0 else {
                    return .failure(Failure(description: "could not make the template store: \(result)"))
                }
            }
            return .success(sandbox.store)
        } catch {
            return .failure(Failure(description: "could not make the template store: \(error)"))
        }
    }
}

/// The small fixture practice's records, read from the fixture file (text fields and lists of text).
enum Fixture {
    struct Record: Sendable {
        var type: String
        var id: String
        var fields: [String: String]
        var lists: [String: [String]]
    }

    static let records: [Record] = {
        guard let data = FileManager.default.contents(atPath: Sandbox.fixture("practice-small.json")),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let records = object["records"] as? [[String: Any]]
        else { return [] }
        return records.compactMap { record in
            guard let type = record["type"] as? String, let id = record["id"] as? String else { return nil }
            let raw = record["fields"] as? [String: Any] ?? [:]
            return Record(
                type: type,
                id: id,
                fields: raw.compactMapValues { $0 as? String },
                lists: raw.compactMapValues { $0 as? [String] }
            )
        }
    }()

    /// Every fixture record of `type`, in file order.
    static func all(_ type: String) -> [Record] { records.filter { $0.type == type } }

    /// The first fixture record of `type` matching `predicate`.
    static func first(
        _ type: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        where predicate: (Record) -> Bool = { _ in true }
    ) throws -> Record {
        try #require(
            records.first { $0.type == type && predicate($0) },
            "the fixture has no such \(type)",
            sourceLocation: sourceLocation
        )
    }
}
