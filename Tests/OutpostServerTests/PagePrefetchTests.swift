import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

@testable import OutpostServer

/// Snapshot pages built ahead: each is handed out once, only to a request asking for exactly what it was built
/// for, and none outlives its age or the count kept; against the real server, a bootstrap's pages after the
/// first are built ahead and a revoked token gets none.
struct PagePrefetchTests {
    func key(
        token id: String = "tok_a",
        scope: Scope = .practice,
        after: String? = "tsk_2",
        layout: UInt8? = 2
    ) -> PagePrefetch.Key {
        PagePrefetch.Key(
            token: TokenEntry(
                id: id,
                practice: TinyPractice.practice,
                role: .clinician,
                scope: scope,
                label: "test",
                createdAtMillis: 0
            ),
            replica: ReplicaID("laptop"),
            checkpoint: after == nil ? nil : 40,
            after: after.map { RecordRef(type: "task", id: $0) },
            limit: 3,
            sparingOwn: false,
            layout: layout,
            gzip: true
        )
    }

    func page(_ byte: UInt8) -> PagePrefetch.Page {
        PagePrefetch.Page(body: [byte], contentType: BinaryWire.contentType, gzip: false, checkpoint: 0, next: nil)
    }

    @Test func aPageBuiltAheadIsHandedOnceToARequestForExactlyWhatItWasBuiltFor() async throws {
        let prefetch = PagePrefetch()
        let builds = Atomic<Int>(0)
        prefetch.start(key(), now: 0) {
            builds.add(1, ordering: .relaxed)
            return page(7)
        }
        // Started again for the same request: the page being built is kept, not built twice.
        prefetch.start(key(), now: 1) {
            builds.add(1, ordering: .relaxed)
            return page(8)
        }
        for other in [
            key(token: "tok_b"), key(scope: Scope(teams: ["team_b"])), key(after: "tsk_3"), key(after: nil),
            key(layout: nil), key(layout: 1),
        ] {
            #expect(prefetch.take(other, now: 2) == nil, "\(other) is another request")
        }
        let taken = try #require(prefetch.take(key(), now: 2))
        #expect(try await taken.value.body == [7])
        #expect(builds.load(ordering: .relaxed) == 1)
        #expect(prefetch.take(key(), now: 3) == nil, "handed out once")
        #expect(prefetch.count == 0)
    }

    @Test func aPageNotAskedForInTimeIsDroppedAndPastTheCountTheOldestGoesFirst() async throws {
        let prefetch = PagePrefetch(policy: .init(maxPages: 2, maxAgeMillis: 100))
        prefetch.start(key(after: "tsk_1"), now: 0) { page(1) }
        prefetch.start(key(after: "tsk_2"), now: 10) { page(2) }
        prefetch.start(key(after: "tsk_3"), now: 20) { page(3) }
        #expect(prefetch.count == 2)
        #expect(prefetch.take(key(after: "tsk_1"), now: 30) == nil, "the oldest went first")
        #expect(try await prefetch.take(key(after: "tsk_2"), now: 30)?.value.body == [2])
        #expect(prefetch.take(key(after: "tsk_3"), now: 120) == nil, "100 ms old: too old to hand out")

        // A page started when the others are too old takes their place.
        prefetch.start(key(after: "tsk_4"), now: 200) { page(4) }
        prefetch.start(key(after: "tsk_5"), now: 350) { page(5) }
        #expect(prefetch.count == 1, "tsk_4 was 150 ms old when tsk_5 started")
        #expect(try await prefetch.take(key(after: "tsk_5"), now: 400)?.value.body == [5])
    }

    /// Bootstraps `replica` in pages of `pageSize` and returns how many snapshot pages it asked for.
    func bootstrap(_ replica: LocalReplica, _ transport: HTTPTransport, pageSize: Int) async throws -> Int {
        let pages = Mutex(0)
        let counting = FaultTransport(
            transport,
            before: { request, _ in
                if request.path == Wire.Path.snapshot { pages.withLock { $0 += 1 } }
            }
        )
        #expect(try await replica.engine(counting, pageSize: pageSize).sync().bootstrapped)
        return pages.withLock { $0 }
    }

    /// A server whose pages built ahead wait an hour for their request: the counts below do not depend on how
    /// busy the machine is (a test run starts every suite at once; at 10 s, a starved device's request came late).
    func patientServer() async throws -> TestServer {
        try await TestServer(arguments: ["--page-ahead-wait", "3600"])
    }

    @Test func aBootstrapsPagesAfterTheFirstAreBuiltAheadAndTheDeviceHoldsThePracticeAsItIs() async throws {
        let server = try await patientServer()
        let directory = try TemporaryDirectory("outpost-prefetch")
        let admin = server.adminToken
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(admin)).sync()
        let before = try await server.snapshotPages(built: "ahead")

        let b = try LocalReplica("site-b", in: directory)
        let asked = try await bootstrap(b, server.transport(admin), pageSize: 3)
        #expect(asked > 2, "several pages of 3 records")
        #expect(try await server.snapshotPages(built: "ahead") - before == asked - 1)
        #expect(try b.export() == a.export())
        #expect(try b.store.checkProjection() == [])
    }

    @Test func aScopedBootstrapInPagesBuiltAheadHoldsWhatOnePageBuiltOnRequestHolds() async throws {
        let server = try await patientServer()
        let directory = try TemporaryDirectory("outpost-prefetch")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        // A second team holding one patient, so the nurse's scope is not the whole practice.
        _ = try TinyPractice.addSecondTeam(in: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let nurse = try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
        let before = try await server.snapshotPages(built: "ahead")

        let paged = try LocalReplica("paged", in: directory)
        let asked = try await bootstrap(paged, server.transport(nurse), pageSize: 2)
        #expect(asked > 2, "several pages of 2 records")
        #expect(try await server.snapshotPages(built: "ahead") - before == asked - 1)

        let whole = try LocalReplica("whole", in: directory)
        #expect(try await bootstrap(whole, server.transport(nurse), pageSize: 2_000) == 1)
        #expect(try await server.snapshotPages(built: "ahead") - before == asked - 1, "one page: none ahead")
        #expect(try paged.export() == whole.export())
        #expect(try paged.export() != a.export(), "the scope holds part of the practice")
        #expect(try paged.care.records(.patient).map(\.ref.id).sorted() == TinyPractice.patients.prefix(2).sorted())
        #expect(try paged.store.checkProjection() == [])
    }

    @Test func aPageBuiltAheadIsNotHandedToARevokedTokenAndAnotherTokenGetsItBuiltAnew() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-prefetch")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let laptop = try await server.issueTokenEntry(role: "clinician")
        let desk = try await server.issueToken(role: "clinician")
        let binary = ["Accept": BinaryWire.accept(layout: BinaryWire.latestLayout)]

        func snapshot(_ token: String, after: String?) async throws -> RawAnswer {
            let query = "/v1/snapshot?limit=3" + (after.map { "&after=\($0)" } ?? "")
            let headers = binary.merging(["Authorization": "Bearer \(token)"]) { $1 }
            return try await server.raw("GET", query, headers: headers)
        }
        let first = try await snapshot(laptop.secret, after: nil)
        try #require(first.status == 200)
        let next = try #require(try SnapshotPage(binary: Array(first.body)).next)
        // Sending that page started the next one for the laptop (the bootstrap test above counts such pages).
        let ahead = try await server.snapshotPages(built: "ahead")
        try #require(try await server.admin(["token", "revoke", laptop.id]).status == 0)

        let refused = try await snapshot(laptop.secret, after: next)
        #expect(refused.status == 401)
        #expect(!String(decoding: refused.body, as: UTF8.self).contains("tsk_"), "no record in a refusal")
        let other = try await snapshot(desk, after: next)
        #expect(other.status == 200)
        let records = try SnapshotPage(binary: Array(other.body)).records
        #expect(records.count == 3)
        #expect(try await server.snapshotPages(built: "ahead") == ahead, "no page was handed out built ahead")
    }
}
