import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A snapshot whose checkpoint the server can no longer serve between two of its pages (a compaction raised the
/// floor past it) is started again by the device, as the protocol says (`410 checkpoint_expired` on a cursor),
/// instead of failing the sync.
struct SnapshotRestartTests {
    /// Forwards every exchange to a real transport, after an asynchronous hook that sees the request and its
    /// number among those to the same path (from 1).
    final class HookTransport: SyncTransport {
        let base: any SyncTransport
        let hook: @Sendable (TransportRequest, Int) async throws -> Void
        let statuses = Mutex<[(after: Bool, status: Int)]>([])
        private let counts = Mutex<[String: Int]>([:])

        init(_ base: any SyncTransport, hook: @escaping @Sendable (TransportRequest, Int) async throws -> Void) {
            self.base = base
            self.hook = hook
        }

        func send(_ request: TransportRequest) async throws -> TransportResponse {
            let number = counts.withLock { counts in
                counts[request.path, default: 0] += 1
                return counts[request.path, default: 0]
            }
            try await hook(request, number)
            let response = try await base.send(request)
            if request.path == Wire.Path.snapshot {
                let after = request.query.contains { $0.0 == "after" }
                statuses.withLock { $0.append((after, response.status)) }
            }
            return response
        }
    }

    @Test(.timeLimit(.minutes(10)), arguments: Backend.all)
    func aCompactionBetweenTwoPagesStartsTheSnapshotAgain(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-restart")
        let admin = server.adminToken
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(admin)).sync()
        let b = try LocalReplica("site-b", in: directory)
        _ = try await b.engine(server.transport(admin)).sync()

        // Before C asks for its second page: an edit, every device syncing past it, and a compaction, so that
        // the floor passes the checkpoint of C's first page.
        let compacted = Mutex<RunResult?>(nil)
        let (toA, toB) = (server.transport(admin), server.transport(admin))
        let (compact, folder) = (["compact"] + server.backendArguments, server.directory.url)
        let transport = HookTransport(server.transport(admin)) { request, number in
            guard request.path == Wire.Path.snapshot, number == 2 else { return }
            try a.care.store.commit(
                [.assign(RecordRef(type: "patient", id: TinyPractice.patients[0]), "phone", .string("(406) 555-0144"))],
                author: TinyPractice.person,
                site: nil
            )
            for _ in 0..<3 {
                _ = try await a.engine(toA).sync()
                _ = try await b.engine(toB).sync()
            }
            let result = try await runProcess(Built.server, compact, in: folder)
            compacted.withLock { $0 = result }
        }
        let c = try LocalReplica("site-c", in: directory)
        let report = try await c.engine(transport, pageSize: 3).sync()
        let result = try #require(compacted.withLock { $0 })
        try #require(result.status == 0, "\(result)")
        let asked = transport.statuses.withLock { $0 }
        #expect(asked.contains { $0.after && $0.status == 410 }, "a cursor past the floor: \(asked)")
        #expect(asked.filter { !$0.after }.count == 2, "the snapshot started again: \(asked)")
        #expect(report.bootstrapped)
        _ = try await b.engine(server.transport(admin)).sync()
        #expect(try c.export() == a.export())
        #expect(try c.export() == b.export())
        #expect(try c.store.checkProjection() == [])
    }
}
