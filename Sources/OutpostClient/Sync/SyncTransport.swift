public import Foundation
import OutpostProtocol

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

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
    /// The JSON body, for a `POST`.
    public var body: Data?
    /// How long to wait for an answer, in seconds.
    public var timeout: Double

    /// Creates a request.
    public init(method: String, path: String, query: [(String, String)] = [], body: Data? = nil, timeout: Double = 30) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.timeout = timeout
    }

    public static func == (lhs: TransportRequest, rhs: TransportRequest) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.body == rhs.body
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

    /// Creates a response.
    public init(status: Int, body: Data) {
        self.status = status
        self.body = body
    }
}

/// The real transport: HTTP/1.1 through Foundation's URLSession (libcurl on Linux).
public struct HTTPTransport: SyncTransport {
    /// The server's base URL.
    public let baseURL: URL
    let token: String
    let session: URLSession

    /// Creates a transport to `baseURL` that presents `token`.
    public init(baseURL: URL, token: String) {
        self.baseURL = baseURL
        self.token = token
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.timeoutIntervalForResource = 120
        session = URLSession(configuration: configuration)
    }

    public func send(_ request: TransportRequest) async throws -> TransportResponse {
        var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false)
        let base = components?.path ?? ""
        components?.path = (base.hasSuffix("/") ? String(base.dropLast()) : base) + request.path
        if !request.query.isEmpty {
            components?.queryItems = request.query.map { URLQueryItem(name: $0.0, value: $0.1) }
        }
        guard let url = components?.url else { throw URLError(.badURL) }
        var urlRequest = URLRequest(url: url, timeoutInterval: request.timeout)
        urlRequest.httpMethod = request.method
        urlRequest.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        urlRequest.setValue(String(OutpostVersion.wireProtocol), forHTTPHeaderField: Wire.protocolHeader)
        if let body = request.body {
            urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
            urlRequest.httpBody = body
        }
        let (data, response) = try await session.data(for: urlRequest)
        return TransportResponse(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }
}
