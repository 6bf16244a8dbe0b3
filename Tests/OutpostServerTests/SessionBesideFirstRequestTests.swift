import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A replica that synced with a server before reads the session beside its first push or pull, with what the last
/// session said (kept in the store), instead of before it: a round trip less per sync on a slow link
/// (docs/sync.md, step 1). A first sync, a sync after the server or the token changed, and a sync with pipelining
/// off read the session first.
@Suite(.serialized)
struct SessionBesideFirstRequestTests {
    /// A server and a replica, `site-a`, that loaded the tiny practice and synced it.
    func office() async throws -> (TestServer, TemporaryDirectory, LocalReplica) {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-session")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let first = SessionOrder(server.transport(server.adminToken), holdingTheSession: false)
        _ = try await a.engine(first).sync()
        #expect(
            first.sentBeforeTheSession.isEmpty,
            "a first sync reads the session first: \(first.sentBeforeTheSession)"
        )
        return (server, directory, a)
    }

    /// The session's answer is held until another request is sent: a sync that read the session first would wait
    /// for it forever (the time limit ends it then: 10 minutes, as the other end-to-end tests, since a loaded CI
    /// machine runs a test of a second for more than one).
    @Test(.timeLimit(.minutes(10)), arguments: [1, 1_000])
    func aSyncAfterTheFirstSendsItsPushBeforeTheSessionIsAnswered(besidePushFrom: Int) async throws {
        let (server, directory, a) = try await office()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        _ = try a.care.update([.append(patient, "notes", .string("Seen at home"))])
        let b = try LocalReplica("site-b", in: directory)
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        _ = try b.care.update([.append(patient, "notes", .string("Called back"))])
        _ = try await b.engine(server.transport(server.adminToken)).sync()

        let transport = SessionOrder(server.transport(server.adminToken), holdingTheSession: true)
        let report = try await a.engine(transport, pullBesidePushFrom: besidePushFrom).sync()
        #expect(report.pushed == 1 && report.pulled == 1, "\(report)")
        #expect(transport.sentBeforeTheSession.contains(Wire.Path.push), "\(transport.sentBeforeTheSession)")
        #expect(transport.sessions == 1)
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        #expect(try a.export() == b.export())
        // It learnt the session all the same: the role it keeps is the token's.
        #expect(try a.store.setting(SyncEngine.roleSetting) == "admin")
    }

    @Test(.timeLimit(.minutes(10)))
    func aSyncWithNothingToPushSendsItsPullBeforeTheSessionIsAnswered() async throws {
        let (server, _, a) = try await office()
        let transport = SessionOrder(server.transport(server.adminToken), holdingTheSession: true)
        let report = try await a.engine(transport).sync()
        #expect(report.pushed == 0 && report.pulled == 0, "\(report)")
        #expect(transport.sentBeforeTheSession == [Wire.Path.changes], "\(transport.sentBeforeTheSession)")
    }

    @Test(.timeLimit(.minutes(10)))
    func aSyncAfterTheServerOrTheTokenChangedReadsTheSessionFirst() async throws {
        let (server, _, a) = try await office()
        // `outpost remote set`: the kept session is forgotten with the old server and token.
        try a.store.setRemote(Remote(url: server.url, token: server.adminToken))
        let transport = SessionOrder(server.transport(server.adminToken), holdingTheSession: false)
        _ = try await a.engine(transport).sync()
        #expect(transport.sentBeforeTheSession.isEmpty, "\(transport.sentBeforeTheSession)")
        // Kept again by that sync: the next one reads it beside its first request.
        let next = SessionOrder(server.transport(server.adminToken), holdingTheSession: true)
        _ = try await a.engine(next).sync()
        #expect(next.sentBeforeTheSession == [Wire.Path.changes], "\(next.sentBeforeTheSession)")
    }

    /// A token the server refuses (revoked, mistyped) fails the sync whichever request meets the refusal first.
    @Test func aRefusedTokenFailsTheSyncAndChangesNothing() async throws {
        let (server, _, a) = try await office()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        _ = try a.care.update([.append(patient, "notes", .string("Seen at home"))])
        let before = try a.store.status()
        let checkpoint = try a.store.checkpoint()
        let stored = try await server.feed(server.adminToken).count
        let wrong = SessionOrder(server.transport("otk_" + String(repeating: "0", count: 40)), holdingTheSession: false)
        await #expect(throws: ClientError.self) { try await a.engine(wrong).sync() }
        #expect(try a.store.status().pendingChanges == before.pendingChanges, "the outbox is kept")
        #expect(try a.store.checkpoint() == checkpoint)
        #expect(try await server.feed(server.adminToken).count == stored, "nothing was stored")
    }
}

/// Forwards every exchange to a real transport and notes which requests were sent before the session's answer
/// came back; with `holdingTheSession`, holds that answer until another request has been sent.
private final class SessionOrder: SyncTransport {
    let base: any SyncTransport
    let holdingTheSession: Bool
    private let state = Mutex<(answered: Bool, sessions: Int, before: [String])>((false, 0, []))
    private let sent = AsyncStream<Void>.makeStream()

    init(_ base: any SyncTransport, holdingTheSession: Bool) {
        self.base = base
        self.holdingTheSession = holdingTheSession
    }

    /// The paths sent before the first session's answer came back, in order.
    var sentBeforeTheSession: [String] { state.withLock { $0.before } }
    /// How many sessions were read.
    var sessions: Int { state.withLock { $0.sessions } }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        guard request.path == Wire.Path.session else {
            let early = state.withLock { state in
                if !state.answered { state.before.append(request.path) }
                return !state.answered
            }
            if early { sent.continuation.yield() }
            return try await base.send(request)
        }
        let response = try await base.send(request)
        let first = state.withLock { state in
            state.sessions += 1
            return state.sessions == 1
        }
        if first && holdingTheSession { for await _ in sent.stream { break } }
        state.withLock { $0.answered = true }
        return response
    }
}
