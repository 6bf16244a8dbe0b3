import Foundation
import OutpostTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP socket listening on 127.0.0.1 at `port` (0: any free port, `SO_REUSEADDR` so that a port a server just
/// left is taken), and the port it listens on.
func loopbackListener(port wanted: Int = 0, backlog: Int32 = 16) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError(description: "socket: \(errno)") }
    var reuse: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(wanted).bigEndian
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0, listen(fd, backlog) == 0 else {
        close(fd)
        throw HarnessError(description: "bind or listen: \(errno)")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// A loopback TCP server that answers every connection with the first `cut` bytes of `answer` and closes it:
/// a response cut off in transit (inside its headers when `cut` is small).
final class CutOffServer: @unchecked Sendable {
    /// A count shared with the serving thread.
    final class Counter: Sendable {
        let value = Mutex(0)
    }

    let port: Int
    private let listener: Int32
    private let served: Counter
    private let thread: Thread

    /// How many connections were answered.
    var connections: Int { served.value.withLock { $0 } }

    init(answer: [UInt8], cut: Int) throws {
        let (fd, bound) = try loopbackListener()
        port = bound
        listener = fd
        let prefix = Array(answer.prefix(cut))
        let served = Counter()
        self.served = served
        thread = Thread {
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 { return }  // The listener was closed: stop.
                // Read the request's head (the client sends it whole before it waits for an answer).
                var request: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while !request.ends(with: Array("\r\n\r\n".utf8)) && request.count < 65_536 {
                    let count = recv(connection, &buffer, buffer.count, 0)
                    if count <= 0 { break }
                    request += buffer[0..<count]
                    if request.firstRange(of: Array("\r\n\r\n".utf8)) != nil { break }
                }
                _ = prefix.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, 0) }
                close(connection)
                served.value.withLock { $0 += 1 }
            }
        }
        thread.start()
    }

    /// Stops accepting connections.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }
}

/// A loopback TCP port that takes connections and never answers: it listens and never accepts, so the kernel
/// completes each connection and holds what the client sends (a server hung, or a link that stalls).
final class SilentServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32

    /// Listens on `port` (0: any free port), as a server stopped there would have.
    init(port wanted: Int = 0) throws {
        (listener, port) = try loopbackListener(port: wanted, backlog: 64)
    }

    deinit { close(listener) }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}

/// A whole HTTP response of the real server, read over a raw socket (`Connection: close`).
func rawResponse(port: Int, path: String, token: String) throws -> [UInt8] {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw HarnessError(description: "connect: \(errno)") }
    let request = Array(
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n".utf8
    )
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        answer += buffer[0..<count]
    }
    return answer
}

/// Issue 10: the client's HTTP. A response cut off in transit is a transient failure like any other (retried,
/// then one line and exit 1, the outbox kept), never a crash; `remote set` without a token keeps the token.
@Suite(.serialized)
struct ClientTransportTests {
    @Test(arguments: [17, 33, 50])
    func aResponseCutOffInsideItsHeadersIsRetriedThenOneLineAndExit1WithTheOutboxKept(cut: Int) async throws {
        let server = try await TestServer()
        let answer = try rawResponse(port: server.port, path: "/v1/session", token: server.adminToken)
        let head = try #require(answer.firstRange(of: Array("\r\n\r\n".utf8)), "no head in the session answer")
        try #require(cut < head.lowerBound, "the cut must fall inside the headers")
        let cutOff = try CutOffServer(answer: answer, cut: cut)
        defer { cutOff.stop() }

        let devices = try TemporaryDirectory("outpost-cutoff")
        let device = Device("cut", in: devices)
        // The server cannot be reached through the cut-off link: init only warns (the laptop may be offline).
        try await device.ok("init", "--server", "http://127.0.0.1:\(cutOff.port)", "--token", server.adminToken)
        try await device.ok("import", try TinyPractice.write(in: devices))
        let pending = try await #require(try device.status()["pendingChanges"] as? Int)
        #expect(pending > 0)

        let result = try await device.run("sync")
        #expect(result.status == 1, "no crash (a fatal error exits 132 from a shell, 4 here): \(result)")
        #expect(result.errorLines.count == 1, "one line on stderr: \(result)")
        #expect(result.stderr.hasPrefix("outpost: cannot reach the server ("), "\(result)")
        #expect(result.stderr.contains("your changes are kept"), "\(result)")
        #expect(!result.stderr.contains("Fatal error"), "\(result)")
        #expect(cutOff.connections > 1, "the cut-off answer was retried")
        await #expect(try device.status()["pendingChanges"] as? Int == pending, "the outbox is kept")
    }

    /// A server that takes the connection and never answers: `outpost sync` says each retry as it begins, on
    /// stderr (a nurse would otherwise wait minutes without a word: five retries of the request's timeout), then
    /// fails with one line and exit 1, the outbox kept. `OUTPOST_SYNC_TIMEOUT=1` keeps the wait short.
    @Test func aServerThatNeverAnswersIsSaidAtEachRetryThenOneErrorLine() async throws {
        let silent = try SilentServer()
        let devices = try TemporaryDirectory("outpost-silent")
        let device = Device("waiting", in: devices)
        let url = "http://127.0.0.1:\(silent.port)"
        let environment = device.environment.merging(["OUTPOST_SYNC_TIMEOUT": "1"]) { _, new in new }
        func outpost(_ arguments: String...) async throws -> RunResult {
            try await runProcess(Built.outpost, arguments, in: devices.url, environment: environment)
        }
        // init asks for the session once more after a timeout, and keeps the store (the laptop may be offline).
        let joined = try await outpost("init", "--server", url, "--token", "opt_0000000000000000")
        #expect(joined.status == 0, "\(joined)")
        #expect(
            joined.errorLines.first == "waiting for the server: no whole answer within 1 s; trying again (1 of 1)",
            "\(joined)"
        )
        try await device.ok("import", try TinyPractice.write(in: devices))
        let pending = try await #require(try device.status()["pendingChanges"] as? Int)

        let result = try await outpost("sync")
        #expect(result.status == 1, "\(result)")
        let waits = (1...5).map { "waiting for the server: no whole answer within 1 s; trying again (\($0) of 5)" }
        #expect(Array(result.errorLines.prefix(5)) == waits, "\(result)")
        #expect(result.errorLines.count == 6, "\(result)")
        #expect(
            result.errorLines.last?.hasPrefix("outpost: cannot reach the server (no whole answer within 1 s)") == true,
            "\(result)"
        )
        await #expect(try device.status()["pendingChanges"] as? Int == pending, "the outbox is kept")
    }

    /// A device that synced before reads the session beside its push: against a server that stopped answering,
    /// both requests wait and retry side by side, and each retry is said once. A timeout that is not a number of
    /// seconds is refused before anything is sent.
    @Test func aDeviceThatSyncedBeforeSaysEachRetryOnceWhenItsServerStopsAnswering() async throws {
        let server = try await TestServer()
        let devices = try TemporaryDirectory("outpost-stopped-answering")
        let device = Device("known", in: devices)
        try await device.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await device.ok("import", try TinyPractice.write(in: devices))
        try await device.ok("sync")
        try await device.ok("patient", "set", TinyPractice.patients[0], "phone=555-0199")
        await server.stop()
        let silent = try SilentServer(port: server.port)
        func outpost(timeout: String) async throws -> RunResult {
            let environment = device.environment.merging(["OUTPOST_SYNC_TIMEOUT": timeout]) { _, new in new }
            return try await runProcess(Built.outpost, ["sync"], in: devices.url, environment: environment)
        }
        let refused = try await outpost(timeout: "1.5")
        #expect(refused.status == 2 && refused.errorLines.count == 1, "\(refused)")
        #expect(refused.stderr.contains("OUTPOST_SYNC_TIMEOUT is '1.5'"), "\(refused)")

        let result = try await outpost(timeout: "1")
        #expect(result.status == 1, "\(result)")
        let waits = (1...5).map { "waiting for the server: no whole answer within 1 s; trying again (\($0) of 5)" }
        #expect(Array(result.errorLines.prefix(5)) == waits && result.errorLines.count == 6, "\(result)")
        #expect(result.errorLines.last?.hasPrefix("outpost: cannot reach the server") == true, "\(result)")
        await #expect(try device.status()["pendingChanges"] as? Int == 1, "the edit is kept")
        _ = silent
    }

    @Test func remoteSetWithoutATokenKeepsTheStoredTokenAndSaysSo() async throws {
        let server = try await TestServer()
        let devices = try TemporaryDirectory("outpost-remote")
        let device = Device("moved", in: devices)
        // Bound to a server that is not there (the device was set up offline), then pointed at the real one.
        try await device.ok("init", "--server", "http://127.0.0.1:9", "--token", server.adminToken)
        let output = try await device.ok("remote", "set", server.url.absoluteString)
        #expect(output.contains("server: \(server.url.absoluteString)"), "\(output)")
        #expect(output.contains("kept"), "says the stored token was kept: \(output)")
        let shown = try await device.ok("remote", "show")
        #expect(shown.contains(String(server.adminToken.prefix(8))), "\(shown)")
        try await device.ok("import", try TinyPractice.write(in: devices))
        let report = try await device.ok("sync")
        #expect(report.contains("pending 0"), "the kept token syncs: \(report)")

        // A replica that never had a token still needs one, and is told how to give it.
        let offline = Device("offline", in: devices)
        try await offline.ok("init")
        let refused = try await offline.run("remote", "set", server.url.absoluteString)
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.errorLines.count == 1, "\(refused)")
        #expect(refused.stderr.contains("--token"), "\(refused)")
        await #expect(try offline.ok("remote", "show").contains("(none"), "nothing was saved")
    }
}
