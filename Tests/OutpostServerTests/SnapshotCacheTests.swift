import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

@testable import OutpostServer

/// Whole-practice snapshot pages kept for the next device: sent again only while the store serves their
/// checkpoint as it did (same epoch and floor, no purge after it, the feed not too far on); against the real
/// server, a second new device is sent the first one's pages and converges with what changed since, a purge
/// stops them at once, and a scoped token never gets them.
struct SnapshotCacheTests {
    let form = SnapshotCache.ChainKey(practice: TinyPractice.practice, limit: 3, layout: 3, gzip: true)
    let facts = FeedFacts(epoch: "e1", head: 40, floor: 0, lastPurge: 0)

    func page(_ bytes: [UInt8], checkpoint: Int64 = 40, next: String? = nil) -> PagePrefetch.Page {
        PagePrefetch.Page(
            body: bytes,
            contentType: BinaryWire.contentType,
            gzip: false,
            checkpoint: checkpoint,
            next: next.map { (checkpoint, RecordRef(type: "task", id: $0)) }
        )
    }

    func task(_ id: String) -> RecordRef { RecordRef(type: "task", id: id) }

    @Test func aChainIsSentWhileTheStoreServesItsCheckpointAsItDid() {
        func servable(_ now: FeedFacts, first: Bool = true, lag: Int64 = 100) -> Bool {
            SnapshotCache.isServable(
                checkpoint: 40,
                epoch: "e1",
                floor: 0,
                now: now,
                first: first,
                policy: .init(maxLag: lag)
            )
        }
        #expect(servable(facts))
        #expect(servable(FeedFacts(epoch: "e1", head: 140, floor: 0, lastPurge: 0)), "100 positions on")
        #expect(!servable(FeedFacts(epoch: "e1", head: 141, floor: 0, lastPurge: 0)), "too far on for a new device")
        #expect(servable(FeedFacts(epoch: "e1", head: 141, floor: 0, lastPurge: 0), first: false), "mid-snapshot")
        #expect(!servable(FeedFacts(epoch: "e2", head: 40, floor: 0, lastPurge: 0), first: false), "a restore")
        #expect(!servable(FeedFacts(epoch: "e1", head: 40, floor: 12, lastPurge: 0), first: false), "a compaction")
        #expect(!servable(FeedFacts(epoch: "e1", head: 41, floor: 0, lastPurge: 41), first: false), "a purge after")
        #expect(servable(FeedFacts(epoch: "e1", head: 41, floor: 0, lastPurge: 40)), "a purge before is in the pages")
        #expect(!servable(FeedFacts(epoch: "e1", head: 39, floor: 0, lastPurge: 0), first: false), "a feed behind it")
        // A floor above the checkpoint, the same floor as when built (a chain built from a store whose floor was
        // already past it cannot be, but the rule does not rely on it).
        #expect(
            !SnapshotCache.isServable(
                checkpoint: 40,
                epoch: "e1",
                floor: 50,
                now: FeedFacts(epoch: "e1", head: 60, floor: 50, lastPurge: 0),
                first: false,
                policy: .init()
            )
        )
    }

    @Test func aFirstPageStartsAChainLaterPagesOfItsCheckpointJoinItAndANewFirstPageReplacesIt() {
        let cache = SnapshotCache()
        #expect(cache.page(form, checkpoint: nil, after: nil, facts: facts) == nil)
        cache.keep(page([1], next: "t1"), key: form, checkpoint: 40, after: nil, built: facts)
        cache.keep(page([2]), key: form, checkpoint: 40, after: task("t1"), built: facts)
        // A page of another checkpoint (an older device's walk) does not join.
        cache.keep(page([9], checkpoint: 30), key: form, checkpoint: 30, after: task("t2"), built: facts)
        #expect(cache.page(form, checkpoint: nil, after: nil, facts: facts)?.body == [1])
        #expect(cache.page(form, checkpoint: 40, after: task("t1"), facts: facts)?.body == [2])
        #expect(cache.page(form, checkpoint: 30, after: task("t2"), facts: facts) == nil)
        #expect(cache.page(form, checkpoint: 40, after: task("t2"), facts: facts) == nil, "not kept")
        #expect(cache.keeps(form, checkpoint: 40, after: task("t1")))
        #expect(!cache.keeps(form, checkpoint: 30, after: task("t1")))
        for other in [
            SnapshotCache.ChainKey(practice: "pra_other", limit: 3, layout: 3, gzip: true),
            SnapshotCache.ChainKey(practice: TinyPractice.practice, limit: 4, layout: 3, gzip: true),
            SnapshotCache.ChainKey(practice: TinyPractice.practice, limit: 3, layout: 2, gzip: true),
            SnapshotCache.ChainKey(practice: TinyPractice.practice, limit: 3, layout: nil, gzip: true),
            SnapshotCache.ChainKey(practice: TinyPractice.practice, limit: 3, layout: 3, gzip: false),
        ] {
            #expect(cache.page(other, checkpoint: nil, after: nil, facts: facts) == nil, "\(other)")
        }
        #expect(cache.bytes == 2)

        // A new first page (a checkpoint further on) starts a new chain: the old one's pages go.
        cache.keep(page([3], checkpoint: 50), key: form, checkpoint: 50, after: nil, built: facts)
        #expect(cache.page(form, checkpoint: 40, after: task("t1"), facts: facts) == nil)
        let later = FeedFacts(epoch: "e1", head: 50, floor: 0, lastPurge: 0)
        #expect(cache.page(form, checkpoint: nil, after: nil, facts: later)?.body == [3])
        #expect(cache.bytes == 1)
    }

    @Test func aChainThatMayNotBeSentIsDroppedAndNotSentAgain() {
        let cache = SnapshotCache()
        cache.keep(page([1], next: "t1"), key: form, checkpoint: 40, after: nil, built: facts)
        cache.keep(page([2]), key: form, checkpoint: 40, after: task("t1"), built: facts)
        let purged = FeedFacts(epoch: "e1", head: 41, floor: 0, lastPurge: 41)
        #expect(cache.page(form, checkpoint: 40, after: task("t1"), facts: purged) == nil)
        #expect(cache.bytes == 0, "dropped")
        #expect(cache.page(form, checkpoint: 40, after: task("t1"), facts: facts) == nil)
    }

    @Test func pastItsBytesTheChainsUsedLongestAgoGoFirstAndAChainAlonePastThemKeepsTheOthers() {
        let cache = SnapshotCache(policy: .init(maxBytes: 10))
        let other = SnapshotCache.ChainKey(practice: "pra_other", limit: 3, layout: 3, gzip: true)
        let third = SnapshotCache.ChainKey(practice: "pra_third", limit: 3, layout: 3, gzip: true)
        cache.keep(page([1, 1, 1, 1]), key: form, checkpoint: 40, after: nil, built: facts)
        cache.keep(page([2, 2, 2, 2]), key: other, checkpoint: 40, after: nil, built: facts)
        // The first chain is used again: the other one is now the one used longest ago.
        #expect(cache.page(form, checkpoint: nil, after: nil, facts: facts) != nil)
        cache.keep(page([3, 3, 3, 3]), key: third, checkpoint: 40, after: nil, built: facts)
        #expect(cache.bytes == 8)
        #expect(cache.page(other, checkpoint: nil, after: nil, facts: facts) == nil)
        #expect(cache.page(form, checkpoint: nil, after: nil, facts: facts) != nil)
        #expect(cache.page(third, checkpoint: nil, after: nil, facts: facts) != nil)
        // A page larger than the bound is not kept, and drops nothing.
        cache.keep(page(Array(repeating: 4, count: 11)), key: other, checkpoint: 40, after: nil, built: facts)
        #expect(cache.page(other, checkpoint: nil, after: nil, facts: facts) == nil)
        #expect(cache.bytes == 8)
        // A chain that would alone pass the bound keeps the pages before the one that would take it past, and the
        // other chains stay (one large practice does not empty the cache).
        let fresh = FeedFacts(epoch: "e1", head: 50, floor: 0, lastPurge: 0)
        cache.keep(page([5, 5], checkpoint: 50, next: "t1"), key: form, checkpoint: 50, after: nil, built: fresh)
        cache.keep(page([6, 6, 6, 6], checkpoint: 50), key: form, checkpoint: 50, after: task("t1"), built: fresh)
        cache.keep(page([7, 7, 7, 7, 7], checkpoint: 50), key: form, checkpoint: 50, after: task("t2"), built: fresh)
        #expect(cache.page(form, checkpoint: 50, after: task("t1"), facts: fresh)?.body.count == 4)
        #expect(cache.page(form, checkpoint: 50, after: task("t2"), facts: fresh) == nil)
        #expect(cache.page(third, checkpoint: nil, after: nil, facts: fresh) != nil, "not dropped for it")
        #expect(cache.bytes == 10)
    }

    @Test func aFirstPageOfAnEarlierCheckpointDoesNotReplaceALaterChainOfTheSameEpoch() {
        let cache = SnapshotCache()
        let later = FeedFacts(epoch: "e1", head: 50, floor: 0, lastPurge: 0)
        cache.keep(page([5], checkpoint: 50), key: form, checkpoint: 50, after: nil, built: later)
        // Two new devices at once: the one whose first page was read earlier keeps nothing in its place.
        cache.keep(page([4], checkpoint: 40), key: form, checkpoint: 40, after: nil, built: facts)
        #expect(cache.page(form, checkpoint: nil, after: nil, facts: later)?.body == [5])
        // Another epoch (a restore) replaces it whatever the checkpoint.
        let restored = FeedFacts(epoch: "e2", head: 30, floor: 0, lastPurge: 0)
        cache.keep(page([3], checkpoint: 30), key: form, checkpoint: 30, after: nil, built: restored)
        #expect(cache.page(form, checkpoint: nil, after: nil, facts: restored)?.body == [3])
    }

    // MARK: - Against the real server

    /// The snapshot pages the server built (on request or ahead), from its `/metrics`.
    func builtPages(_ server: TestServer) async throws -> Int {
        try await server.snapshotPages(built: "on_request") + server.snapshotPages(built: "ahead")
    }

    /// A server on `backend` holding the tiny practice, which site A imported (with a second team holding one
    /// patient, when asked) and pushed.
    func practice(
        on backend: Backend,
        secondTeam: Bool = false
    ) async throws -> (TestServer, TemporaryDirectory, LocalReplica) {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-kept")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        if secondTeam { _ = try TinyPractice.addSecondTeam(in: a.care) }
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        return (server, directory, a)
    }

    /// Bootstraps `replica` in pages of 3 and returns the records of every snapshot page it was sent.
    func bootstrap(_ replica: LocalReplica, _ transport: HTTPTransport) async throws -> [RecordRef] {
        let sent = Mutex<[RecordRef]>([])
        let reading = FaultTransport(
            transport,
            after: { request, _, response in
                guard request.path == Wire.Path.snapshot, response.status == 200 else { return }
                var body = [UInt8](response.body)
                if response.contentEncoding == "gzip" { body = try WireCompression.decompress(body, limit: 1 << 26) }
                let page = try SnapshotPage(binary: body)
                sent.withLock { $0 += page.records.map(\.record) }
            }
        )
        #expect(try await replica.engine(reading, pageSize: 3).sync().bootstrapped)
        return sent.withLock { $0 }
    }

    @Test(.timeLimit(.minutes(10)), arguments: Backend.all)
    func aSecondNewDeviceIsSentTheFirstOnesPagesAndConvergesWithWhatChangedSince(backend: Backend) async throws {
        let (server, directory, a) = try await practice(on: backend)
        let admin = server.adminToken

        let b = try LocalReplica("site-b", in: directory)
        let before = try await builtPages(server)
        let first = try await bootstrap(b, server.transport(admin))
        let pages = try await builtPages(server) - before
        #expect(first.count > 6 && pages > 2, "several pages of 3 records")
        #expect(try await server.snapshotPages(built: "cached") == 0, "the first device's pages are built")

        // A edits a patient after B's snapshot: C is sent B's pages, and the edit in the pull after them.
        try a.care.store.commit(
            [.assign(RecordRef(type: "patient", id: TinyPractice.patients[1]), "phone", .string("(406) 555-0142"))],
            author: TinyPractice.person,
            site: nil
        )
        _ = try await a.engine(server.transport(admin)).sync()
        let c = try LocalReplica("site-c", in: directory)
        let second = try await bootstrap(c, server.transport(admin))
        #expect(second == first)
        #expect(try await server.snapshotPages(built: "cached") == pages, "every page kept")
        #expect(try await builtPages(server) - before == pages, "none built again")
        _ = try await b.engine(server.transport(admin)).sync()
        #expect(try c.export() == a.export())
        #expect(try b.export() == a.export())
        #expect(try c.store.checkProjection() == [])
    }

    @Test(.timeLimit(.minutes(10)), arguments: Backend.all)
    func aPurgeStopsThePagesKeptBeforeItAndAScopedTokenIsNeverSentThem(backend: Backend) async throws {
        let (server, directory, _) = try await practice(on: backend, secondTeam: true)
        let admin = server.adminToken
        let b = try LocalReplica("site-b", in: directory)
        let all = try await bootstrap(b, server.transport(admin))
        let patient = TinyPractice.patients[0]
        #expect(all.contains(RecordRef(type: "patient", id: patient)))

        // A nurse's scoped laptop: its own walk, none of the kept whole-practice pages.
        let nurse = try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
        let scoped = try LocalReplica("nurse", in: directory)
        let walked = try await bootstrap(scoped, server.transport(nurse))
        #expect(walked.count < all.count)
        #expect(try await server.snapshotPages(built: "cached") == 0)

        // The purge (another process: the administration command) stops B's pages at once.
        let purged = try await server.admin(["purge", "patient", patient, "--reason", "court order 2026-119"])
        try #require(purged.status == 0, "\(purged)")
        let d = try LocalReplica("site-d", in: directory)
        let before = try await builtPages(server)
        let after = try await bootstrap(d, server.transport(admin))
        let pages = try await builtPages(server) - before
        #expect(try await server.snapshotPages(built: "cached") == 0)
        #expect(!after.contains(RecordRef(type: "patient", id: patient)), "no page sent the purged patient")
        #expect(!after.contains(RecordRef(type: "task", id: TinyPractice.task)), "nor the task it owned")
        _ = try await b.engine(server.transport(admin)).sync()
        #expect(try d.export() == b.export())

        // The pages D was sent are kept in their turn: E is sent them.
        let e = try LocalReplica("site-e", in: directory)
        #expect(try await bootstrap(e, server.transport(admin)) == after)
        #expect(try await server.snapshotPages(built: "cached") == pages)
        #expect(try e.export() == b.export())
    }

    @Test(.timeLimit(.minutes(10)), arguments: Backend.all)
    func aCompactionThatRaisesTheFloorStopsThePagesKeptBelowIt(backend: Backend) async throws {
        let (server, directory, a) = try await practice(on: backend)
        let admin = server.adminToken
        let b = try LocalReplica("site-b", in: directory)
        _ = try await bootstrap(b, server.transport(admin))

        // An edit after B's pages, then syncs until every device holds it (the server counts the lower of a
        // device's last two pull checkpoints): the floor can move past the kept pages' checkpoint.
        try a.care.store.commit(
            [.assign(RecordRef(type: "patient", id: TinyPractice.patients[2]), "phone", .string("(406) 555-0143"))],
            author: TinyPractice.person,
            site: nil
        )
        for _ in 0..<3 {
            _ = try await a.engine(server.transport(admin)).sync()
            _ = try await b.engine(server.transport(admin)).sync()
        }
        let compacted = try await server.admin(["compact"])
        try #require(compacted.status == 0, "\(compacted)")
        let c = try LocalReplica("site-c", in: directory)
        let before = try await builtPages(server)
        _ = try await bootstrap(c, server.transport(admin))
        #expect(try await server.snapshotPages(built: "cached") == 0, "\(compacted.stdout)")
        #expect(try await builtPages(server) > before)
        #expect(try c.export() == a.export())
    }

    @Test func theKeptBytesAreAGaugeAndSnapshotCacheZeroKeepsNone() async throws {
        let directory = try TemporaryDirectory("outpost-kept")
        for mebibytes in ["64", "0"] {
            let server = try await TestServer(arguments: ["--snapshot-cache", mebibytes])
            let a = try LocalReplica("site-a-\(mebibytes)", in: directory)
            try TinyPractice.load(into: a.care)
            _ = try await a.engine(server.transport(server.adminToken)).sync()
            let b = try LocalReplica("site-b-\(mebibytes)", in: directory)
            let first = try await bootstrap(b, server.transport(server.adminToken))
            let c = try LocalReplica("site-c-\(mebibytes)", in: directory)
            #expect(try await bootstrap(c, server.transport(server.adminToken)) == first)
            let kept = try #require(try await server.metric("outpost_snapshot_kept_bytes"))
            let cached = try await server.snapshotPages(built: "cached")
            if mebibytes == "0" {
                #expect(kept == 0 && cached == 0, "none kept: \(kept) bytes, \(cached) pages")
            } else {
                #expect(kept > 0 && cached > 0, "\(kept) bytes, \(cached) pages")
            }
            #expect(try c.export() == a.export())
        }
    }

    @Test(arguments: ["-1", "65537", "lots"])
    func aSnapshotCacheOutOfRangeIsRefusedAtStart(value: String) async throws {
        let folder = try TemporaryDirectory("outpost-kept")
        let refused = try await runProcess(
            Built.server,
            ["serve", "--data", folder.path("data"), "--port", "0", "--snapshot-cache", value],
            in: folder.url
        )
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--snapshot-cache"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.path("data")), "nothing created")
    }
}
