import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A bootstrap is pipelined two deep: the two snapshot pages after the one the device writes are asked for
/// meanwhile, and each page is still written in its own transaction, in order.
@Suite(.serialized)
struct PipelinedBootstrapTests {
    /// A server and a replica, `site-a`, that loaded the tiny practice and pushed it.
    func office() async throws -> (TestServer, TemporaryDirectory, LocalReplica) {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-pipeline")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        return (server, directory, a)
    }

    @Test(arguments: [2, 3])
    func theNextTwoSnapshotPagesAreAskedForWhileThePageBeforeIsBeingWritten(asked page: Int) async throws {
        let (server, directory, a) = try await office()
        let admin = server.adminToken

        // Once the first page has arrived, another connection holds the device store's write lock: the first
        // page cannot be written until the test lets go, which it does once page `page` is asked for (the third
        // is asked for as soon as the second arrives, not once the first is written).
        let b = try LocalReplica("site-b", in: directory)
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let lock = try DatabaseQueue(path: b.store.path, configuration: configuration)
        let asked = AsyncStream<Void>.makeStream()
        let transport = FaultTransport(
            server.transport(admin),
            before: { request, number in
                if request.path == Wire.Path.snapshot, number == page { asked.continuation.yield() }
            },
            after: { request, number, _ in
                if request.path == Wire.Path.snapshot, number == 1 {
                    try lock.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
                }
            }
        )
        let engine = b.engine(transport, pageSize: 2)
        let (first, sync) = await withTaskGroup(of: (String, Result<SyncReport, any Error>?).self) { group in
            group.addTask {
                for await _ in asked.stream { return ("asked", nil) }
                return ("never asked", nil)
            }
            group.addTask {
                do {
                    return ("synced", .success(try await engine.sync()))
                } catch {
                    return ("synced", .failure(error))
                }
            }
            var first: String?
            var sync: Result<SyncReport, any Error>?
            while let (event, result) = await group.next() {
                if first == nil {
                    first = event
                    // Let go of the store (and of the other task, if the sync ended first).
                    try? await lock.writeWithoutTransaction { try $0.execute(sql: "COMMIT") }
                    asked.continuation.finish()
                }
                if let result { sync = result }
            }
            return (first, sync)
        }
        #expect(first == "asked", "page \(page) was asked for only after the first was written")
        let report = try #require(try sync?.get())
        #expect(report.bootstrapped)
        #expect(report.snapshotRecords > 6, "four pages of 2 records or more")
        #expect(try b.export() == a.export())
        #expect(try b.store.checkProjection() == [])
        #expect(try b.store.checkpoint() != nil)
    }

    @Test(arguments: [2, 3])
    func aSnapshotPageLostWhileThePageBeforeIsWrittenLeavesNoCheckpointAndTheNextSyncCompletes(
        page: Int
    )
        async throws
    {
        let (server, directory, a) = try await office()
        let admin = server.adminToken

        let b = try LocalReplica("site-b", in: directory)
        let failing = FaultTransport(
            server.transport(admin),
            before: { request, number in
                if request.path == Wire.Path.snapshot, number == page {
                    throw InjectedFault(description: "connection lost")
                }
            }
        )
        await #expect(throws: ClientError.self) {
            try await b.engine(failing, pageSize: 3).sync()
        }
        #expect(try b.store.checkpoint() == nil, "the checkpoint is saved with the last page only")
        #expect(try b.store.checkProjection() == [])

        let report = try await b.engine(server.transport(admin), pageSize: 3).sync()
        #expect(report.bootstrapped)
        #expect(try b.export() == a.export())
        #expect(try b.store.checkProjection() == [])
    }

    /// Syncs `b` with pages of 2 through a transport that cancels the sync as the answer to its snapshot page
    /// `number` arrives; requires the sync to fail. Returns the transport, which counts the requests.
    func syncCancelled(
        _ b: LocalReplica,
        on server: TestServer,
        asSnapshotPageArrives number: Int
    ) async throws -> FaultTransport {
        let sync = Mutex<Task<SyncReport, any Error>?>(nil)
        let transport = FaultTransport(
            server.transport(server.adminToken),
            after: { request, arrived, _ in
                if request.path == Wire.Path.snapshot, arrived == number { sync.withLock { $0?.cancel() } }
            }
        )
        let engine = b.engine(transport, pageSize: 2)
        let task = sync.withLock { task in
            let started = Task { try await engine.sync() }
            task = started
            return started
        }
        await #expect(throws: ClientError.self) { try await task.value }
        return transport
    }

    @Test func aBootstrapCancelledWritesNoPageItHadAskedForAheadAndSavesNoCheckpoint() async throws {
        let (server, directory, a) = try await office()
        let admin = server.adminToken

        // The sync is cancelled as the second page's answer arrives: pages asked for ahead of the first arrive
        // anyway, and none of them may be written.
        let b = try LocalReplica("site-b", in: directory)
        _ = try await syncCancelled(b, on: server, asSnapshotPageArrives: 2)
        let written = try await DatabaseQueue(path: b.store.path).read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record") ?? 0
        }
        #expect(written <= 2, "a page after the first was written after the sync was cancelled")
        #expect(try b.store.checkpoint() == nil, "the checkpoint is saved with the last page only")

        let report = try await b.engine(server.transport(admin), pageSize: 2).sync()
        #expect(report.bootstrapped)
        #expect(try b.export() == a.export())
        #expect(try b.store.checkProjection() == [])
    }

    /// A sync cancelled as its snapshot's first page arrives asks for no other page: the engine checks for
    /// cancellation once a page's answer is in, before it asks for the page that answer names.
    @Test func aBootstrapCancelledAsItsFirstPageArrivesAsksForNoOtherPage() async throws {
        let (server, directory, a) = try await office()
        let admin = server.adminToken
        let b = try LocalReplica("site-b", in: directory)
        let transport = try await syncCancelled(b, on: server, asSnapshotPageArrives: 1)
        #expect(transport.count(Wire.Path.snapshot) == 1, "a page was asked for after the sync was cancelled")
        #expect(try b.store.checkpoint() == nil)

        let report = try await b.engine(server.transport(admin), pageSize: 2).sync()
        #expect(report.bootstrapped)
        #expect(try b.export() == a.export())
    }
}
