import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where a fault lands in one exchange.
enum FaultPoint: String, CustomTestStringConvertible, CaseIterable, Sendable {
    /// Before the request leaves: the server never sees it.
    case beforeTheRequest
    /// After the server answered: it did the work, the device never hears so.
    case afterTheAnswer

    var testDescription: String { rawValue }
}

/// The server killed in the middle of a push or a pull, answers lost in transit, a device clock far ahead,
/// a shutdown during a long poll: the next sync completes and every replica converges, nothing lost or
/// duplicated.
@Suite(.serialized)
struct SyncFaultTests {
    /// A transport that kills the server (SIGKILL) at `point` of the `number`-th exchange with `path`; the
    /// device sees a broken connection.
    func killing(
        _ server: TestServer,
        token: String,
        path: String,
        number: Int,
        at point: FaultPoint
    )
        -> FaultTransport
    {
        let pid = server.pid
        let fault: @Sendable (TransportRequest, Int) throws -> Void = { request, count in
            guard request.path == path, count == number else { return }
            kill(pid, SIGKILL)
            throw InjectedFault(description: "connection lost: the server was killed")
        }
        return FaultTransport(
            server.transport(token),
            before: { request, count in if point == .beforeTheRequest { try fault(request, count) } },
            after: { request, count, _ in if point == .afterTheAnswer { try fault(request, count) } }
        )
    }

    /// Checks the feed holds each of `count` changes exactly once.
    func expectFeedHoldsEachChangeOnce(_ server: TestServer, _ token: String, count: Int) async throws {
        let feed = try await server.feed(token)
        #expect(feed.count == count)
        #expect(Set(feed.map(\.id)).count == feed.count, "a change is in the feed twice")
    }

    /// An in-process replica, `site-a`, holding the tiny practice, not yet synced.
    func practiceReplica(_ directory: TemporaryDirectory) throws -> LocalReplica {
        let replica = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: replica.care)
        return replica
    }

    /// Two in-process replicas sharing the tiny practice through `server`, both caught up.
    func twoSyncedReplicas(
        _ server: TestServer,
        _ directory: TemporaryDirectory
    ) async throws -> (
        LocalReplica, LocalReplica
    ) {
        let a = try practiceReplica(directory)
        let b = try LocalReplica("site-b", in: directory)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let report = try await b.engine(server.transport(server.adminToken)).sync()
        #expect(report.bootstrapped)
        return (a, b)
    }

    /// Appends `count` notes to the first patient, one commit each.
    func addNotes(_ replica: LocalReplica, count: Int) throws {
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        for index in 0..<count {
            try replica.care.update([.append(patient, "notes", .string("Follow-up note \(index)"))])
        }
    }

    @Test(arguments: Backend.all, FaultPoint.allCases)
    func serverKilledMidPushThenRestartedTheNextSyncCompletesWithNothingLostOrDuplicated(
        backend: Backend,
        point: FaultPoint
    )
        async throws
    {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-faults")
        let admin = server.adminToken
        let a = try practiceReplica(directory)
        let total = try a.store.status().pendingChanges
        try #require(total > 20)

        // Batches of at most 10 (ending at a record's end): the first is stored and acknowledged, the server dies
        // during the second.
        let sizes = try a.store.pushBatchSizes(limit: 10, count: 2)
        try #require(sizes.count == 2)
        let transport = killing(server, token: admin, path: Wire.Path.push, number: 2, at: point)
        await #expect(throws: ClientError.self) {
            try await a.engine(transport, pushBatch: 10).sync()
        }
        #expect(
            try a.store.status().pendingChanges == total - sizes[0],
            "the outbox must keep every unacknowledged change"
        )

        await server.stop()
        try await server.start()
        let report = try await a.engine(server.transport(admin), pushBatch: 10).sync()
        // Killed after answering, the server already held the second batch: it comes back as duplicates.
        let stored = point == .afterTheAnswer ? sizes[1] : 0
        #expect(report.pushedDuplicates == stored)
        #expect(report.pushed == total - sizes[0] - stored)
        #expect(report.pending == 0)
        try await expectFeedHoldsEachChangeOnce(server, admin, count: total)

        let b = try LocalReplica("site-b", in: directory)
        _ = try await b.engine(server.transport(admin)).sync()
        #expect(try b.export() == a.export())
    }

    @Test(arguments: Backend.all, FaultPoint.allCases)
    func serverKilledMidPullThenRestartedTheNextSyncResumesWithNoGapOrDuplicate(
        backend: Backend,
        point: FaultPoint
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-faults")
        let admin = server.adminToken
        let (a, b) = try await twoSyncedReplicas(server, directory)
        try addNotes(a, count: 12)
        _ = try await a.engine(server.transport(admin)).sync()
        let total = try await server.feed(admin).count

        // Pages of 5: the first is applied with its checkpoint, the server dies during the second.
        let transport = killing(server, token: admin, path: Wire.Path.changes, number: 2, at: point)
        await #expect(throws: ClientError.self) {
            try await b.engine(transport, pageSize: 5).sync()
        }
        await server.stop()
        try await server.start()
        let report = try await b.engine(server.transport(admin), pageSize: 5).sync()
        #expect(report.pulled == 7, "the first page was applied; the other seven changes arrive now")
        #expect(!report.bootstrapped)
        #expect(try b.export() == a.export())
        #expect(try b.store.checkProjection() == [], "the projection disagrees with the states after the fault")
        let history = try b.store.history(of: RecordRef(type: "patient", id: TinyPractice.patients[0]))
        #expect(Set(history.map(\.id)).count == history.count, "a change was applied twice")
        try await expectFeedHoldsEachChangeOnce(server, admin, count: total)
    }

    /// The definitions of a store's indexes, sorted.
    func indexes(of store: LocalStore) async throws -> [String] {
        let queue = try DatabaseQueue(path: store.path)
        defer { try? queue.close() }
        return try await queue.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY sql"
            )
        }
    }

    /// A new device bootstraps without its secondary indexes (built once at the end): a bootstrap cut short
    /// by the server dying puts them back, and so does the bootstrap that completes after the restart.
    @Test(arguments: Backend.all, FaultPoint.allCases)
    func serverKilledMidSnapshotTheNewDeviceKeepsItsIndexesAndTheNextSyncBootstraps(
        backend: Backend,
        point: FaultPoint
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-faults")
        let admin = server.adminToken
        let a = try practiceReplica(directory)
        _ = try await a.engine(server.transport(admin)).sync()
        let b = try LocalReplica("site-b", in: directory)
        let fresh = try await indexes(of: b.store)
        #expect(fresh.contains { $0.contains("task_view") } && fresh.contains { $0.contains("record_owner") })

        let transport = killing(server, token: admin, path: Wire.Path.snapshot, number: 2, at: point)
        await #expect(throws: ClientError.self) {
            try await b.engine(transport, pageSize: 5).sync()
        }
        #expect(try await indexes(of: b.store) == fresh, "a failed bootstrap leaves the indexes as they were")
        await server.stop()
        try await server.start()
        let report = try await b.engine(server.transport(admin), pageSize: 5).sync()
        #expect(report.bootstrapped)
        #expect(try b.export() == a.export())
        #expect(try b.store.checkProjection() == [])
        #expect(try await indexes(of: b.store) == fresh)
        #expect(try b.store.setting("bootstrap.deferredIndexes") == nil)
    }

    @Test(arguments: Backend.all) func aCLIReplicaWhoseServerDiedMidPushSaysSoKeepsItsOutboxAndCatchesUpAfterARestart(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let devices = try TemporaryDirectory("outpost-devices")
        let url = server.url.absoluteString
        let admin = server.adminToken
        let desk = Device("desk", in: devices)
        try await desk.ok("init", "--server", url, "--token", admin)
        try await desk.ok("import", try TinyPractice.write(in: devices))
        let pending = try await #require(try desk.status()["pendingChanges"] as? Int)

        // The desk's own store, synced in-process so the server dies right after storing the first batch (of at
        // most 10 changes, ending at a record's end).
        let stored: Int
        do {
            let replica = try LocalReplica(openingAt: desk.store)
            stored = try #require(try replica.store.pushBatchSizes(limit: 10, count: 1).first)
            let transport = killing(server, token: admin, path: Wire.Path.push, number: 1, at: .afterTheAnswer)
            await #expect(throws: ClientError.self) {
                try await replica.engine(transport, pushBatch: 10).sync()
            }
        }
        await server.stop()

        let down = try await desk.run("sync")
        #expect(down.status == 1, "\(down)")
        let line = down.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!line.isEmpty && !line.contains("\n"), "one line: \(down)")
        #expect(line.contains("kept"), "say nothing was lost: \(down)")
        await #expect(try desk.status()["pendingChanges"] as? Int == pending)

        try await server.start()
        let text = try await desk.ok("sync", "--json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(report["pushedDuplicates"] as? Int == stored)
        #expect(report["pushed"] as? Int == pending - stored)
        #expect(report["pending"] as? Int == 0)
        try await expectFeedHoldsEachChangeOnce(server, admin, count: pending)

        let laptop = Device("laptop", in: devices)
        try await laptop.ok("init", "--server", url, "--token", admin)
        try await laptop.ok("sync")
        await #expect(try laptop.export() == desk.export())
    }

    @Test(arguments: Backend.all, SyncEngine.Encoding.allCases)
    func aPullPageLostInTransitIsFetchedAgainWithNoGapAndNoDuplicate(
        backend: Backend,
        encoding: SyncEngine.Encoding
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-faults")
        let admin = server.adminToken
        let (a, b) = try await twoSyncedReplicas(server, directory)
        try addNotes(a, count: 12)
        _ = try await a.engine(server.transport(admin), encoding: encoding).sync()

        // The server answers the second page; the answer never arrives.
        let transport = FaultTransport(
            server.transport(admin),
            after: { request, number, _ in
                if request.path == Wire.Path.changes && number == 2 {
                    throw InjectedFault(description: "page lost in transit")
                }
            }
        )
        let report = try await b.engine(transport, pageSize: 5, retries: 2, encoding: encoding).sync()
        #expect(report.pulled == 12)
        #expect(transport.count(Wire.Path.changes) == 4, "pages 1, 2 (lost), 2 again, 3")
        #expect(try b.export() == a.export())
        let history = try b.store.history(of: RecordRef(type: "patient", id: TinyPractice.patients[0]))
        #expect(Set(history.map(\.id)).count == history.count, "a change was applied twice")
    }

    @Test(arguments: Backend.all, SyncEngine.Encoding.allCases)
    func aPushAnswerLostInTransitIsRetriedAndCountedAsDuplicates(
        backend: Backend,
        encoding: SyncEngine.Encoding
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-faults")
        let admin = server.adminToken
        let a = try practiceReplica(directory)
        let total = try a.store.status().pendingChanges
        let first = try #require(try a.store.pushBatchSizes(limit: 10, count: 1).first)

        let transport = FaultTransport(
            server.transport(admin),
            after: { request, number, _ in
                if request.path == Wire.Path.push && number == 1 {
                    throw InjectedFault(description: "answer lost in transit")
                }
            }
        )
        let report = try await a.engine(transport, pushBatch: 10, retries: 2, encoding: encoding).sync()
        #expect(report.pushedDuplicates == first)
        #expect(report.pushed == total - first)
        #expect(report.pending == 0)
        try await expectFeedHoldsEachChangeOnce(server, admin, count: total)
    }

    /// A server that answers `503` to everything, and cancels the sync holding it as it answers the first request.
    final class UnavailableServer: SyncTransport {
        let requests = Mutex(0)
        let sync = Mutex<Task<SyncReport, any Error>?>(nil)

        func send(_ request: TransportRequest) async throws -> TransportResponse {
            requests.withLock { $0 += 1 }
            sync.withLock { $0?.cancel() }
            return TransportResponse(status: 503, body: Data(#"{"error":"unavailable","message":"busy"}"#.utf8))
        }
    }

    @Test func aCancelledSyncDoesNotRetryAServerThatAnswersUnavailable() async throws {
        let directory = try TemporaryDirectory("outpost-faults")
        let replica = try LocalReplica("site-a", in: directory)
        let server = UnavailableServer()
        let engine = replica.engine(server, retries: 5)
        let task = server.sync.withLock { sync in
            let started = Task { try await engine.sync() }
            sync = started
            return started
        }
        await #expect(throws: ClientError.self) { try await task.value }
        #expect(server.requests.withLock { $0 } == 1, "the sync retried after it was cancelled")
    }

    @Test(arguments: Backend.all) func aDeviceWhoseClockRunsADayAheadIsToldAndItsChangesAreReStampedNotLost(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-faults")
        let admin = server.adminToken
        let fast = try LocalReplica("fast-clock", in: directory, wallClock: OffsetWallClock(offsetMillis: 86_400_000))
        try TinyPractice.load(into: fast.care)
        let total = try fast.store.status().pendingChanges

        let transport = FaultTransport(server.transport(admin))
        let report = try await fast.engine(transport).sync()
        #expect(transport.count(Wire.Path.push) == 2, "refused as clock skew once, then accepted")
        #expect(report.restamped == total)
        #expect(report.pushed == total)
        #expect(report.pending == 0)
        let feed = try await server.feed(admin)
        let now = nowMillis()
        #expect(feed.count == total)
        #expect(feed.allSatisfy { $0.clock.millis <= now }, "a stored change is stamped in the future")

        // Its clock is still ahead, but it learned the server's time: the next edit is stamped with it and
        // pushed as it is (issue 9; DeviceClockTests).
        try fast.care.update([
            .assign(RecordRef(type: "patient", id: TinyPractice.patients[1]), "preferredLanguage", "es")
        ])
        let again = try await fast.engine(server.transport(admin)).sync()
        #expect(again.restamped == 0)
        #expect(again.pushed == 1)
        #expect(try await server.feed(admin).allSatisfy { $0.clock.millis <= nowMillis() })

        let other = try LocalReplica("on-time", in: directory)
        _ = try await other.engine(server.transport(admin)).sync()
        #expect(try other.export() == fast.export())
        #expect(try other.export().contains("\"preferredLanguage\":\"es\""))
    }

    @Test(arguments: Backend.all) func sigtermDuringALongPollStopsTheServerAndThePollGetsAnAnswerOrAClosedConnection(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let process = try #require(server.process)
        let url = try #require(URL(string: "\(server.url.absoluteString)/v1/changes?since=0&wait=30"))
        let token = server.adminToken
        let poll = Task { () throws -> Int in
            var request = URLRequest(url: url, timeoutInterval: 120)
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            let (_, response) = try await URLSession.shared.data(for: request)
            return (response as? HTTPURLResponse)?.statusCode ?? 0
        }
        // The poll is open once the server counts a live connection.
        var open = false
        var polls = 0
        while !open && polls < 1_000 {
            polls += 1
            let (_, body) = try await server.request("GET", "/metrics")
            open = String(decoding: body, as: UTF8.self).split(separator: "\n")
                .contains { $0.hasPrefix("outpost_live_connections ") && Double($0.split(separator: " ")[1]) == 1 }
            if !open { try await Task.sleep(for: .milliseconds(20)) }
        }
        try #require(open, "the long poll never registered")

        kill(process.processIdentifier, SIGTERM)
        // A hang guard well under the poll's 30 s wait, not a timing assertion.
        let guardDeadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < guardDeadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning, "the server kept running after SIGTERM with a long poll open")
        if process.isRunning { await server.stop() }
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "a graceful exit")
        switch await poll.result {
        case .success(let status): #expect(status == 200, "the poll was answered with \(status)")
        case .failure: break  // The connection closed: also an answer the client can retry.
        }
    }
}
