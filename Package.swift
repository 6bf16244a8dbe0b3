// swift-tools-version:6.1
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Outpost",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "OutpostCRDT", targets: ["OutpostCRDT"]),
        .library(name: "OutpostModel", targets: ["OutpostModel"]),
        .library(name: "OutpostProtocol", targets: ["OutpostProtocol"]),
        .library(name: "OutpostFHIR", targets: ["OutpostFHIR"]),
        .library(name: "OutpostClient", targets: ["OutpostClient"]),
        .library(name: "OutpostServer", targets: ["OutpostServer"]),
        .executable(name: "outpost", targets: ["outpost"]),
        .executable(name: "outpost-server", targets: ["outpost-server"]),
        .executable(name: "outpost-bench", targets: ["outpost-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
        // Already in the graph through Hummingbird; named because the server's HTTP channel and the client's
        // transport import them.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        // The client's HTTP: URLSession on Linux aborts the process on a response cut off inside its headers.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Already in the graph through AsyncHTTPClient; named because the client trusts a private CA with it.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        // gzip for the heavy sync messages (zlib, through NIO byte buffers): a maintained binding, not a hand-written
        // compressor; on the reference practice it cuts the binary bootstrap from 12.0 to 4.0 MB.
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        // The server's PostgreSQL backend (docs/postgres.md): the wire client and its connection pool.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // Clocks, ids, field states and merge: no I/O, no clock reads, no randomness.
        .target(name: "OutpostCRDT", swiftSettings: upcoming),
        // The care model: record types, the merge-policy table, validation, the practice generator.
        .target(name: "OutpostModel", dependencies: ["OutpostCRDT"], swiftSettings: upcoming),
        // Wire messages and the pure sync session state machine.
        .target(
            name: "OutpostProtocol",
            dependencies: [
                "OutpostModel",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: upcoming
        ),
        // FHIR R4 <-> care model mapping (docs/fhir.md): pure, no storage, no file IO.
        .target(name: "OutpostFHIR", dependencies: ["OutpostModel"], swiftSettings: upcoming),
        // Statements bound and read through SQLite's C API (GRDB's own SQLite module), without GRDB's argument
        // boxing: the hot rows of the device's store and of the server's (BoundStatements.swift).
        .target(
            name: "OutpostSQLite",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: upcoming
        ),
        // Local store (GRDB), outbox, sync engine.
        .target(
            name: "OutpostClient",
            dependencies: [
                "OutpostProtocol",
                "OutpostFHIR",
                "OutpostSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                // Encryption at rest (docs/store.md): AES-GCM from Crypto, scrypt from _CryptoExtras.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                // On Linux, AES-GCM through OpenSSL's libcrypto: each seal and open a few C calls with the key's
                // schedule made once, where Crypto's took about twice as long (docs/store.md, "Encryption at
                // rest"). A system library, no build time; on Apple platforms Crypto (CryptoKit) seals alone.
                .target(name: "COpenSSLCrypto", condition: .when(platforms: [.linux])),
                // The HTTP client: Foundation's URLSession on Linux aborts the process on a response cut off
                // inside its headers (docs/sync.md, "The client's HTTP").
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: upcoming
        ),
        // OpenSSL's libcrypto, the device's AES-GCM on Linux (Debian: libssl-dev, which .ci/run installs).
        .systemLibrary(name: "COpenSSLCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libdeflate, the server's gzip (Debian: libdeflate-dev, which .ci/run installs).
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // Sync server and the umbrella store.
        .target(
            name: "OutpostServer",
            dependencies: [
                "OutpostProtocol",
                // gzip for snapshot and pull pages, about twice as fast as zlib at the same level
                // (Sources/OutpostServer/Routes/PageCompression.swift); a system library, no build time.
                "CDeflate",
                // The push path's change rows and record loads, bound through SQLite's C API.
                "OutpostSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The HTTP/1 channel with connection deadlines and a connection cap (Sources/OutpostServer/HTTP).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // `serve` binds its address once before it starts (SyncServer.checkCanListen).
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: upcoming
        ),
        // What both executables share: how a command starts and fails (exit codes, one error line), and tables.
        .target(
            name: "OutpostCommandLine",
            // OutpostCRDT for DisplayControl: the tables escape what the care model refuses in text, by one definition.
            dependencies: ["OutpostCRDT", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "outpost",
            dependencies: [
                "OutpostClient",
                "OutpostFHIR",
                "OutpostCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "outpost-server",
            dependencies: [
                "OutpostServer",
                "OutpostCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: upcoming
        ),
        // Generated sample practices (invented names) for tests and benchmarks; not linked by apps.
        .target(name: "OutpostSamples", dependencies: ["OutpostModel"], swiftSettings: upcoming),
        // Benchmarks (not tests): `swift run -c release outpost-bench --help`.
        .executableTarget(
            name: "outpost-bench",
            dependencies: [
                "OutpostClient",
                "OutpostSamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "tools/bench",
            swiftSettings: upcoming
        ),
        // Reusable law checkers, the seeded generator and test clocks.
        .target(name: "OutpostTestSupport", dependencies: ["OutpostModel"], swiftSettings: upcoming),
        .testTarget(
            name: "OutpostCRDTTests",
            dependencies: ["OutpostCRDT", "OutpostTestSupport"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OutpostClientTests",
            dependencies: [
                "OutpostClient", "OutpostSQLite", "OutpostTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OutpostProtocolTests",
            dependencies: ["OutpostProtocol", "OutpostTestSupport"],
            resources: [.copy("Golden")],
            swiftSettings: upcoming
        ),
        // Runs the built `outpost` and `outpost-server` executables as a user would.
        .testTarget(
            name: "OutpostCLITests",
            dependencies: [
                "OutpostClient", "OutpostSamples", "OutpostTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OutpostServerTests",
            dependencies: [
                "OutpostServer", "OutpostClient", "OutpostSQLite", "OutpostTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OutpostFHIRTests",
            dependencies: ["OutpostFHIR", "OutpostTestSupport"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OutpostCommandLineTests",
            dependencies: ["OutpostCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "OutpostModelTests",
            dependencies: ["OutpostModel", "OutpostSamples", "OutpostTestSupport"],
            swiftSettings: upcoming
        ),
    ]
)
