import ArgumentParser
import Foundation
import Logging
import OutpostClient

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

// What the benchmarks that run the real server share: starting it, its administration commands, a device's sync
// engine against it.

/// The real `outpost-server` from this benchmark's build folder, on a free loopback port.
final class BenchServer {
    let process: Process
    let data: String
    let url: URL
    let executable: URL

    var adminToken: String {
        ((try? String(contentsOfFile: data + "/admin-token", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The PostgreSQL database it runs on, or `nil` for SQLite in `data`.
    let database: String?

    init(data: String, database: String? = nil) throws {
        self.data = data
        self.database = database
        executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("outpost-server")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw ValidationError("build outpost-server first: swift build -c release --product outpost-server")
        }
        let output = data + ".out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process = Process()
        process.executableURL = executable
        process.arguments =
            ["serve", "--data", data, "--port", "0", "--log-level", "error"]
            + (database.map { ["--database", $0] } ?? [])
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var port: Int?
        while port == nil, Date() < deadline, process.isRunning {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                port = Int(text[range.upperBound...].prefix { $0.isNumber })
            } else {
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        guard let port else { throw ValidationError("outpost-server did not start") }
        url = URL(string: "http://127.0.0.1:\(port)")!
    }

    /// Seconds of CPU the server has used so far, user and system, all threads (`utime` and `stime` of
    /// `/proc/<pid>/stat`, in clock ticks of 1/100 s), or `nil` where there is no such file (not Linux).
    var cpuSeconds: Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After the command's name in parentheses: state is field 3, utime 14 and stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Seconds of CPU the server has used since it had used `before` (``cpuSeconds``).
    func cpuSeconds(since before: Double?) -> Double? {
        guard let before, let now = cpuSeconds else { return nil }
        return now - before
    }

    /// Bytes the server has written so far through `write` and `pwrite` calls, to files and sockets (`wchar` of
    /// `/proc/<pid>/io`), or `nil` where there is no such file (not Linux).
    var bytesWritten: Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/io", encoding: .utf8) else {
            return nil
        }
        let line = text.split(separator: "\n").first { $0.hasPrefix("wchar:") }
        return line.flatMap { Int($0.dropFirst("wchar:".count).trimmingCharacters(in: .whitespaces)) }
    }

    /// Runs an administration subcommand on the server's data directory; returns its stdout.
    func admin(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = executable
        process.arguments =
            Array(arguments.prefix(2)) + ["--data", data] + (database.map { ["--database", $0] } ?? [])
            + Array(arguments.dropFirst(2))
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }

    /// A device's sync engine against this server, with the administrator's token.
    func engine(_ store: CareStore, _ options: SyncEngine.Options) -> SyncEngine {
        SyncEngine(
            store: store.store,
            transport: HTTPTransport(baseURL: url, token: adminToken),
            options: options,
            logger: Logger(label: "bench")
        )
    }

    /// Refuses a `--database` that is not a PostgreSQL URL.
    static func validate(database: String?) throws {
        if let database, !database.hasPrefix("postgres://"), !database.hasPrefix("postgresql://") {
            throw ValidationError("--database must be a postgres:// URL")
        }
    }

    /// Runs one SQL statement with `psql` on the server's PostgreSQL database; returns its rows, one a line,
    /// columns split by `|`.
    func psql(_ sql: String) throws -> [[String]] {
        guard let database else { throw ValidationError("not a PostgreSQL server") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("psql failed: \(sql)") }
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map {
            $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// `url` without its password, for printing.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    /// The server's own request-duration histogram (`http_server_request_duration`, Hummingbird's metrics
    /// middleware, served at `/metrics`), summed over the `/v1` routes: the count of requests at or under each
    /// bucket's upper bound, in seconds. What the server measured of its requests, from the request's arrival
    /// to its response, without the device's side of the exchange.
    func requestHistogram() async throws -> [Double: Int] {
        let (body, _) = try await URLSession.shared.data(from: url.appendingPathComponent("metrics"))
        var buckets: [Double: Int] = [:]
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n")
        where line.hasPrefix("http_server_request_duration_bucket{") && line.contains("http_route=\"/v1/") {
            guard let le = line.range(of: "le=\""), let close = line[le.upperBound...].firstIndex(of: "\""),
                let count = Int(line.split(separator: " ").last ?? "")
            else { continue }
            let bound = line[le.upperBound..<close]
            buckets[bound == "+Inf" ? .infinity : Double(bound) ?? .infinity, default: 0] += count
        }
        return buckets
    }

    /// The record tail rows the server has not merged into its records yet (`outpost_record_tail_rows` at
    /// `/metrics`), or `nil` when it reports none (a PostgreSQL server keeps no tails).
    func recordTailRows() async throws -> Int? {
        let (body, _) = try await URLSession.shared.data(from: url.appendingPathComponent("metrics"))
        let line = String(decoding: body, as: UTF8.self).split(separator: "\n").first {
            $0.hasPrefix("outpost_record_tail_rows ")
        }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) }
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
