import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// The binary encoding on the real server: negotiated by `Content-Type` (push) and `Accept` (pull, snapshot),
/// answering the same messages as JSON; bad binary pushes refused like bad JSON, nothing stored.
struct BinaryNegotiationTests {
    static let invalidDirectory = Built.packageRoot.appendingPathComponent("protocol/golden/binary/invalid")

    /// Sends `request` through the real transport.
    func send(_ server: TestServer, _ token: String, _ request: TransportRequest) async throws -> TransportResponse {
        try await server.transport(token).send(request)
    }

    @Test func everyInvalidBinaryPushIsRefusedAsMalformedWithAJSONBodyAndNothingIsStored() async throws {
        let (server, directory) = try await StrictReadingTests.seededServer()
        _ = directory
        let admin = server.adminToken
        let before = try await server.holdings(admin)
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.invalidDirectory.path)
            .filter { $0.hasSuffix(".bin") }.sorted()
        try #require(files.count > 15)
        for file in files {
            let body = try Data(contentsOf: Self.invalidDirectory.appendingPathComponent(file))
            let answer = try await send(
                server,
                admin,
                TransportRequest(method: "POST", path: Wire.Path.push, body: body, contentType: BinaryWire.contentType)
            )
            #expect(answer.status == 400, "\(file): \(String(decoding: answer.body, as: UTF8.self))")
            #expect(answer.contentType == "application/json", "\(file)")
            let error = try Wire.makeDecoder().decode(ErrorBody.self, from: answer.body)
            #expect(error.error.code == .malformedRequest, "\(file)")
            #expect(error.error.message.contains("binary push"), "\(file): \(error.error.message)")
        }
        #expect(try await server.holdings(admin) == before, "a refused binary push stored something")
    }

    @Test func aBinaryPushIsStoredLikeItsJSONAndADuplicateIsCountedSo() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-binary")
        let admin = server.adminToken
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let changes = try a.store.pendingChanges(limit: 1_000)
        let push = PushRequest(replica: a.store.replicaID, changes: changes)
        let binary = TransportRequest(
            method: "POST",
            path: Wire.Path.push,
            body: Data(push.binaryEncoded()),
            contentType: BinaryWire.contentType
        )
        let first = try await send(server, admin, binary)
        #expect(first.status == 200)
        let stored = try Wire.makeDecoder().decode(PushResponse.self, from: first.body)
        #expect(stored.accepted == changes.count)
        // The same changes again, as JSON: the server sees the same content, so they are duplicates.
        let json = TransportRequest(
            method: "POST",
            path: Wire.Path.push,
            body: try Wire.makeEncoder().encode(push)
        )
        let again = try Wire.makeDecoder().decode(PushResponse.self, from: try await send(server, admin, json).body)
        #expect(again.accepted == 0)
        #expect(again.duplicates == changes.count)
        #expect(try await server.feed(admin).count == changes.count)
    }

    @Test func pullAndSnapshotAnswerTheSameMessagesInBinaryWhenAskedAndJSONOtherwise() async throws {
        let (server, directory) = try await StrictReadingTests.seededServer()
        _ = directory
        let admin = server.adminToken
        let pullQuery = [("since", "0"), ("limit", "7")]
        let jsonPull = try await send(
            server,
            admin,
            TransportRequest(method: "GET", path: Wire.Path.changes, query: pullQuery)
        )
        #expect(jsonPull.contentType == "application/json")
        let binaryPull = try await send(
            server,
            admin,
            TransportRequest(method: "GET", path: Wire.Path.changes, query: pullQuery, accept: BinaryWire.contentType)
        )
        #expect(binaryPull.status == 200)
        #expect(binaryPull.contentType == BinaryWire.contentType)
        let expected = try Wire.makeDecoder().decode(PullResponse.self, from: jsonPull.body)
        #expect(expected.changes.count == 7 && expected.hasMore)
        #expect(try PullResponse(binary: [UInt8](binaryPull.body)) == expected)
        #expect(binaryPull.body.count * 2 < jsonPull.body.count)

        let snapshotQuery = [("limit", "3")]
        let jsonPage = try await send(
            server,
            admin,
            TransportRequest(method: "GET", path: Wire.Path.snapshot, query: snapshotQuery)
        )
        let binaryPage = try await send(
            server,
            admin,
            TransportRequest(
                method: "GET",
                path: Wire.Path.snapshot,
                query: snapshotQuery,
                accept: "application/json;q=0.5, \(BinaryWire.contentType)"
            )
        )
        #expect(binaryPage.contentType == BinaryWire.contentType)
        let page = try Wire.makeDecoder().decode(SnapshotPage.self, from: jsonPage.body)
        #expect(page.records.count == 3 && page.next != nil)
        #expect(try SnapshotPage(binary: [UInt8](binaryPage.body)) == page)
    }

    /// A snapshot's first page names the practice's purged patients (`removed`), in JSON and from layout 4 on;
    /// a page for a layout-3 reader carries none, and the pages after the first name none.
    @Test func aSnapshotsFirstPageNamesThePurgedPatientsInJSONAndFromLayoutFour() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-binary-removed")
        let admin = server.adminToken
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(admin)).sync()
        let purged = TinyPractice.patients[1]
        let result = try await server.admin(["purge", "patient", purged, "--reason", "court order 2026-118"])
        try #require(result.status == 0, "\(result)")
        func page(layout: UInt8?, after: String? = nil) async throws -> SnapshotPage {
            var query = [("limit", "2")]
            if let after { query.append(("after", after)) }
            let answer = try await send(
                server,
                admin,
                TransportRequest(
                    method: "GET",
                    path: Wire.Path.snapshot,
                    query: query,
                    accept: layout.map { BinaryWire.accept(layout: $0) }
                )
            )
            try #require(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
            guard layout != nil else { return try Wire.makeDecoder().decode(SnapshotPage.self, from: answer.body) }
            try #require(answer.contentType == BinaryWire.contentType)
            return try SnapshotPage(binary: [UInt8](answer.body))
        }
        let first = try await page(layout: nil)
        #expect(first.removed == [purged])
        let next = try #require(first.next)
        #expect(try await page(layout: 4) == first)
        var older = first
        older.removed = []
        #expect(try await page(layout: 3) == older)
        #expect(try await page(layout: nil, after: next).removed.isEmpty)
        #expect(try await page(layout: 4, after: next).removed.isEmpty)
    }

    @Test func errorsStayJSONWhenBinaryIsAsked() async throws {
        let server = try await TestServer()
        let answer = try await send(
            server,
            server.adminToken,
            TransportRequest(
                method: "GET",
                path: Wire.Path.changes,
                query: [("limit", "0")],
                accept: BinaryWire.contentType
            )
        )
        #expect(answer.status == 400)
        #expect(answer.contentType == "application/json")
        #expect(try Wire.makeDecoder().decode(ErrorBody.self, from: answer.body).error.code == .invalidParameter)
    }

    @Test(arguments: SyncEngine.Encoding.allCases)
    func replicasConvergeWithEitherEncodingAndSendWhatTheyAskFor(encoding: SyncEngine.Encoding) async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-binary")
        let admin = server.adminToken
        let a = try LocalReplica("site-a", in: directory)
        let b = try LocalReplica("site-b", in: directory)
        try TinyPractice.load(into: a.care)
        let seen = Mutex<[String]>([])
        let transport = FaultTransport(
            server.transport(admin),
            after: { request, _, response in
                let sent = request.body == nil ? "-" : (request.contentType ?? "json")
                seen.withLock { $0.append("\(request.path) \(sent) \(response.isBinary ? "binary" : "json")") }
            }
        )
        _ = try await a.engine(transport, pushBatch: 50, pageSize: 20, encoding: encoding).sync()
        let report = try await b.engine(transport, pageSize: 20, encoding: encoding).sync()
        #expect(report.bootstrapped)
        #expect(try b.export() == a.export())
        let binary = encoding == .binary
        let lines = seen.withLock { $0 }
        let kind = binary ? "binary" : "json"
        let pushType = binary ? BinaryWire.contentType : Wire.contentType
        #expect(lines.contains("\(Wire.Path.push) \(pushType) json"))
        #expect(lines.contains("\(Wire.Path.snapshot) - \(kind)"))
        #expect(lines.contains("\(Wire.Path.changes) - \(kind)"))
        #expect(lines.contains("\(Wire.Path.session) - json"))
    }

    /// The layout byte of a binary body as sent or received (inflated when gzipped), or `nil` for JSON.
    static func layout(of body: Data) -> UInt8? {
        let bytes =
            body.starts(with: [0x1F, 0x8B]) ? try? WireCompression.decompress(body, limit: 1 << 26) : [UInt8](body)
        guard let bytes, bytes.starts(with: BinaryWire.magic), bytes.count > 4 else { return nil }
        return bytes[4]
    }

    @Test func theSessionNamesTheNewestLayoutAndPagesComeInTheLayoutAskedFor() async throws {
        let (server, directory) = try await StrictReadingTests.seededServer()
        _ = directory
        let admin = server.adminToken
        let session = try await send(server, admin, TransportRequest(method: "GET", path: Wire.Path.session))
        let info = try Wire.makeDecoder().decode(SessionInfo.self, from: session.body)
        #expect(info.binaryLayout == Int(BinaryWire.latestLayout))
        let query = [("since", "0"), ("limit", "7")]
        let json = try await send(server, admin, TransportRequest(method: "GET", path: Wire.Path.changes, query: query))
        let expected = try Wire.makeDecoder().decode(PullResponse.self, from: json.body)
        let type = BinaryWire.contentType
        // No parameter: layout 1, as every server before layouts answers; a layout beyond the server's: its newest.
        for (accept, layout) in [
            (type, 1), ("\(type); layout=2", 2), ("\(type);layout=1", 1),
            ("\(type); layout=7", Int(BinaryWire.latestLayout)),
        ] {
            let answer = try await send(
                server,
                admin,
                TransportRequest(method: "GET", path: Wire.Path.changes, query: query, accept: accept)
            )
            #expect(answer.contentType == type, "\(accept)")
            #expect(Self.layout(of: answer.body) == UInt8(layout), "\(accept)")
            #expect(try PullResponse(binary: [UInt8](answer.body)) == expected, "\(accept)")
        }
        for layout in BinaryWire.layouts {
            let page = try await send(
                server,
                admin,
                TransportRequest(
                    method: "GET",
                    path: Wire.Path.snapshot,
                    query: [("limit", "3")],
                    accept: BinaryWire.accept(layout: layout)
                )
            )
            #expect(Self.layout(of: page.body) == layout)
            #expect(try SnapshotPage(binary: [UInt8](page.body)).records.count == 3)
        }
    }

    @Test(arguments: BinaryWire.layouts)
    func aDeviceOfEitherLayoutConvergesWithOneOfTheOtherPushingAndPullingInItsOwn(layout: UInt8) async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-layouts")
        let admin = server.adminToken
        let old = try LocalReplica("old-laptop", in: directory)
        let new = try LocalReplica("new-laptop", in: directory)
        try TinyPractice.load(into: old.care)
        let seen = Mutex<[String: Set<UInt8>]>([:])
        func watch(_ name: String) -> FaultTransport {
            FaultTransport(
                server.transport(admin),
                after: { request, _, response in
                    let layouts = [request.body.flatMap(Self.layout(of:)), Self.layout(of: response.body)].compactMap {
                        $0
                    }
                    seen.withLock { $0["\(name) \(request.path)", default: []].formUnion(layouts) }
                }
            )
        }
        let other = layout == 1 ? BinaryWire.latestLayout : 1
        _ = try await old.engine(watch("a"), pushBatch: 50, pageSize: 20, binaryLayout: layout).sync()
        #expect(try await new.engine(watch("b"), pageSize: 20, binaryLayout: other).sync().bootstrapped)
        _ = try new.care.update([
            .assign(RecordRef(type: "patient", id: TinyPractice.patients[0]), "phone", "(406) 555-0199")
        ])
        _ = try await new.engine(watch("b"), pageSize: 20, binaryLayout: other).sync()
        _ = try await old.engine(watch("a"), pageSize: 20, binaryLayout: layout).sync()
        #expect(try new.export() == old.export())
        let lines = seen.withLock { $0 }
        #expect(lines["a \(Wire.Path.push)"] == [layout])
        #expect(lines["a \(Wire.Path.changes)"] == [layout])
        #expect(lines["b \(Wire.Path.push)"] == [other])
        #expect(lines["b \(Wire.Path.snapshot)"] == [other])
        #expect(lines["b \(Wire.Path.changes)"] == [other])
    }

    @Test func aDeviceSyncsWithAServerFromBeforeLayoutsInLayoutOne() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-old-server")
        let first = try LocalReplica("first-laptop", in: directory)
        let second = try LocalReplica("second-laptop", in: directory)
        try TinyPractice.load(into: first.care)
        let old = ServerBeforeLayouts(base: server.transport(server.adminToken))
        _ = try await first.engine(old, pushBatch: 50, pageSize: 20).sync()
        #expect(try await second.engine(old, pageSize: 20).sync().bootstrapped)
        _ = try second.care.update([
            .assign(RecordRef(type: "patient", id: TinyPractice.patients[1]), "phone", "(406) 555-0142")
        ])
        _ = try await second.engine(old, pageSize: 20).sync()
        _ = try await first.engine(old, pageSize: 20).sync()
        #expect(try first.export() == second.export())
        let layouts = old.layouts.withLock { $0 }
        #expect(layouts == [1], "what crossed the wire: \(layouts)")
        #expect(old.binaryBodies.withLock { $0 } > 3)
    }

    @Test func aDevicePushesInLayoutOneToAServerThatDoesNotNameALayout() {
        #expect(SyncEngine.pushLayout(mine: 2, server: nil) == 1)
        #expect(SyncEngine.pushLayout(mine: 2, server: 1) == 1)
        #expect(SyncEngine.pushLayout(mine: 2, server: 2) == 2)
        #expect(SyncEngine.pushLayout(mine: 1, server: 2) == 1)
        #expect(SyncEngine.pushLayout(mine: 2, server: 9) == 2)
        #expect(SyncEngine.pushLayout(mine: 2, server: 0) == 1)
        #expect(SyncEngine.pushLayout(mine: 2, server: -4) == 1)
    }
}

/// The real server as one from before binary layouts looks to a device: its session does not name a layout, it
/// ignores `Accept`'s `layout` parameter (answering layout 1) and would refuse a layout 2 push; records the
/// layouts that cross.
final class ServerBeforeLayouts: SyncTransport {
    let base: any SyncTransport
    let layouts = Mutex<Set<UInt8>>([])
    let binaryBodies = Mutex(0)

    init(base: any SyncTransport) { self.base = base }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        var request = request
        if let accept = request.accept, BinaryWire.accepts(accept) { request.accept = BinaryWire.contentType }
        if let body = request.body, let layout = BinaryNegotiationTests.layout(of: body) {
            layouts.withLock { _ = $0.insert(layout) }
            binaryBodies.withLock { $0 += 1 }
            guard layout == 1 else {
                throw InjectedFault(description: "a server before layouts refuses layout \(layout)")
            }
        }
        var response = try await base.send(request)
        if let layout = BinaryNegotiationTests.layout(of: response.body) {
            layouts.withLock { _ = $0.insert(layout) }
            binaryBodies.withLock { $0 += 1 }
        }
        if request.path == Wire.Path.session,
            var object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        {
            object["binaryLayout"] = nil
            response.body = try JSONSerialization.data(withJSONObject: object)
        }
        return response
    }
}
