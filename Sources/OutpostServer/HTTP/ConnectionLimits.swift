import Foundation
public import Logging

/// How long a connection may take and how many may be open: the server's defence against connections that
/// send nothing, or send a request slowly or never finish it (docs/sync.md, "Connection limits").
///
/// - An **idle** connection (no request being read or answered) is closed after ``idleTimeout``.
/// - A request's **head** (request line and headers) must arrive within ``headerTimeout`` of its first byte.
/// - A request's **body** must not pause longer than ``bodyTimeout`` between two reads.
/// - At most ``maxConnections`` are open. When a new one arrives at the cap, the connection that has waited
///   longest without a request being answered (idle, or still sending its head) is closed to make room, so a
///   flood of idle connections cannot keep `/health` or a real device out; when every open connection is
///   being answered, the new one is closed at once.
///
/// A request being answered (a handler running, a long poll waiting) has no deadline here.
public struct ConnectionLimits: Sendable, Hashable {
    /// The most connections open at once.
    public var maxConnections: Int
    /// How long a connection with no request in progress stays open.
    public var idleTimeout: Duration
    /// How long a request's head may take, from its first byte.
    public var headerTimeout: Duration
    /// The longest pause while a request's body is read.
    public var bodyTimeout: Duration

    /// Creates connection limits.
    public init(maxConnections: Int, idleTimeout: Duration, headerTimeout: Duration, bodyTimeout: Duration) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// The defaults: 4,096 connections, 60 s idle, 20 s for a head, 30 s of silence in a body.
    public static let standard = ConnectionLimits(
        maxConnections: 4_096,
        idleTimeout: .seconds(60),
        headerTimeout: .seconds(20),
        bodyTimeout: .seconds(30)
    )

    /// These limits within what the process may open: raises the soft limit on open files to the hard limit,
    /// and lowers ``maxConnections`` (with a warning) when the files the process may open cannot hold them
    /// plus the store's and a margin.
    public func fittedToProcess(logger: Logger) -> ConnectionLimits {
        var limits = self
        var files = rlimit()
        guard getrlimit(Self.openFilesResource, &files) == 0 else { return limits }
        if files.rlim_cur < files.rlim_max {
            var raised = files
            raised.rlim_cur = files.rlim_max
            if setrlimit(Self.openFilesResource, &raised) == 0 { files = raised }
        }
        let margin = 64
        let available = files.rlim_cur == rlim_t.max ? Int.max : Int(clamping: files.rlim_cur) - margin
        if limits.maxConnections > available {
            limits.maxConnections = max(1, available)
            logger.warning(
                "the process may open \(files.rlim_cur) files; serving at most \(limits.maxConnections) connections instead of \(maxConnections) (raise 'ulimit -n' to allow more)"
            )
        }
        return limits
    }

    #if canImport(Glibc)
    private static let openFilesResource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let openFilesResource = RLIMIT_NOFILE
    #endif
}
