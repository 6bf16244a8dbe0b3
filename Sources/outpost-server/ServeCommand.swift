import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import OutpostModel
import OutpostProtocol
import OutpostServer
import Prometheus

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the sync server.",
        discussion: """
            Listens on HOST:PORT (port 0 picks a free port) and prints 'listening on http://HOST:PORT' once \
            ready. SIGINT or SIGTERM stops it gracefully. Logs go to stderr as key=value lines with request \
            ids and no patient data.
            """
    )

    @OptionGroup var data: DataOptions
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on; 0 picks a free one.") var port = 8787
    @Option(help: "The name of the practice created on first start.") var practiceName = "My practice"
    @Option(help: "How far ahead of the server's clock a change may be, in seconds.") var maxClockSkew = 300
    @Option(help: "The log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
    @Option(help: "Failed authentications an address or a token prefix may make per window before 429s.")
    var maxAuthFailures = 30
    @Option(help: "The window in which failed authentications are counted, in seconds.")
    var authFailureWindow = 60
    @Option(help: "A PEM certificate chain to serve HTTPS with (with --tls-key).") var tlsCert: String?
    @Option(help: "The PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "The most connections open at once; at the cap, the longest-idle one is closed for a new one.")
    var maxConnections = ConnectionLimits.standard.maxConnections
    @Option(help: "Seconds a connection with no request in progress stays open.")
    var idleTimeout = Self.seconds(ConnectionLimits.standard.idleTimeout)
    @Option(help: "Seconds a request's headers may take to arrive, from its first byte.")
    var headerTimeout = Self.seconds(ConnectionLimits.standard.headerTimeout)
    @Option(help: "The longest pause, in seconds, while a request's body is read.")
    var bodyTimeout = Self.seconds(ConnectionLimits.standard.bodyTimeout)

    @Option(
        help: ArgumentHelp(
            "Mebibytes of whole-practice snapshot pages kept in memory for the next new device (docs/sync.md, "
                + "'Snapshot pages kept for the next device'); 0 keeps none.",
            valueName: "MiB"
        )
    )
    var snapshotCache = ServerConfiguration.standardSnapshotCacheMiB
    @Option(
        help: ArgumentHelp(
            "Seconds a snapshot page built ahead (as the page before it is sent) waits for the device's request "
                + "before it is dropped.",
            valueName: "seconds"
        )
    )
    var pageAheadWait = 10

    @Option(help: ArgumentHelp("Run 'compact' this often (24h, 7d); off unless given.", valueName: "interval"))
    var compactEvery: String?
    @Option(
        help: ArgumentHelp("With --compact-every: the devices' horizon (see 'compact --horizon').", valueName: "age")
    )
    var compactHorizon = "90d"

    private static func seconds(_ duration: Duration) -> Int { Int(duration.components.seconds) }

    mutating func validate() throws {
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be at least 1") }
        for (name, value) in [("idle", idleTimeout), ("header", headerTimeout), ("body", bodyTimeout)] where value <= 0
        {
            throw ValidationError("--\(name)-timeout must be a positive number of seconds")
        }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard maxClockSkew > 0 else { throw ValidationError("--max-clock-skew must be a positive number of seconds") }
        guard (0...65_536).contains(snapshotCache) else {
            throw ValidationError("--snapshot-cache must be 0 to 65536 MiB")
        }
        guard (1...3_600).contains(pageAheadWait) else {
            throw ValidationError("--page-ahead-wait must be 1 to 3600 seconds")
        }
        guard maxAuthFailures > 0 else { throw ValidationError("--max-auth-failures must be at least 1") }
        guard (1...86_400).contains(authFailureWindow) else {
            throw ValidationError("--auth-failure-window must be 1 to 86400 seconds")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
        }
        if let compactEvery, DevicesCommand.millis(compactEvery) == nil {
            throw ValidationError("--compact-every takes an interval like 24h or 7d, not '\(compactEvery)'")
        }
        guard DevicesCommand.millis(compactHorizon) != nil else {
            throw ValidationError("--compact-horizon takes an age like 90d, not '\(compactHorizon)'")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
        }
    }

    mutating func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "outpost-server")
        let directory = data.directory
        let clock = SystemWallClock()
        // Before anything is opened or written: the address and port are free (bound once and let go).
        try await SyncServer.checkCanListen(host: host, port: port)
        let store = try await ServerBackends.open(
            databaseURL: data.databaseURL,
            directory: directory,
            create: true,
            serving: true,
            logger: logger
        )
        // On SQLite, held while serving: a restore is refused meanwhile (ServerLock).
        let lock = data.databaseURL == nil ? try ServerLock(directory: directory, exclusive: false) : nil
        var configuration = ServerConfiguration(
            dataDirectory: directory,
            host: host,
            port: port,
            maxClockSkewMillis: UInt64(maxClockSkew) * 1000,
            connections: ConnectionLimits(
                maxConnections: maxConnections,
                idleTimeout: .seconds(idleTimeout),
                headerTimeout: .seconds(headerTimeout),
                bodyTimeout: .seconds(bodyTimeout)
            ),
            tls: tlsCert.flatMap { cert in tlsKey.map { .init(certificate: cert, privateKey: $0) } }
        )
        configuration.maxAuthFailuresPerMinute = maxAuthFailures
        configuration.authFailureWindowSeconds = UInt64(authFailureWindow)
        configuration.snapshotCacheBytes = snapshotCache << 20
        configuration.pageAheadWaitMillis = UInt64(pageAheadWait) * 1_000
        let host = host
        if configuration.tls == nil && !ServerConfiguration.isLoopback(host) {
            logger.warning(
                "serving plain HTTP on \(host): tokens and patient data cross the network in the clear; serve HTTPS with --tls-cert and --tls-key, or put a TLS proxy in front"
            )
        }
        let scheme = configuration.tls == nil ? "http" : "https"
        let app = try SyncServer.makeApplication(
            configuration: configuration,
            store: store,
            clock: clock,
            registry: registry,
            logger: logger
        ) { port in
            FileHandle.standardOutput.write(Data("listening on \(scheme)://\(host):\(port)\n".utf8))
        }
        // Nothing is created before the server is known to start: the address and port are free (checked first)
        // and the TLS files readable (read above), so a failed first start leaves no practice or admin token.
        if let bootstrap = try await SyncServer.bootstrapIfNeeded(
            store: store,
            directory: directory,
            practiceName: practiceName,
            clock: clock
        ) {
            // Unbuffered: a supervisor or a test reading this output sees it at once.
            FileHandle.standardOutput.write(
                Data(
                    ("created practice \(bootstrap.practice.id) (\(bootstrap.practice.name))\n"
                        + "admin token written to \(bootstrap.tokenFile) (readable only by you)\n").utf8
                )
            )
        }
        let compaction = compactEvery.flatMap(DevicesCommand.millis).map { interval in
            CompactCommand.schedule(
                store: store,
                intervalMillis: interval,
                horizonMillis: DevicesCommand.millis(compactHorizon) ?? 0,
                logger: logger
            )
        }
        defer { compaction?.cancel() }
        var stopped: (any Error)?
        do {
            try await app.runService()
        } catch {
            stopped = error
        }
        // Writes queued without being waited for (a device's position after a pull) are written before the lock
        // is let go.
        await store.finishWrites()
        if let stopped { throw ServerCommandError.runtime("the server stopped: \(stopped)") }
        lock?.release()
    }
}
