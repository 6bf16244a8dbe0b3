public import OutpostProtocol

/// How an `outpost-server` runs.
public struct ServerConfiguration: Sendable {
    /// The data directory: the store, and the bootstrap admin token on first start.
    public var dataDirectory: String
    /// The address to listen on.
    public var host: String
    /// The port to listen on; 0 picks a free one (it is printed once listening).
    public var port: Int
    /// Request limits.
    public var limits: Limits
    /// How far ahead of the server's clock a pushed change may be.
    public var maxClockSkewMillis: UInt64
    /// Connection timeouts and the cap on open connections.
    public var connections: ConnectionLimits

    /// Creates a configuration.
    public init(
        dataDirectory: String,
        host: String = "127.0.0.1",
        port: Int = 8787,
        limits: Limits = .standard,
        maxClockSkewMillis: UInt64 = 5 * 60 * 1000,
        connections: ConnectionLimits = .standard
    ) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.limits = limits
        self.maxClockSkewMillis = maxClockSkewMillis
        self.connections = connections
    }
}
