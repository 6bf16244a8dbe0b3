import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OutpostModel
import OutpostServer
import OutpostTestSupport
import Testing

/// The sync server's routes in this process, over Hummingbird's router test client: no process, no socket.
/// For refusals and error bodies, which need the routes, the middleware and a store, not the network; the
/// real-process tests (``TestServer``) keep what needs the executable, the sockets or a kill.
struct InProcessServer {
    /// One answer: status, body and headers (names lowercased).
    struct Answer {
        var status: Int
        var body: Data
        var headers: [String: String]
        /// The status and body, as ``expectRefusal(_:status:code:sourceLocation:)`` reads them.
        var pair: (Int, Data) { (status, body) }
    }

    /// Sends requests to the server's routes.
    struct Client {
        let client: any TestClientProtocol
        /// The bootstrap admin token of the server's practice.
        let adminToken: String

        func request(
            _ method: String,
            _ path: String,
            token: String? = nil,
            body: Data? = nil,
            headers: [String: String] = [:]
        ) async throws -> Answer {
            var fields = HTTPFields()
            for (name, value) in headers {
                if let field = HTTPField.Name(name) { fields[field] = value }
            }
            if let token { fields[.authorization] = "Bearer \(token)" }
            if body != nil, fields[.contentType] == nil { fields[.contentType] = "application/json" }
            let response = try await client.executeRequest(
                uri: path,
                method: HTTPRequest.Method(method) ?? .get,
                headers: fields,
                body: body.map { ByteBuffer(bytes: $0) }
            )
            var names: [String: String] = [:]
            for field in response.headers { names[field.name.canonicalName] = field.value }
            return Answer(
                status: Int(response.status.code),
                body: Data(response.body.readableBytesView),
                headers: names
            )
        }
    }

    /// Runs `test` against a new server on an embedded store in a temporary directory, with its first
    /// practice and admin token made as on a first start.
    static func run(_ test: @Sendable (Client) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("outpost-in-process")
        // A handler that keeps metadata (Hummingbird reads the request id from it), silent below critical.
        var logger = Logger(label: "outpost-test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .critical
        let store = try ServerStore(directory: directory.url.path, create: true, logger: logger)
        let clock = SystemWallClock()
        let first = try await SyncServer.bootstrapIfNeeded(
            store: store,
            directory: directory.url.path,
            practiceName: "In-process practice",
            clock: clock
        )
        let tokenFile = try #require(first).tokenFile
        let token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let app = try SyncServer.makeApplication(
            configuration: ServerConfiguration(dataDirectory: directory.url.path, port: 0),
            store: store,
            clock: clock,
            registry: nil,
            logger: logger
        )
        try await app.test(.router) { client in try await test(Client(client: client, adminToken: token)) }
        withExtendedLifetime(directory) {}
    }
}
