import Foundation
import Logging
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

@testable import OutpostServer

/// gzip on the real server: compressed pushes stored like plain ones, pages compressed when asked and only then,
/// and every bad compressed body refused with a JSON error body and nothing stored.
struct CompressionTests {
    func send(_ server: TestServer, _ token: String, _ request: TransportRequest) async throws -> TransportResponse {
        try await server.transport(token).send(request)
    }

    func expectError(_ answer: TransportResponse, _ status: Int, _ code: ErrorCode, _ words: String) throws {
        #expect(answer.status == status, "\(String(decoding: answer.body, as: UTF8.self))")
        #expect(answer.contentType == "application/json")
        let error = try Wire.makeDecoder().decode(ErrorBody.self, from: answer.body)
        #expect(error.error.code == code)
        #expect(error.error.message.contains(words), "\(error.error.message)")
    }

    @Test(arguments: SyncEngine.Encoding.allCases)
    func aCompressedPushIsStoredLikeItsPlainFormAndCountedAsADuplicateAfter(
        encoding: SyncEngine.Encoding
    )
        async throws
    {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-gzip")
        let admin = server.adminToken
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let changes = try a.store.pendingChanges(limit: 1_000)
        let push = PushRequest(replica: a.store.replicaID, changes: changes)
        let plain = encoding == .binary ? Data(push.binaryEncoded()) : try Wire.makeEncoder().encode(push)
        let contentType = encoding == .binary ? BinaryWire.contentType : Wire.contentType
        let compressed = Data(WireCompression.compress(plain))
        #expect(compressed.count < plain.count)
        let first = try await send(
            server,
            admin,
            TransportRequest(
                method: "POST",
                path: Wire.Path.push,
                body: compressed,
                contentType: contentType,
                contentEncoding: "gzip"
            )
        )
        #expect(first.status == 200, "\(String(decoding: first.body, as: UTF8.self))")
        #expect(try Wire.makeDecoder().decode(PushResponse.self, from: first.body).accepted == changes.count)
        let again = try await send(
            server,
            admin,
            TransportRequest(method: "POST", path: Wire.Path.push, body: plain, contentType: contentType)
        )
        #expect(try Wire.makeDecoder().decode(PushResponse.self, from: again.body).duplicates == changes.count)
        #expect(try await server.feed(admin).count == changes.count)
    }

    @Test func badCompressedPushesAreRefusedWithAJSONBodyAndNothingIsStored() async throws {
        let (server, directory) = try await StrictReadingTests.seededServer()
        _ = directory
        let admin = server.adminToken
        let before = try await server.holdings(admin)
        let replicas = try TemporaryDirectory("outpost-gzip-bad")
        let a = try LocalReplica("gzip-bad", in: replicas)
        try TinyPractice.load(into: a.care)
        let push = PushRequest(replica: a.store.replicaID, changes: try a.store.pendingChanges(limit: 1_000))
        let compressed = WireCompression.compress(push.binaryEncoded())
        func pushing(_ body: [UInt8], coding: String) -> TransportRequest {
            TransportRequest(
                method: "POST",
                path: Wire.Path.push,
                body: Data(body),
                contentType: BinaryWire.contentType,
                contentEncoding: coding
            )
        }
        // Cut off: the trailer does not match.
        try expectError(
            try await send(server, admin, pushing(Array(compressed.dropLast(9)), coding: "gzip")),
            400,
            .malformedRequest,
            "gzip"
        )
        // Not gzip at all.
        try expectError(
            try await send(server, admin, pushing(push.binaryEncoded(), coding: "gzip")),
            400,
            .malformedRequest,
            "gzip"
        )
        // A coding the server does not speak.
        try expectError(
            try await send(server, admin, pushing(compressed, coding: "br")),
            415,
            .unsupportedMediaType,
            "Content-Encoding"
        )
        // A small body that inflates past the server's body limit (a compression bomb).
        let session = try Wire.makeDecoder().decode(
            SessionInfo.self,
            from: try await send(server, admin, TransportRequest(method: "GET", path: Wire.Path.session)).body
        )
        let bomb = WireCompression.compress([UInt8](repeating: 0x20, count: session.limits.maxBodyBytes + 1))
        #expect(bomb.count < session.limits.maxBodyBytes / 100)
        try expectError(try await send(server, admin, pushing(bomb, coding: "gzip")), 413, .tooLarge, "inflates")
        #expect(try await server.holdings(admin) == before, "a refused compressed push stored something")
    }

    @Test func pagesAreCompressedOnlyWhenAskedAndInflateToThePlainPage() async throws {
        let (server, directory) = try await StrictReadingTests.seededServer()
        _ = directory
        let admin = server.adminToken
        for path in [Wire.Path.changes, Wire.Path.snapshot] {
            for accept in [nil, BinaryWire.contentType] {
                let query = path == Wire.Path.changes ? [("since", "0"), ("limit", "50")] : [("limit", "50")]
                let plain = try await send(
                    server,
                    admin,
                    TransportRequest(method: "GET", path: path, query: query, accept: accept)
                )
                #expect(plain.status == 200 && plain.contentEncoding == nil)
                let compressed = try await send(
                    server,
                    admin,
                    TransportRequest(method: "GET", path: path, query: query, accept: accept, acceptEncoding: "gzip")
                )
                #expect(compressed.status == 200)
                #expect(compressed.contentEncoding == "gzip", "\(path) \(accept ?? "json")")
                #expect(compressed.contentType == plain.contentType)
                #expect(compressed.body.count < plain.body.count)
                let inflated = try WireCompression.decompress(compressed.body, limit: 1 << 24)
                #expect(Data(inflated) == plain.body, "\(path) \(accept ?? "json")")
            }
        }
        // A page under the threshold goes as it is, even when gzip is accepted.
        let small = try await send(
            server,
            admin,
            TransportRequest(
                method: "GET",
                path: Wire.Path.changes,
                query: [("since", "0"), ("limit", "1")],
                accept: BinaryWire.contentType,
                acceptEncoding: "gzip"
            )
        )
        #expect(small.status == 200 && small.contentEncoding == nil && small.body.count < WireCompression.threshold)
    }

    /// The engine with and without gzip: the same convergence, and fewer bytes with it.
    /// The server's gzip (libdeflate) is one gzip stream that the device's zlib inflates to the same bytes, from
    /// a page of repeats to one of random bytes, and smaller than the page when the page repeats itself.
    @Test func theServersGzipInflatesWithTheDevicesZlibToThePage() throws {
        var random = SeededGenerator(seed: 15)
        let text = Array(String(repeating: "pat_01KKBFJZCTT8BHAW9GPEZGQKFM active 2026-12-05 ", count: 4_000).utf8)
        let noise = (0..<200_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        for page in [text, noise, Array(text.prefix(1_024)), text + noise] {
            let gzipped = PageCompression.gzip(page)
            #expect(try WireCompression.decompress(gzipped, limit: page.count) == page)
            #expect(Array(gzipped.prefix(2)) == [0x1F, 0x8B], "a gzip member")
        }
        #expect(PageCompression.gzip(text).count * 20 < text.count)
    }

    @Test func replicasSyncingWithAndWithoutCompressionConverge() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-gzip-sync")
        let a = try LocalReplica("a", in: directory)
        let b = try LocalReplica("b", in: directory)
        try TinyPractice.load(into: a.care)
        let counting = CountingBodies(base: server.transport(server.adminToken))
        var on = SyncEngine.Options()
        on.compression = true
        var off = SyncEngine.Options()
        off.compression = false
        _ = try await SyncEngine(store: a.store, transport: counting, options: on, logger: .init(label: "a")).sync()
        let compressedBytes = counting.total
        _ = try await SyncEngine(
            store: b.store,
            transport: server.transport(server.adminToken),
            options: off,
            logger: .init(label: "b")
        ).sync()
        #expect(try a.export() == b.export())
        #expect(compressedBytes > 0)
        #expect(counting.compressedRequests > 0, "the first push of a practice is compressed")
        // A is not sent back what it pushed (`own=skip`); a new device's snapshot pages are compressed.
        let c = try LocalReplica("c", in: directory)
        let joining = CountingBodies(base: server.transport(server.adminToken))
        _ = try await SyncEngine(store: c.store, transport: joining, options: on, logger: .init(label: "c")).sync()
        #expect(try c.export() == a.export())
        #expect(joining.compressedAnswers > 0, "a new device's snapshot pages are compressed")
    }
}

/// Counts body bytes and compressed bodies each way.
final class CountingBodies: SyncTransport {
    struct Counts {
        var bytes = 0
        var compressedRequests = 0
        var compressedAnswers = 0
    }

    let base: any SyncTransport
    let counts = Mutex(Counts())

    init(base: any SyncTransport) { self.base = base }

    var total: Int { counts.withLock { $0.bytes } }
    var compressedRequests: Int { counts.withLock { $0.compressedRequests } }
    var compressedAnswers: Int { counts.withLock { $0.compressedAnswers } }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        let response = try await base.send(request)
        counts.withLock {
            $0.bytes += (request.body?.count ?? 0) + response.body.count
            if request.contentEncoding == "gzip" { $0.compressedRequests += 1 }
            if response.contentEncoding == "gzip" { $0.compressedAnswers += 1 }
        }
        return response
    }
}
