import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A sync says how far it has come (``SyncProgress``) after each push answered and each page written, so a sync
/// that runs for minutes on a slow link shows as moving; `outpost sync --progress` prints it.
struct SyncProgressTests {
    /// The progress reports an engine gives during one sync.
    final class Seen: Sendable {
        private let reports = Mutex<[SyncProgress]>([])
        func add(_ progress: SyncProgress) { reports.withLock { $0.append(progress) } }
        var all: [SyncProgress] { reports.withLock { $0 } }
        func of(_ step: SyncProgress.Step) -> [SyncProgress] { all.filter { $0.step == step } }
    }

    @Test func aSyncReportsEachPushAnsweredAndEachPageWrittenAndEndsAtItsReport() async throws {
        let server = try await TestServer(backend: .sqlite)
        let directory = try TemporaryDirectory("outpost-progress")
        let office = try LocalReplica("office", in: directory)
        try TinyPractice.load(into: office.care)
        let outbox = try office.store.pendingCount()
        try #require(outbox > 20)

        // The first push, in batches of at most 10 changes: a report per push answered, the total known from the
        // start, the count growing to it.
        let officeSeen = Seen()
        let pushes = FaultTransport(server.transport(server.adminToken))
        let pushed = try await office.engine(pushes, pushBatch: 10, progress: officeSeen.add).sync()
        let pushReports = officeSeen.of(.push)
        #expect(pushReports.count == pushes.count(Wire.Path.push))
        #expect(pushReports.allSatisfy { $0.toPush == outbox && $0.records == 0 && $0.pulled == 0 })
        #expect(zip(pushReports, pushReports.dropFirst()).allSatisfy { $0.pushed < $1.pushed })
        #expect(pushReports.last?.pushed == outbox)
        #expect(pushed.pushed == outbox)
        #expect(pushReports.last?.summary == "pushed \(outbox)/\(outbox) changes (100%)")

        // A new device's bootstrap in pages of 2 records: a report per page written, ending at what it wrote.
        let laptop = try LocalReplica("laptop", in: directory)
        let laptopSeen = Seen()
        let pages = FaultTransport(server.transport(server.adminToken))
        let bootstrap = try await laptop.engine(pages, pageSize: 2, progress: laptopSeen.add).sync()
        let records = laptopSeen.of(.bootstrap).map(\.records)
        #expect(bootstrap.snapshotRecords > 4)
        #expect(records.count == (bootstrap.snapshotRecords + 1) / 2)
        #expect(records == records.sorted() && records.last == bootstrap.snapshotRecords)
        #expect(laptopSeen.of(.push).isEmpty)

        // Seven edits pulled in pages of 3: reports at 3, 6 and 7 changes; a sync counts from its own start.
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        for index in 0..<7 { try office.care.update([.assign(patient, "phone", .string("555-010\(index)"))]) }
        _ = try await office.engine(server.transport(server.adminToken)).sync()
        let pullSeen = Seen()
        let pulled = try await laptop.engine(server.transport(server.adminToken), pageSize: 3, progress: pullSeen.add)
            .sync()
        #expect(pulled.pulled == 7)
        #expect(pullSeen.all.map(\.pulled) == [3, 6, 7])
        #expect(pullSeen.all.allSatisfy { $0.step == .pull && $0.records == 0 && $0.toPush == 0 })
        #expect(pullSeen.all.last?.summary == "pulled 7 changes")

        // Bootstrapping again (its checkpoint lost), the laptop holds every record already: the pages still count
        // what they bring, though nothing in them is new.
        try laptop.store.forgetCheckpoint()
        let againSeen = Seen()
        let again = try await laptop.engine(server.transport(server.adminToken), pageSize: 2, progress: againSeen.add)
            .sync()
        #expect(again.bootstrapped && again.snapshotRecords == 0, "\(again)")
        #expect(againSeen.of(.bootstrap).last?.records == bootstrap.snapshotRecords)
    }

    /// `outpost sync --watch --progress`: the first round (a new laptop's bootstrap) prints its progress lines
    /// on stderr before its report; a later round, a live change, prints its report alone.
    @Test func watchShowsTheProgressOfItsFirstRound() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-watch-progress")
        let office = Device("office", in: folder)
        try await office.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        let laptop = Device("laptop", in: folder)
        try await laptop.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)

        let output = folder.path("watch.out")
        let errors = folder.path("watch.err")
        for path in [output, errors] { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let watch = Process()
        watch.executableURL = Built.outpost
        watch.arguments = ["sync", "--watch", "--progress", "--wait", "30"]
        watch.environment = laptop.environment.merging(["HOME": folder.url.path]) { _, new in new }
        watch.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        watch.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        let exit = try watch.start()
        func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        func reports() -> [String] { read(output).split(separator: "\n").map(String.init) }
        // The first round's report, then a live change's.
        var polls = 0
        while polls < 6_000, watch.isRunning, reports().isEmpty {
            polls += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        let first = read(errors)
        try await office.ok(
            "patient",
            "set",
            try #require(try await office.rows("patient", "list").first?["id"] as? String),
            "phone=555-0199"
        )
        try await office.ok("sync")
        while polls < 12_000, watch.isRunning, reports().count < 2 {
            polls += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        kill(watch.processIdentifier, SIGKILL)
        await exit.wait()
        let lines = reports()
        #expect(lines.count == 2 && lines[0].contains("bootstrapped") && lines[1].contains("pulled 1"), "\(lines)")
        #expect(first.contains("syncing: received "), "the first round's progress: \(first)")
        #expect(read(errors) == first, "no progress for the live change: \(read(errors))")
    }

    /// Each retry of a transient failure is reported before it is made (``SyncRetry``): what failed, whether it
    /// was the server not answering in time, and which retry of how many; a sync whose retries succeed ends as
    /// usual.
    @Test func eachRetryIsReportedWithWhatFailedBeforeItIsMade() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-retrying")
        let device = try LocalReplica("retrying", in: directory)
        try TinyPractice.load(into: device.care)
        let busy = TransportResponse(status: 503, body: Data(#"{"error":"unavailable","message":"busy"}"#.utf8))
        let transport = FaultTransport(
            server.transport(server.adminToken),
            before: { request, number in
                if request.path == Wire.Path.session && number == 1 {
                    throw TransportFailure(reason: "no whole answer within 30 s", isTimeout: true)
                }
                if request.path == Wire.Path.session && number == 2 {
                    throw TransportFailure(reason: "no connection to 127.0.0.1:9")
                }
            },
            answer: { request, number in request.path == Wire.Path.session && number == 3 ? busy : nil }
        )
        let seen = Mutex<[SyncRetry]>([])
        let report = try await device.engine(
            transport,
            retries: 3,
            retrying: { retry in
                seen.withLock { $0.append(retry) }
            }
        ).sync()
        #expect(report.pending == 0 && report.pushed > 0, "\(report)")
        let retries = seen.withLock { $0 }
        #expect(retries.map(\.attempt) == [1, 2, 3] && retries.allSatisfy { $0.retries == 3 }, "\(retries)")
        #expect(
            retries.map(\.reason) == [
                "no whole answer within 30 s", "no connection to 127.0.0.1:9", "the server answered 503",
            ]
        )
        #expect(retries.map(\.timedOut) == [true, false, false])
    }

    /// `outpost sync --progress`, the real binaries: a line on stderr per push answered and per page written,
    /// anywhere (here a pipe); the report on stdout as before.
    @Test func outpostSyncProgressPrintsALineForEachStepOnStderr() async throws {
        let server = try await TestServer(backend: .sqlite)
        let devices = try TemporaryDirectory("outpost-progress-cli")
        let url = server.url.absoluteString
        let office = Device("office", in: devices)
        try await office.ok("init", "--server", url, "--token", server.adminToken)
        try await office.ok("import", Built.fixture("practice-small.json"))
        let outbox = try #require(try await office.status()["pendingChanges"] as? Int)

        let push = try await office.run("sync", "--progress")
        try #require(push.status == 0, "\(push)")
        #expect(push.stdout.hasPrefix("pushed \(outbox),"), "\(push)")
        let lines = push.errorLines.filter { $0.hasPrefix("syncing: ") }
        #expect(lines.count >= 2, "a push of \(outbox) changes goes in batches: \(push.stderr)")
        #expect(lines.last == "syncing: pushed \(outbox)/\(outbox) changes (100%)", "\(push.stderr)")

        let laptop = Device("laptop", in: devices)
        try await laptop.ok("init", "--server", url, "--token", server.adminToken)
        let bootstrap = try await laptop.run("sync", "--progress")
        try #require(bootstrap.status == 0, "\(bootstrap)")
        let records = try #require(
            bootstrap.stdout.firstMatch(of: /bootstrapped (\d+) records/).flatMap { Int($0.1) },
            "\(bootstrap)"
        )
        #expect(bootstrap.errorLines.last == "syncing: received \(records) records", "\(bootstrap.stderr)")

        // Without --progress, and not on a terminal, nothing but the report.
        let quiet = try await laptop.run("sync")
        #expect(quiet.status == 0 && !quiet.stderr.contains("syncing:"), "\(quiet)")

        // --wait is not taken without --watch; a flag given a value is one sentence, one stop.
        let waiting = try await laptop.run("sync", "--wait", "5")
        #expect(waiting.status == 2 && waiting.stderr.contains("--wait is for --watch"), "\(waiting)")
        let valued = try await laptop.run("sync", "--progress=yes")
        #expect(valued.status == 2 && valued.errorLines.count == 1 && !valued.stderr.contains(".;"), "\(valued)")
    }
}
