import Foundation
import Logging
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A replica of the whole practice with a checkpoint pulls beside its push; a scoped one pushes first
/// (``SyncEngine/sync()``, docs/sync.md "The client's sync, step by step").
@Suite
struct PullBesidePushTests {
    /// Forwards exchanges to a real transport and writes down their order. With `holdingPushes`, a push's
    /// answer is handed back only once a pull has been answered: an engine that pulls only after its push waits
    /// until the test's time limit cancels it, and fails.
    final class OrderTransport: SyncTransport {
        struct State {
            var events: [String] = []
            var pullAnswered = false
            var waiting: [CheckedContinuation<Void, Never>] = []
        }

        let base: any SyncTransport
        let holdingPushes: Bool
        /// Whether the first pull is answered `410 checkpoint_expired` by this transport, not the server.
        let expiringFirstPull: Bool
        let state = Mutex(State())

        /// The error body of a checkpoint the server no longer holds.
        static let expired = """
            {"error":{"code":"checkpoint_expired","field":"since","message":"Checkpoint expired.","requestID":"r-1"}}
            """

        init(_ base: any SyncTransport, holdingPushes: Bool, expiringFirstPull: Bool = false) {
            self.base = base
            self.holdingPushes = holdingPushes
            self.expiringFirstPull = expiringFirstPull
        }

        var events: [String] { state.withLock { $0.events } }

        func send(_ request: TransportRequest) async throws -> TransportResponse {
            switch request.path {
            case Wire.Path.changes:
                let first = state.withLock { state in
                    state.events.append("pull asked")
                    return !state.events.contains("pull answered")
                }
                let response =
                    expiringFirstPull && first
                    ? TransportResponse(status: 410, body: Data(Self.expired.utf8), contentType: Wire.contentType)
                    : try await base.send(request)
                let waiting = state.withLock { state in
                    state.events.append("pull answered")
                    state.pullAnswered = true
                    defer { state.waiting = [] }
                    return state.waiting
                }
                for continuation in waiting { continuation.resume() }
                return response
            case Wire.Path.push:
                state.withLock { $0.events.append("push asked") }
                let response = try await base.send(request)
                if holdingPushes {
                    // Cancelled (the test's time limit), it lets the answer go: the test fails instead of hanging.
                    await withTaskCancellationHandler {
                        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                            let now = state.withLock { state in
                                if state.pullAnswered || Task.isCancelled { return true }
                                state.waiting.append(continuation)
                                return false
                            }
                            if now { continuation.resume() }
                        }
                    } onCancel: {
                        let waiting = state.withLock { state in
                            defer { state.waiting = [] }
                            return state.waiting
                        }
                        for continuation in waiting { continuation.resume() }
                    }
                }
                state.withLock { $0.events.append("push answered") }
                return response
            default:
                return try await base.send(request)
            }
        }
    }

    /// The tiny practice on a server of `backend`, pushed by `site-a` (an administrator), and `site-b`
    /// bootstrapped from it with `token` (the administrator's when `nil`); then `site-a` adds 12 notes and
    /// pushes them, and `site-b` adds 7 notes of its own, not yet pushed.
    func twoSites(
        on backend: Backend,
        token: (TestServer) async throws -> String? = { _ in nil }
    ) async throws -> (TestServer, TemporaryDirectory, LocalReplica, LocalReplica, String) {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-pull-beside-push")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let bToken = try await token(server) ?? server.adminToken
        let b = try LocalReplica("site-b", in: directory)
        _ = try await b.engine(server.transport(bToken)).sync()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        for index in 0..<12 { try a.care.update([.append(patient, "notes", .string("From A \(index)"))]) }
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        for index in 0..<7 { try b.care.update([.append(patient, "notes", .string("From B \(index)"))]) }
        return (server, directory, a, b, bToken)
    }

    /// Site B's sync through `transport`, in batches and pages of 2: it pushes its 7 notes and pulls A's 12. Returns
    /// its report and the order of its exchanges.
    func syncSiteB(
        _ b: LocalReplica,
        through transport: OrderTransport,
        pullBesidePushFrom: Int = SyncEngine.Options().pullBesidePushFrom
    ) async throws -> (SyncReport, [String]) {
        let engine = b.engine(transport, pushBatch: 2, pageSize: 2, pullBesidePushFrom: pullBesidePushFrom)
        let report = try await engine.sync()
        #expect(report.pushed == 7)
        #expect(report.pulled == 12)
        return (report, transport.events)
    }

    /// Whether every push was answered before the first pull was asked for.
    func pushedBeforePulling(_ events: [String]) -> Bool {
        guard let lastAnswer = events.lastIndex(of: "push answered"),
            let firstPull = events.firstIndex(of: "pull asked")
        else { return false }
        return lastAnswer < firstPull
    }

    /// Whether a pull was answered before the first push was: the pull ran beside the push.
    func pulledWhilePushing(_ events: [String]) -> Bool {
        guard let pulled = events.firstIndex(of: "pull answered"), let pushed = events.firstIndex(of: "push answered")
        else { return false }
        return pulled < pushed
    }

    /// Site A syncs after site B; both then hold the same records.
    func expectConverged(_ a: LocalReplica, _ b: LocalReplica, on server: TestServer) async throws {
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        #expect(try a.export() == b.export())
    }

    /// The server's device listing entry of `replica`.
    func device(_ server: TestServer, _ replica: String) async throws -> [String: Any] {
        let result = try await server.admin(["devices", "list", "--json", "--all"])
        try #require(result.status == 0, "\(result)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        return try #require(rows.first { $0["replica"] as? String == replica })
    }

    /// Site B's pull is asked for while its push waits for its answer (pages and batches of 2, so both take
    /// several exchanges); both sites end with the same records, and the server lists site B as caught up,
    /// with an empty outbox: the last pull came after the push.
    @Test(.timeLimit(.minutes(10)), arguments: Backend.all)
    func aWholePracticeReplicaPullsWhileItsPushIsStored(backend: Backend) async throws {
        let (server, directory, a, b, token) = try await twoSites(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let transport = OrderTransport(server.transport(token), holdingPushes: true)
        let (report, events) = try await syncSiteB(b, through: transport, pullBesidePushFrom: 7)
        #expect(report.pending == 0)
        #expect(pulledWhilePushing(events), "\(events)")
        #expect(events.last == "pull answered", "\(events)")

        try await expectConverged(a, b, on: server)
        let entry = try await device(server, "site-b")
        #expect(entry["outbox"] as? Int == 0, "\(entry)")
        #expect(entry["behindChanges"] as? Int == 0, "\(entry)")
    }

    /// An outbox smaller than ``SyncEngine/Options/pullBesidePushFrom`` (7 changes against 1,000) is pushed
    /// before the pull, as a push stored in about a round trip gains nothing from a pull beside it: no pull
    /// follows it either.
    @Test(arguments: Backend.all)
    func aSmallOutboxIsPushedBeforeThePull(backend: Backend) async throws {
        let (server, directory, a, b, token) = try await twoSites(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let (_, events) = try await syncSiteB(b, through: OrderTransport(server.transport(token), holdingPushes: false))
        #expect(pushedBeforePulling(events), "\(events)")
        #expect(events.filter { $0 == "pull asked" }.count == 6, "12 changes in pages of 2: \(events)")
        try await expectConverged(a, b, on: server)
    }

    /// A purge of the patient whose notes site B pushes, announced to the pull beside that push: the pull leaves
    /// the removal to the pull after the push, which erases the patient with the notes the push delivered. Applied
    /// beside the push, it would have kept the notes' change rows, not yet acknowledged, on the device.
    @Test(.timeLimit(.minutes(10)), arguments: Backend.all)
    func aPurgeAnnouncedBesideAPushErasesThePushedEditsToo(backend: Backend) async throws {
        let (server, directory, a, b, token) = try await twoSites(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let patient = TinyPractice.patients[0]
        let purged = try await server.admin(["purge", "patient", patient, "--reason", "court order 2026-118"])
        try #require(purged.status == 0, "\(purged)")
        let transport = OrderTransport(server.transport(token), holdingPushes: true)
        let engine = b.engine(transport, pushBatch: 2, pageSize: 2, pullBesidePushFrom: 7)
        let report = try await engine.sync()
        #expect(report.purged == 1)
        #expect(report.pending == 0)
        #expect(pulledWhilePushing(transport.events), "\(transport.events)")
        #expect(try b.care.record(RecordRef(type: "patient", id: patient)) == nil)
        #expect(try b.store.changes(owner: patient).isEmpty)
        try await expectConverged(a, b, on: server)
    }

    /// The pull beside site B's push is told its checkpoint expired: it stops, and the pull after the push asks
    /// again from the same checkpoint (which the server holds) instead of bootstrapping beside the push.
    @Test(.timeLimit(.minutes(10)), arguments: Backend.all)
    func anExpiredCheckpointBesideAPushIsLeftToThePullAfterIt(backend: Backend) async throws {
        let (server, directory, a, b, token) = try await twoSites(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let transport = OrderTransport(server.transport(token), holdingPushes: true, expiringFirstPull: true)
        let (report, events) = try await syncSiteB(b, through: transport, pullBesidePushFrom: 7)
        #expect(!report.bootstrapped)
        #expect(report.pending == 0)
        let lastPush = try #require(events.lastIndex(of: "push answered"))
        #expect(events.dropFirst(lastPush).contains("pull answered"), "pulled after the push: \(events)")
        try await expectConverged(a, b, on: server)
    }

    /// A token scoped to the team: every push is answered before the first pull is asked for, so an edit made
    /// while a patient was in scope reaches the server before a pull could take the patient away.
    @Test(arguments: Backend.all)
    func aScopedReplicaPushesBeforeItPulls(backend: Backend) async throws {
        let (server, directory, a, b, token) = try await twoSites(on: backend) { server in
            try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
        }
        defer { withExtendedLifetime(directory) {} }
        let (_, events) = try await syncSiteB(
            b,
            through: OrderTransport(server.transport(token), holdingPushes: false),
            pullBesidePushFrom: 1
        )
        #expect(pushedBeforePulling(events), "\(events)")
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        let notes = try #require(try a.care.record(patient)?.fields["notes"])
        #expect(try b.care.record(patient)?.fields["notes"] == notes)
        guard case .log(let entries) = notes else {
            Issue.record("notes is not a log")
            return
        }
        #expect(entries.count >= 19)
    }
}
