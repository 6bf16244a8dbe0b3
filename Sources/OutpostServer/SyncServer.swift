import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
public import OutpostCRDT
import OutpostProtocol
public import Prometheus

/// The sync server: builds the Hummingbird application over a backend (``ServerStore`` or ``PostgresStore``).
///
/// ```swift
/// let store = try ServerStore(directory: dir, create: true, logger: logger)
/// let app = SyncServer.makeApplication(configuration: .init(dataDirectory: dir), store: store, logger: logger)
/// try await app.runService()
/// ```
public enum SyncServer {
    /// What the first start of a data directory created: its practice and the admin token's file.
    public struct Bootstrap: Sendable {
        /// The practice created.
        public var practice: PracticeEntry
        /// The file holding the admin token's secret, readable only by its owner.
        public var tokenFile: String
    }

    /// The file name of the bootstrap admin token in a data directory.
    public static let adminTokenFileName = "admin-token"

    /// On a data directory with no practice yet: adds one and writes an admin token for it to
    /// `admin-token`, mode 0600. Returns `nil` when the directory already has a practice.
    public static func bootstrapIfNeeded(
        store: any AdminStorage,
        directory: String,
        practiceName: String,
        clock: any WallClock
    ) async throws(ServerError) -> Bootstrap? {
        var generator = SystemRandomNumberGenerator()
        let now = clock.nowMillis()
        guard let practice = try await store.addFirstPractice(name: practiceName, now: now, generator: &generator)
        else { return nil }
        let issued = try await store.issueToken(
            practice: practice.id,
            role: .admin,
            scope: .practice,
            label: "bootstrap admin",
            expiresAtMillis: nil,
            person: nil,
            now: now
        )
        try? FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let path = (directory as NSString).appendingPathComponent(adminTokenFileName)
        let created = FileManager.default.createFile(
            atPath: path,
            contents: Data((issued.secret.text + "\n").utf8),
            attributes: [.posixPermissions: 0o600]
        )
        guard created else {
            throw ServerError.storage("cannot write the admin token to \(path); check the directory's permissions")
        }
        return Bootstrap(practice: practice, tokenFile: path)
    }

    /// Builds the application: health, readiness, metrics and the `/v1` sync endpoints.
    ///
    /// - Parameters:
    ///   - registry: the Prometheus registry the executable bootstrapped the metrics system with, served at
    ///     `/metrics`; `nil` serves an empty page.
    ///   - onListening: called with the bound port once the server accepts connections.
    /// - Throws: ``ServerError`` when the TLS certificate or key cannot be read.
    public static func makeApplication(
        configuration: ServerConfiguration,
        store: any ServerBackend,
        clock: any WallClock,
        registry: PrometheusCollectorRegistry?,
        logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(ServerError) -> some ApplicationProtocol {
        let router = Router(context: OutpostRequestContext.self)
        // Outermost first. The metrics see every answer as a response, a refusal too (ErrorBodyMiddleware, innermost,
        // turns errors into JSON bodies): Hummingbird's MetricsMiddleware times only what is returned, not thrown,
        // so 4xx answers had a count and no duration.
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: LogRequestsMiddleware(.info, includeHeaders: .none))
        router.add(middleware: ErrorBodyMiddleware())
        router.get(.init(stringLiteral: Wire.Path.health)) { _, _ in
            try ServerError.jsonResponse(["status": "ok"], status: .ok)
        }
        router.get(.init(stringLiteral: Wire.Path.ready)) { _, _ in
            _ = try await store.feedHead(practice: "")
            return try ServerError.jsonResponse(["status": "ready"], status: .ok)
        }
        let kept = SnapshotCache(policy: .init(maxBytes: configuration.snapshotCacheBytes))
        router.get(.init(stringLiteral: Wire.Path.metrics)) { _, _ in
            Gauge(label: "outpost_snapshot_kept_bytes").record(kept.bytes)
            // Devices by how long ago they were last seen, counted at each scrape (no ids in labels).
            for (bucket, count) in try await store.deviceStaleness(now: clock.nowMillis()) {
                Gauge(label: "outpost_devices", dimensions: [("seen_within", bucket)]).record(count)
            }
            var bytes: [UInt8] = []
            registry?.emit(into: &bytes)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        let notifier = FeedNotifier()
        SyncRoutes(
            store: store,
            configuration: configuration,
            notifier: notifier,
            clock: clock,
            throttle: AuthThrottle(policy: configuration.authThrottle),
            prefetch: PagePrefetch(policy: .init(maxAgeMillis: configuration.pageAheadWaitMillis)),
            kept: kept
        ).register(on: router)
        let limits = configuration.connections.fittedToProcess(logger: logger)
        let registry = ConnectionRegistry(maxConnections: limits.maxConnections)
        let secure = configuration.tls != nil
        var server = HTTPServerBuilder { responder in
            GuardedHTTP1Channel(responder: responder, limits: limits, registry: registry, secure: secure)
        }
        if let files = configuration.tls {
            server = try tlsServer(server, files: files)
        }
        return Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            services: [FeedWatcher(store: store, notifier: notifier, logger: logger)],
            onServerRunning: { channel in
                await onListening(channel.localAddress?.port ?? configuration.port)
            },
            logger: logger
        )
    }
}

extension SyncServer {
    /// `base` behind TLS (TLS 1.2 and later) with the certificate chain and key of `files`.
    static func tlsServer(
        _ base: HTTPServerBuilder,
        files: ServerConfiguration.TLSFiles
    ) throws(ServerError)
        -> HTTPServerBuilder
    {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        } catch {
            throw ServerError.storage(
                "cannot read the TLS certificate \(files.certificate): \(error); give a PEM file (the server's "
                    + "certificate first, then any intermediates)"
            )
        }
        guard !chain.isEmpty else {
            throw ServerError.storage("\(files.certificate) holds no PEM certificate")
        }
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw ServerError.storage(
                "cannot read the TLS private key \(files.privateKey): \(error); give the certificate's key as an "
                    + "unencrypted PEM file"
            )
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        tls.minimumTLSVersion = .tlsv12
        do {
            return try .tls(base, tlsConfiguration: tls)
        } catch {
            throw ServerError.storage("the TLS certificate and key cannot be used together: \(error)")
        }
    }
}

extension SyncServer {
    /// Binds `host:port` once and lets it go: a port in use, a privileged port or an address that is not this
    /// machine's is said in words before the server opens its store or creates its first practice.
    ///
    /// - Throws: ``ServerError`` `unavailable` saying what to change.
    public static func checkCanListen(host: String, port: Int) async throws(ServerError) {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).get()
            try await channel.close()
        } catch {
            throw ServerError.storage(listenFailure(error, host: host, port: port))
        }
    }

    /// Why `host:port` cannot be listened on, and what to do.
    static func listenFailure(_ error: any Error, host: String, port: Int) -> String {
        switch (error as? IOError)?.errnoCode {
        case EADDRINUSE?:
            "port \(port) on \(host) is in use (another outpost-server?); stop what listens there, or give another "
                + "--port"
        case EACCES?:
            "port \(port) needs privileges this user does not have (ports below 1024); give a --port from 1024 up, "
                + "or put a proxy in front"
        case EADDRNOTAVAIL?:
            "\(host) is not an address of this machine; give one of its addresses with --host (127.0.0.1, or "
                + "0.0.0.0 for all)"
        default:
            "cannot listen on \(host):\(port) (\(error)); give --host an address of this machine (127.0.0.1, or "
                + "0.0.0.0 for all) and --port a free port"
        }
    }
}
