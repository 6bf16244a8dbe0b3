import Foundation
import Logging
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// What a new user meets when a step goes wrong, as an outsider found it (the forty-second session's walk through
/// the README with the real binaries): one line saying what was wrong and how to fix it, nothing claimed that did
/// not happen, no library's internals.
struct OutsiderMessageTests {
    /// `outpost init` with a token the server refuses makes no store, and says so; it does not first say it made
    /// one.
    @Test func initWithARefusedTokenMakesNoStoreAndDoesNotSayItDid() async throws {
        let server = try await TestServer(backend: .sqlite)
        let devices = try TemporaryDirectory("outpost-outsider-init")
        let device = Device("laptop", in: devices)
        let result = try await device.run(
            "init",
            "--server",
            server.url.absoluteString,
            "--token",
            "opt_notatokenthisserverissued"
        )
        #expect(result.status != 0, "\(result)")
        #expect(!result.stdout.contains("created replica"), "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        #expect(result.stderr.contains("token") && result.stderr.contains("no store was made"), "\(result)")
        #expect(!result.stderr.contains("outbox are kept"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: device.store))
    }

    /// A URL that answers `404` without an Outpost error body (another web server, or a path before `/v1`) is named
    /// as possibly not an Outpost server.
    @Test func aSessionNotFoundAtTheURLAsksWhetherItIsAnOutpostServer() async throws {
        let directory = try TemporaryDirectory("outpost-outsider-404")
        let replica = try LocalReplica("laptop", in: directory)
        let notOutpost = FaultTransport(
            HTTPTransport(baseURL: URL(string: "http://127.0.0.1:9")!, token: "x"),
            answer: { _, _ in
                TransportResponse(status: 404, body: Data("<h1>Not Found</h1>".utf8), contentType: "text/html")
            }
        )
        let engine = replica.engine(notOutpost)
        let error = await #expect(throws: ClientError.self) { _ = try await engine.fetchSession() }
        #expect(error?.message.contains("is the URL an Outpost server") == true, "\(String(describing: error))")
    }

    /// An `https://` URL for a server that speaks plain HTTP: told to use `http://`, not to check a certificate,
    /// and without the TLS library's internals (source paths, error codes).
    @Test func anHTTPSURLForAPlainServerSaysItDoesNotSpeakTLS() async throws {
        let server = try await TestServer(backend: .sqlite)
        var components = try #require(URLComponents(url: server.url, resolvingAgainstBaseURL: false))
        components.scheme = "https"
        let transport = HTTPTransport(baseURL: try #require(components.url), token: server.adminToken)
        let request = TransportRequest(method: "GET", path: Wire.Path.session)
        let error = await #expect(throws: (any Error).self) { _ = try await transport.send(request) }
        let text = "\(String(describing: error))"
        #expect(text.contains("does not speak TLS") && text.contains("http://"), "\(text)")
        #expect(!text.contains(".cc:") && !text.contains("BoringSSL"), "\(text)")
    }

    /// A new laptop whose first sync stops part way (the link lost after the first snapshot page) holds part of the
    /// practice: `outpost status` says the sync is not finished, until a sync ends.
    @Test func aFirstSyncStoppedPartWayIsShownAsNotFinished() async throws {
        let server = try await TestServer(backend: .sqlite)
        let directory = try TemporaryDirectory("outpost-outsider-partial")
        let office = try LocalReplica("office", in: directory)
        try TinyPractice.load(into: office.care)
        _ = try await office.engine(server.transport(server.adminToken)).sync()
        let laptop = try LocalReplica("laptop", in: directory)
        let cut = FaultTransport(
            server.transport(server.adminToken),
            before: { request, number in
                if request.path == Wire.Path.snapshot, number == 2 {
                    throw InjectedFault(description: "the link dropped before the second page")
                }
            }
        )
        await #expect(throws: (any Error).self) { _ = try await laptop.engine(cut, pageSize: 2).sync() }
        try #require(try laptop.store.status().recordCounts.values.reduce(0, +) > 0, "the first page was written")
        #expect(try laptop.store.status().syncUnfinished)
        let path = directory.path("laptop.sqlite")
        let shown = try await runProcess(Built.outpost, ["status", "--store", path], in: directory.url)
        #expect(shown.status == 0 && shown.stdout.contains("sync:            not finished"), "\(shown)")

        _ = try await laptop.engine(server.transport(server.adminToken)).sync()
        #expect(try !laptop.store.status().syncUnfinished)
        #expect(try !office.store.status().syncUnfinished)
        let after = try await runProcess(Built.outpost, ["status", "--store", path], in: directory.url)
        #expect(after.status == 0 && !after.stdout.contains("not finished"), "\(after)")
        // Another server's URL forgets the checkpoint, but no sync began: nothing stopped part way.
        try laptop.store.setRemote(Remote(url: URL(string: "http://127.0.0.1:9")!, token: "x"))
        #expect(try laptop.store.checkpoint() == nil)
        #expect(try !laptop.store.status().syncUnfinished)
    }
}
