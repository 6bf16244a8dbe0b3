import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import OutpostProtocol
import Synchronization

/// One HTTP exchange with the sync server, as the engine sees it. Tests put a fault-injecting transport in
/// front of the real one.
public protocol SyncTransport: Sendable {
    /// Sends a request and returns the status and body, or throws when no answer came (unreachable server,
    /// broken connection, timeout).
    func send(_ request: TransportRequest) async throws -> TransportResponse
}

/// A request to the sync server.
public struct TransportRequest: Sendable, Hashable {
    /// `GET` or `POST`.
    public var method: String
    /// The path, e.g. `/v1/push`.
    public var path: String
    /// Query parameters, in order.
    public var query: [(String, String)]
    /// The body, for a `POST`.
    public var body: Data?
    /// The body's media type: JSON unless said otherwise.
    public var contentType: String?
    /// The media type asked for in the answer (`Accept`), or `nil` for the server's default (JSON).
    public var accept: String?
    /// The body's content coding (`Content-Encoding`, `gzip`), or `nil` for the body as it is.
    public var contentEncoding: String?
    /// The content codings accepted in the answer (`Accept-Encoding`), or `nil` for none.
    public var acceptEncoding: String?
    /// Further headers, such as what the device reports of itself (``Wire/outboxHeader``).
    public var headers: [String: String] = [:]
    /// How long to wait for an answer, in seconds.
    public var timeout: Double

    /// Creates a request.
    public init(
        method: String,
        path: String,
        query: [(String, String)] = [],
        body: Data? = nil,
        contentType: String? = nil,
        accept: String? = nil,
        contentEncoding: String? = nil,
        acceptEncoding: String? = nil,
        timeout: Double = 30
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.contentType = contentType
        self.accept = accept
        self.contentEncoding = contentEncoding
        self.acceptEncoding = acceptEncoding
        self.timeout = timeout
    }

    public static func == (lhs: TransportRequest, rhs: TransportRequest) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.body == rhs.body && lhs.contentType == rhs.contentType
            && lhs.accept == rhs.accept && lhs.contentEncoding == rhs.contentEncoding
            && lhs.acceptEncoding == rhs.acceptEncoding
            && lhs.query.map { [$0.0, $0.1] } == rhs.query.map { [$0.0, $0.1] }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(path)
        hasher.combine(body)
    }
}

/// The server's answer.
public struct TransportResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// The body.
    public var body: Data
    /// The body's media type (`Content-Type`), when the server said.
    public var contentType: String?
    /// The body's content coding (`Content-Encoding`), when it is not the body as it is.
    public var contentEncoding: String?

    /// Creates a response.
    public init(status: Int, body: Data, contentType: String? = nil, contentEncoding: String? = nil) {
        self.status = status
        self.body = body
        self.contentType = contentType
        self.contentEncoding = contentEncoding
    }

    /// Whether the body is in the binary encoding: its `Content-Type` says so, or, with none, it starts with
    /// the binary magic (JSON never does).
    public var isBinary: Bool {
        if let contentType { return BinaryWire.isBinaryContentType(contentType) }
        return body.starts(with: BinaryWire.magic)
    }
}

/// The real transport: HTTP/1.1 (HTTP/2 over TLS when the server offers it) through AsyncHTTPClient.
///
/// Not Foundation's URLSession: on Linux it aborts the whole process ("Transfer completed, but there's no
/// response") when a connection closes after part of a response's headers, a fault no caller can catch.
/// Here every failure to get a whole answer is a thrown ``TransportFailure``, which the engine retries as
/// transient. Each request has its own deadline (``TransportRequest/timeout``), covering the answer's body.
public struct HTTPTransport: SyncTransport {
    /// The server's base URL.
    public let baseURL: URL
    let token: String
    /// PEM certificates of the authorities that alone are trusted for `https` (a private CA); `nil` trusts the
    /// system's.
    let trustedCertificates: String?

    /// The largest answer body read (snapshot and pull pages are far smaller).
    static let maxBodyBytes = 1 << 30

    /// One client for the process: it pools connections and is never shut down (a client's resources are
    /// released when the process exits).
    static let client = makeClient(tls: nil)

    /// One client per set of trusted certificates, made on first use (a process talks to one server).
    static let privateClients = Mutex<[String: HTTPClient]>([:])

    static func makeClient(tls: TLSConfiguration?) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(10)),
            decompression: .disabled
        )
        configuration.httpVersion = .automatic
        // A refused connection fails the request at once: the engine retries with its own backoff, and an
        // offline device hears so in moments, not after the connect timeout of every attempt.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Idle connections are closed before the server closes them (`outpost-server serve --idle-timeout`, 60 s
        // by default): at the same 60 s, a request sent on a pooled connection as the server closed it failed with
        // "the connection closed before a whole answer arrived" (seen once in a CI run whose tests paused that long
        // between requests).
        configuration.connectionPool.idleTimeout = .seconds(45)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The client that trusts `certificates` (PEM) alone, or the system's roots for `nil`.
    static func client(trusting certificates: String?) throws(TransportFailure) -> HTTPClient {
        guard let certificates else { return client }
        let parsed = try TrustedCertificates.parse(certificates)
        return privateClients.withLock { clients in
            if let client = clients[certificates] { return client }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(parsed)
            tls.minimumTLSVersion = .tlsv12
            let client = makeClient(tls: tls)
            clients[certificates] = client
            return client
        }
    }

    /// Creates a transport to `baseURL` that presents `token`, trusting `trustedCertificates` (PEM) alone for
    /// `https` when given, else the system's certificate authorities.
    public init(baseURL: URL, token: String, trustedCertificates: String? = nil) {
        self.baseURL = baseURL
        self.token = token
        self.trustedCertificates = trustedCertificates
    }

    public func send(_ request: TransportRequest) async throws -> TransportResponse {
        var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false)
        let base = components?.path ?? ""
        components?.path = (base.hasSuffix("/") ? String(base.dropLast()) : base) + request.path
        if !request.query.isEmpty {
            components?.queryItems = request.query.map { URLQueryItem(name: $0.0, value: $0.1) }
        }
        guard let url = components?.url else {
            throw TransportFailure(reason: "\(baseURL.absoluteString) is not a usable server URL")
        }
        var outgoing = HTTPClientRequest(url: url.absoluteString)
        outgoing.method = HTTPMethod(rawValue: request.method)
        outgoing.headers.add(name: "Authorization", value: "Bearer \(token)")
        outgoing.headers.add(name: Wire.protocolHeader, value: String(OutpostVersion.wireProtocol))
        outgoing.headers.add(name: Wire.clientHeader, value: "outpost/\(OutpostVersion.software)")
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
            outgoing.headers.add(name: name, value: value)
        }
        if let body = request.body {
            outgoing.headers.add(name: "Content-Type", value: request.contentType ?? Wire.contentType)
            if let coding = request.contentEncoding { outgoing.headers.add(name: "Content-Encoding", value: coding) }
            outgoing.body = .bytes(ByteBuffer(bytes: body))
        }
        if let accept = request.accept { outgoing.headers.add(name: "Accept", value: accept) }
        if let codings = request.acceptEncoding { outgoing.headers.add(name: "Accept-Encoding", value: codings) }
        let timeout = max(request.timeout, 0.001)
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout * 1_000_000_000))
        let client = try Self.client(trusting: trustedCertificates)
        do {
            let response = try await client.execute(outgoing, deadline: deadline)
            // The deadline above covers the answer's head; the body is read under the same one.
            let remaining = deadline - NIODeadline.now()
            let body = try await Self.withTimeout(remaining, seconds: timeout) {
                try await response.body.collect(upTo: Self.maxBodyBytes)
            }
            return TransportResponse(
                status: Int(response.status.code),
                body: Data(body.readableBytesView),
                contentType: response.headers.first(name: "Content-Type"),
                contentEncoding: response.headers.first(name: "Content-Encoding")
            )
        } catch let failure as TransportFailure {
            throw failure
        } catch {
            let port = baseURL.port ?? (baseURL.scheme == "https" ? 443 : 80)
            throw TransportFailure(error, timeout: timeout, server: baseURL.host.map { "\($0):\(port)" })
        }
    }

    /// Runs `body`, failing with a timeout when it takes longer than `limit`.
    static func withTimeout<T: Sendable>(
        _ limit: TimeAmount,
        seconds: Double,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .nanoseconds(max(limit.nanoseconds, 0)))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw TransportFailure(
                    reason: "no whole answer within \(TransportFailure.format(seconds)) s",
                    isTimeout: true
                )
            }
            return value
        }
    }
}

/// No whole answer came from the server: it is unreachable, refused the connection, closed it before a whole
/// answer arrived, or did not answer in time. Always transient: the request may be sent again.
public struct TransportFailure: Error, LocalizedError, CustomStringConvertible {
    /// What happened, in words (no request or response contents).
    public var reason: String
    /// Whether no whole answer came in time (the request's deadline, or no connection within the connect
    /// timeout), rather than a failure the link reported at once.
    public var isTimeout = false

    /// Creates a failure with a reason.
    public init(reason: String, isTimeout: Bool = false) {
        self.reason = reason
        self.isTimeout = isTimeout
    }

    init(_ error: any Error, timeout: Double, server: String?) {
        let to = server.map { " to \($0)" } ?? ""
        if let error = error as? HTTPClientError {
            switch error {
            case .remoteConnectionClosed:
                reason = "the connection closed before a whole answer arrived"
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                reason = "no whole answer within \(Self.format(timeout)) s"
                isTimeout = true
            case .connectTimeout:
                reason = "no connection\(to) within 10 s"
                isTimeout = true
            case .cancelled:
                reason = "the request was cancelled"
            default:
                reason = "HTTP failure: \(error)"
            }
        } else if let error = error as? NIOSSLError {
            let text = "\(error)"
            if text.contains("WRONG_VERSION_NUMBER") || text.contains("wrong version number") {
                reason =
                    "the server\(server.map { " at \($0)" } ?? "") does not speak TLS: is its URL http://, not https://?"
            } else {
                // A failed handshake says BoringSSL's reason briefly, without its source paths.
                let cause = if case .handshakeFailed(let cause) = error { Self.brief(cause) } else { text }
                reason =
                    "the TLS connection\(to) failed (\(cause)); check the server's certificate, or give its CA with --ca-file"
            }
        } else if let error = error as? BoringSSLError {
            reason =
                "the server's certificate is not trusted (\(Self.brief(error))); give its CA with 'outpost remote set URL --ca-file FILE'"
        } else if error is HTTPParserError {
            reason = "the answer was cut off or was not valid HTTP"
        } else if let error = error as? NIOConnectionError {
            reason = "no connection to \(error.host):\(error.port)"
        } else if let error = error as? IOError {
            reason = "no connection\(to): \(String(cString: strerror(error.errnoCode)).lowercased())"
        } else if error is ChannelError {
            reason = "the connection\(to) failed: \(error)"
        } else if error is CancellationError {
            reason = "the request was cancelled"
        } else {
            reason = "\(error)"
        }
    }

    /// The first reason BoringSSL gives, without its internal codes.
    static func brief(_ error: BoringSSLError) -> String {
        let text = "\(error)"
        for marker in ["CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "self signed", "unable to get"]
        where text.contains(marker) {
            return "certificate verify failed"
        }
        return text.count > 160 ? String(text.prefix(160)) + "…" : text
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }

    public var description: String { reason }
    public var errorDescription: String? { reason }
}
