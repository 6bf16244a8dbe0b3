import Foundation
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Finds the executables SwiftPM built beside the test bundle.
enum Built {
    static var directory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("outpost-server").path) { return url }
        }
        return URL(fileURLWithPath: ".build/debug")
    }

    static var server: URL { directory.appendingPathComponent("outpost-server") }
    static var outpost: URL { directory.appendingPathComponent("outpost") }

    /// The package's root folder (for fixtures).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func fixture(_ name: String) -> String {
        packageRoot.appendingPathComponent("fixtures").appendingPathComponent(name).path
    }
}

/// What one run of an executable did.
typealias RunResult = ProcessResult

/// Runs an executable to completion in `directory`, with a minimal environment plus `environment`.
func runProcess(
    _ executable: URL,
    _ arguments: [String],
    in directory: URL,
    environment: [String: String] = [:]
)
    async throws -> RunResult
{
    var env = [
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": directory.path,
        "LANG": "C.UTF-8",
    ]
    env.merge(environment) { _, new in new }
    return try await ChildProcess.run(executable, arguments, in: directory, environment: env)
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
}

/// A temporary folder that is removed when released.
final class TemporaryDirectory {
    let url: URL

    init(_ prefix: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The real `outpost-server`, started on an ephemeral loopback port with a temporary data directory.
///
/// Readiness is awaited by polling (its "listening on" line, then `GET /health`) with a deadline, never by
/// sleeping for a fixed time.
final class TestServer {
    let directory: TemporaryDirectory
    var dataDirectory: String { directory.path("data") }
    private(set) var process: Process?
    private var exit: ProcessExit?
    private(set) var port = 0
    private var logCount = 0
    /// For a server started with `--tls-cert`: the PEM certificates its certificate chains to.
    let trustedCertificates: String?
    /// The backend it runs on.
    let backend: Backend
    /// For ``Backend/postgres``: the test's own database, dropped after the server is killed.
    var database: TestDatabase?

    /// The options that point a server or an administration command at the backend.
    var backendArguments: [String] {
        ["--data", dataDirectory] + (database.map { ["--database", $0.url] } ?? [])
    }

    var scheme: String { trustedCertificates == nil ? "http" : "https" }
    var url: URL { URL(string: "\(scheme)://127.0.0.1:\(port)")! }
    var adminToken: String {
        (try? String(contentsOfFile: dataDirectory + "/admin-token", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    init(arguments: [String] = [], trustedCertificates: String? = nil, backend: Backend = .sqlite) async throws {
        directory = try TemporaryDirectory("outpost-e2e")
        self.trustedCertificates = trustedCertificates
        self.backend = backend
        database = backend == .postgres ? try TestDatabase() : nil
        try await start(arguments: arguments)
    }

    /// Another process on `database`, beside one already started on it (several stateless servers on one
    /// PostgreSQL database). Its data directory receives no admin token: the first process's works for all.
    init(sharing database: TestDatabase, arguments: [String] = []) async throws {
        directory = try TemporaryDirectory("outpost-e2e")
        trustedCertificates = nil
        backend = .postgres
        self.database = database
        try await start(arguments: arguments)
    }

    deinit {
        // Killed, not waited for: a deinit runs on one of the cooperative pool's threads, which a wait would hold
        // (Foundation reaps the process when it ends). Waiting here once hung a CI run.
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Starts the server; on a restart, on the same port as before so clients keep their URL.
    ///
    /// While the server was down, the kernel may have lent its port to a client connection of another test
    /// running in parallel (outgoing connections draw from the same ephemeral range); such a connection is
    /// short, so a restart refused with "Address already in use" is tried again, a bounded number of times.
    func start(arguments: [String] = []) async throws {
        var attempts = 0
        while true {
            do {
                return try await launch(arguments: arguments)
            } catch let error as HarnessError
                where port != 0 && attempts < 100 && error.description.contains("Address already in use")
            {
                attempts += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func launch(arguments: [String]) async throws {
        logCount += 1
        let outPath = directory.path("server\(logCount).out")
        let errPath = directory.path("server\(logCount).err")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = Built.server
        process.arguments =
            ["serve"] + backendArguments + ["--port", String(port), "--log-level", "warning"] + arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardInput = FileHandle.nullDevice
        exit = try process.start()
        self.process = process
        // A hang guard counted in polls, not wall time: under a loaded test run, other tests' blocking process
        // waits can keep this task from running for a while, which must not count against the server.
        var polls = 0
        while polls < 3_000 {
            polls += 1
            let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on \(scheme)://127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let bound = Int(digits) {
                    port = bound
                    break
                }
            }
            guard process.isRunning else {
                throw HarnessError(
                    description:
                        "outpost-server exited: \((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")"
                )
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard port != 0 else { throw HarnessError(description: "outpost-server did not start within 3,000 polls") }
        while polls < 6_000 {
            polls += 1
            if let trustedCertificates {
                let transport = HTTPTransport(baseURL: url, token: "", trustedCertificates: trustedCertificates)
                if let answer = try? await transport.send(TransportRequest(method: "GET", path: "/health")),
                    answer.status == 200
                {
                    return
                }
            } else if let (status, _) = try? await request("GET", "/health"), status == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw HarnessError(description: "outpost-server did not become healthy within 3,000 polls")
    }

    /// Kills the server with `signal` and waits for it to exit.
    func stop(signal: Int32 = SIGKILL) async {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        await exit?.wait()
    }

    /// Runs an administration subcommand on the data directory.
    func admin(_ arguments: [String]) async throws -> RunResult {
        var arguments = arguments
        arguments.insert(contentsOf: backendArguments, at: min(2, arguments.count))
        return try await runProcess(Built.server, arguments, in: directory.url)
    }

    /// Issues a token and returns its secret.
    func issueToken(role: String, practice: String? = nil, extra: [String] = []) async throws -> String {
        // An empty role leaves `--role` out (a successor takes its predecessor's).
        var arguments = ["token", "issue"] + (role.isEmpty ? [] : ["--role", role]) + extra
        if let practice { arguments += ["--practice", practice] }
        let result = try await admin(arguments)
        guard result.status == 0 else { throw HarnessError(description: "token issue failed: \(result)") }
        return result.output
    }

    /// Sends one HTTP request and returns the status and body.
    func request(
        _ method: String,
        _ path: String,
        token: String? = nil,
        body: Data? = nil,
        headers: [String: String] = [:]
    ) async throws
        -> (Int, Data)
    {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: 30)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            if request.value(forHTTPHeaderField: "Content-Type") == nil {
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}

/// One device's replica, driven through the real `outpost` CLI.
struct Device {
    let name: String
    let directory: TemporaryDirectory
    /// The sync encoding the CLI uses (`json` or `binary`, through `OUTPOST_SYNC_ENCODING`); `nil`: its default.
    /// `json-plain` and `binary-plain` are those encodings without gzip (`OUTPOST_SYNC_COMPRESSION=off`).
    let encoding: String?
    var store: String { directory.path("\(name).sqlite") }

    init(_ name: String, in directory: TemporaryDirectory, encoding: String? = nil) {
        self.name = name
        self.directory = directory
        self.encoding = encoding
    }

    /// The wire variants the end-to-end tests run with: each encoding with and without gzip.
    static let wires = ["json", "binary", "json-plain", "binary-plain"]

    /// The environment `outpost` runs with.
    var environment: [String: String] {
        // Encrypted, as `outpost init` makes stores by default (the test run's key file).
        var values = ["OUTPOST_STORE": store, "OUTPOST_KEY_FILE": TestKeyFile.path]
        if let encoding {
            values["OUTPOST_SYNC_ENCODING"] = encoding.hasPrefix("json") ? "json" : "binary"
            if encoding.hasSuffix("-plain") { values["OUTPOST_SYNC_COMPRESSION"] = "off" }
        }
        return values
    }

    /// Runs `outpost` on this device's store.
    @discardableResult
    func run(_ arguments: String...) async throws -> RunResult {
        try await run(arguments: arguments)
    }

    /// Runs `outpost` with an argument list on this device's store.
    @discardableResult
    func run(arguments: [String]) async throws -> RunResult {
        try await runProcess(Built.outpost, arguments, in: directory.url, environment: environment)
    }

    /// Runs `outpost` and requires it to succeed; returns its trimmed stdout.
    @discardableResult
    func ok(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let result = try await runProcess(Built.outpost, arguments, in: directory.url, environment: environment)
        try #require(
            result.status == 0,
            "outpost \(arguments.joined(separator: " ")): \(result)",
            sourceLocation: sourceLocation
        )
        return result.output
    }

    /// Runs `outpost` with an argument list and requires it to succeed; returns its trimmed stdout.
    @discardableResult
    func ok(arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let result = try await runProcess(Built.outpost, arguments, in: directory.url, environment: environment)
        try #require(
            result.status == 0,
            "outpost \(arguments.joined(separator: " ")): \(result)",
            sourceLocation: sourceLocation
        )
        return result.output
    }

    /// Makes this device's replica on `server` with `token` and syncs it once.
    func join(_ server: TestServer, token: String) async throws {
        try await ok("init", "--server", server.url.absoluteString, "--token", token)
        try await ok("sync")
    }

    /// The canonical export of this replica.
    func export() async throws -> String {
        try await ok("export", "--format", "json")
    }

    /// Registers a new patient (Ada Ruiz) on the team and in the subgroup of `patient`, which this device holds;
    /// returns its id.
    func registerPatient(like patient: String) async throws -> String {
        let shown = try await ok("patient", "show", patient, "--json")
        let fields = try #require(
            (try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any])?["fields"] as? [String: Any]
        )
        return try await ok(
            "patient",
            "add",
            "givenName=Ada",
            "familyName=Ruiz",
            "birthDate=1980-01-02",
            "sex=female",
            "primaryTeam=\(try #require(fields["primaryTeam"] as? String))",
            "subgroup=\(try #require(fields["subgroup"] as? String))",
            "status=active"
        ).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `outpost status --json`, decoded.
    func status() async throws -> [String: Any] {
        let text = try await ok("status", "--json")
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }
}

extension TestServer {
    /// The value `/metrics` gives for `series`, the metric's name with its labels as Prometheus writes them
    /// (`outpost_snapshot_pages_total{built="ahead"}`), or `nil` when it is not there.
    func metric(_ series: String) async throws -> Double? {
        let (status, body) = try await request("GET", Wire.Path.metrics)
        try #require(status == 200)
        let line = String(decoding: body, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// The count of `outpost_snapshot_pages_total` with `built` ("ahead", "on_request", "cached").
    func snapshotPages(built: String) async throws -> Int {
        Int(try await metric("outpost_snapshot_pages_total{built=\"\(built)\"}") ?? 0)
    }
}
