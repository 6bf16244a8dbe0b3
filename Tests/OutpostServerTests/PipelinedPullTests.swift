import Foundation
import Logging
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A pull asks for the next page while it writes the one before (``SyncEngine/Options/pipelining``). A scoped
/// device's push stays before its pull (its edit is judged before the pull that takes its patient out of scope,
/// ScopeEndToEndTests); a replica of the whole practice pulls beside its push (PullBesidePushTests).
@Suite
struct PipelinedPullTests {
    /// A server of `backend` and a replica, `site-a`, that loaded the tiny practice and pushed it.
    func office(on backend: Backend) async throws -> (TestServer, TemporaryDirectory, LocalReplica) {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-pipelined-pull")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        return (server, directory, a)
    }

    /// ``office(on:)``, then `site-b` bootstrapped from it, and 12 notes `site-a` added and pushed after that: what
    /// `site-b` pulls next (pages of 5 make it three).
    func twelveNotesToPull(
        on backend: Backend
    ) async throws -> (TestServer, TemporaryDirectory, LocalReplica, LocalReplica) {
        let (server, directory, a) = try await office(on: backend)
        let b = try LocalReplica("site-b", in: directory)
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[1])
        for index in 0..<12 { try a.care.update([.append(patient, "notes", .string("Note to pull \(index)"))]) }
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        return (server, directory, a, b)
    }

    /// With the default options a new device asks for snapshot pages of 2,000 records (three such pages are in
    /// memory at once) and pull pages of the server's largest size, 5,000 changes (each page is a transaction and
    /// a round trip).
    @Test(arguments: Backend.all)
    func pullPagesAreTheServersLargestAndSnapshotPagesStaySmaller(backend: Backend) async throws {
        let (server, directory, a) = try await office(on: backend)
        let admin = server.adminToken

        let limits = Mutex<[String: Set<String>]>([:])
        let transport = FaultTransport(
            server.transport(admin),
            before: { request, _ in
                guard let limit = request.query.first(where: { $0.0 == "limit" })?.1 else { return }
                limits.withLock { _ = $0[request.path, default: []].insert(limit) }
            }
        )
        let b = try LocalReplica("site-b", in: directory)
        let engine = SyncEngine(store: b.store, transport: transport, logger: Logger(label: "test"))
        let report = try await engine.sync()
        #expect(report.bootstrapped)
        #expect(try b.export() == a.export())
        #expect(limits.withLock { $0[Wire.Path.snapshot] } == ["2000"])
        #expect(limits.withLock { $0[Wire.Path.changes] } == ["5000"])
    }

    /// Page 1 cannot be written until page 2 is asked for (another connection holds the store's write lock until
    /// then): a pull that asks for a page only after writing the one before fails on the store's busy timeout.
    @Test(arguments: Backend.all, SyncEngine.Encoding.allCases)
    func theNextPageIsAskedForWhileThisOneIsWritten(backend: Backend, encoding: SyncEngine.Encoding) async throws {
        let (server, directory, a, b) = try await twelveNotesToPull(on: backend)
        let admin = server.adminToken

        // The write lock, taken by a second connection to b's store once page 1 has arrived.
        let lock = try StoreWriteLock(path: b.store.path)
        let transport = lock.held(over: server.transport(admin), between: Wire.Path.changes)
        let report = try await b.engine(transport, pageSize: 5, encoding: encoding).sync()
        #expect(lock.wasReleased)
        #expect(report.pulled == 12)
        #expect(transport.count(Wire.Path.changes) == 3)
        #expect(try b.export() == a.export())
        #expect(try b.store.checkProjection() == [])
        withExtendedLifetime(directory) {}
    }

    /// A page sent but never written holds compaction back: the server counts a device as holding the lower of
    /// the checkpoints its last two pulls asked from, not the last one it sent. Here page 2's answer is lost
    /// (asked for while page 1 was written), compaction runs, and the device's next sync goes on from page 1's
    /// checkpoint instead of finding it expired and bootstrapping again.
    @Test(arguments: Backend.all)
    func aPageSentButNeverWrittenHoldsCompactionBack(backend: Backend) async throws {
        let (server, directory, a, b) = try await twelveNotesToPull(on: backend)
        let admin = server.adminToken

        let lost = FaultTransport(
            server.transport(admin),
            after: { request, number, _ in
                guard request.path == Wire.Path.changes, number == 2 else { return }
                throw InjectedFault(description: "connection lost: page 2's answer")
            }
        )
        await #expect(throws: (any Error).self) { try await b.engine(lost, pageSize: 5).sync() }
        let written = try #require(try b.store.checkpoint())

        let compacted = try await server.admin(["compact"])
        try #require(compacted.status == 0, "\(compacted)")
        let again = FaultTransport(server.transport(admin))
        let report = try await b.engine(again, pageSize: 5).sync()
        #expect(!report.bootstrapped)
        #expect(again.count(Wire.Path.snapshot) == 0)
        #expect(report.pulled == 7)
        #expect(try b.store.checkpoint() != written)
        #expect(try b.export() == a.export())
        withExtendedLifetime(directory) {}
    }
}
