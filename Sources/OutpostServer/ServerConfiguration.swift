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
    /// The certificate chain and private key to serve HTTPS with; `nil` serves plain HTTP.
    public var tls: TLSFiles?
    /// How many failed authentications an address or a token prefix may make per ``authFailureWindowSeconds``.
    public var maxAuthFailuresPerMinute = 30
    /// The sliding window in which failed authentications are counted, in seconds (a minute by default).
    public var authFailureWindowSeconds: UInt64 = 60
    /// Bytes of whole-practice snapshot pages kept for the next new device (``SnapshotCache``); 0 keeps none.
    public var snapshotCacheBytes = standardSnapshotCacheMiB << 20
    /// The mebibytes of snapshot pages kept unless configured otherwise.
    public static let standardSnapshotCacheMiB = 64
    /// How long a snapshot page built ahead waits for the device's request before it is dropped, in milliseconds
    /// (``PagePrefetch``): long enough for a device to write the page before, short enough that what it read is
    /// recent.
    public var pageAheadWaitMillis: UInt64 = 10_000

    var authThrottle: AuthThrottle.Policy {
        AuthThrottle.Policy(maxFailures: maxAuthFailuresPerMinute, windowMillis: authFailureWindowSeconds * 1_000)
    }

    /// PEM files for TLS.
    public struct TLSFiles: Sendable, Hashable {
        /// The certificate chain, the server's certificate first.
        public var certificate: String
        /// The certificate's private key.
        public var privateKey: String

        /// Creates the pair.
        public init(certificate: String, privateKey: String) {
            self.certificate = certificate
            self.privateKey = privateKey
        }
    }

    /// Whether `host` only listens on this machine (a loopback address or name).
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Creates a configuration.
    public init(
        dataDirectory: String,
        host: String = "127.0.0.1",
        port: Int = 8787,
        limits: Limits = .standard,
        maxClockSkewMillis: UInt64 = 5 * 60 * 1000,
        connections: ConnectionLimits = .standard,
        tls: TLSFiles? = nil
    ) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.limits = limits
        self.maxClockSkewMillis = maxClockSkewMillis
        self.connections = connections
        self.tls = tls
    }
}
