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
}
