import ArgumentParser
import Foundation
import Logging
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

#if canImport(FoundationNetworking)
import FoundationNetworking
import OutpostSamples
#endif

/// Sync over loopback against the real `outpost-server` (built beside this benchmark): the first push of a
/// whole practice, a new device's bootstrap, two sites' offline edits converging, and many devices syncing
/// at once.
struct SyncBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync over loopback against the real outpost-server: bootstrap, two sites converging, many devices.",
        discussion: """
            Starts the outpost-server built beside this benchmark on a free loopback port with a temporary data \
            directory, and drives OutpostClient's SyncEngine over HTTP (URLSession). Bytes on the wire are \
            HTTP bodies (requests and responses), without headers.
            """
    )

    @Option(help: "Seed of the generated practice.") var seed: UInt64 = 1
    @Option(help: "Practice size for the bootstrap and two-site runs: small, medium or reference.")
    var size: String = "reference"
    @Option(help: "Offline edits made on each of the two sites.") var edits: Int = 10_000
    @Option(help: "Devices syncing at once.") var devices: Int = 50
    @Option(help: "Concurrent sync rounds of the devices.") var rounds: Int = 5
    @Option(help: "Encoding of pushes, pull pages and snapshot pages: json or binary.") var encoding: String = "binary"
    @Option(help: "gzip of pushes, pull pages and snapshot pages: on or off.") var compression: String = "on"
    @Option(
        help: ArgumentHelp(
            "Pipelined syncs (the next push read while the server stores one, the next pull page asked for while "
                + "one is written): on or off."
        )
    )
    var pipeline: String = "on"
    @Option(help: "The binary layout the devices write and ask for (1 to 4; the server reads and writes each).")
    var layout: Int = Int(BinaryWire.latestLayout)
    @Option(help: "Milliseconds of round trip added to every exchange, as on a slow link (0: loopback as it is).")
    var latency: Int = 0
    @Option(
        help: ArgumentHelp(
            "New devices bootstrapped one after another against the same server: the first (site A of the two "
                + "sites) is sent pages the server builds, the others (at least one) the pages kept from it; each "
                + "time is printed, and the others' median."
        )
    )
    var bootstraps: Int = 1
    @Option(
        help: ArgumentHelp(
            "A PostgreSQL database (postgres://USER@HOST:PORT/DB): run only the many-devices part, on one SQLite "
                + "process and on this database with each count of --processes, in the same run.",
            valueName: "url"
        )
    )
    var database: String?
    @Option(help: "With --database: the counts of server processes to run the devices across, e.g. 1,2,3.")
    var processes: String = "1,2,3"
    @Option(
        help: ArgumentHelp(
            "The many devices' token: practice (an admin token, the whole practice) or teams (a clinician token "
                + "scoped to every team of the practice: the same records, through the scoped pull)."
        )
    )
    var fleetScope: String = "practice"

    /// The counts of `--processes`.
    var processCounts: [Int] {
        processes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard SyncEngine.Encoding(rawValue: encoding) != nil else {
            throw ValidationError("--encoding must be json or binary")
        }
        guard ["practice", "teams"].contains(fleetScope) else {
            throw ValidationError("--fleet-scope must be practice or teams")
        }
        guard ["on", "off"].contains(compression) else {
            throw ValidationError("--compression must be on or off")
        }
        guard BinaryWire.layouts.contains(where: { Int($0) == layout }) else {
            throw ValidationError("--layout must be 1 to \(BinaryWire.latestLayout)")
        }
        guard (1...20).contains(bootstraps) else {
            throw ValidationError("--bootstraps must be 1 to 20")
        }
        guard ["on", "off"].contains(pipeline) else {
            throw ValidationError("--pipeline must be on or off")
        }
        guard (0...10_000).contains(latency) else {
            throw ValidationError("--latency must be 0 to 10000 milliseconds")
        }
        guard edits >= 1, devices >= 1, rounds >= 1 else {
            throw ValidationError("--edits, --devices and --rounds must be at least 1")
        }
        let counts = processCounts
        guard counts.count == processes.split(separator: ",").count, counts.allSatisfy({ (1...16).contains($0) })
        else {
            throw ValidationError("--processes must list counts from 1 to 16, e.g. 1,2,3")
        }
        if let database, !database.hasPrefix("postgres://"), !database.hasPrefix("postgresql://") {
            throw ValidationError("--database must be a postgres:// URL")
        }
    }

    func run() async throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let folder = URL(fileURLWithPath: NSTemporaryDirectory() + "outpost-bench-sync-\(getpid())", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        if let database {
            try await compareBackends(database: database, folder: folder)
            return
        }
        let server = try BenchServer(data: folder.appendingPathComponent("server").path)
        defer { server.stop() }
        print(
            "outpost-bench sync --seed \(seed) --size \(size) --edits \(edits) --devices \(devices) --rounds \(rounds) "
                + "--encoding \(encoding) --layout \(layout) --compression \(compression) --pipeline \(pipeline) "
                + "--latency \(latency) --bootstraps \(bootstraps) --fleet-scope \(fleetScope)"
        )
        print("server: \(server.url.absoluteString) (\(ProcessInfo.processInfo.activeProcessorCount) cores)")

        // 1. A first device loads the practice and pushes all of it.
        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let seedStore = try CareStore.create(at: folder.appendingPathComponent("seed.sqlite").path)
        try seedStore.importPractice(dump)
        let pending = try seedStore.store.status().pendingChanges
        let seedWire = WireCounter()
        var options = deviceOptions
        options.pushBatch = 5_000
        options.pageSize = 5_000
        let seedEngine = engine(seedStore, server, seedWire, options)
        let firstPush = try await measure { _ = try await seedEngine.sync() }
        print(
            "first push: \(dump.records.count) records, \(pending) changes in \(StoreBenchmark.format(firstPush)), "
                + "\(megabytes(seedWire.sent)) sent, \(megabytes(seedWire.received)) received"
        )

        // 2. A new device bootstraps the practice: persisted and queryable when sync returns. The first after the
        // push is sent pages the server builds; the next new devices are sent the same pages, kept (docs/sync.md,
        // "Snapshot pages kept"), with what changed since in the pull after them.
        let siteA = try CareStore.create(at: folder.appendingPathComponent("site-a.sqlite").path)
        let wireA = WireCounter()
        let engineA = engine(siteA, server, wireA, options)
        let cpuBefore = server.cpuSeconds
        let bootstrap = try await measure { _ = try await engineA.sync() }
        let cpuBuilt = server.cpuSeconds(since: cpuBefore)
        let patients = try siteA.store.records(ofType: "patient").count
        print(
            "bootstrap: \(StoreBenchmark.format(bootstrap)) to a new replica (\(patients) patients queryable), "
                + "\(megabytes(wireA.received)) received; the first new device after the push, its pages built"
                + "\(cpuBuilt.map { String(format: ", the server's CPU %.2f s", $0) } ?? "") (target: under 1 s)"
        )
        // More new devices, one after another, each sent the pages kept from the first; each store is removed once
        // measured. A single bootstrap's time moves by a tenth from run to run on a shared VM.
        var kept: [Duration] = []
        var keptCPU: [Double] = []
        var keptWire = WireCounter()
        for index in 1..<max(2, bootstraps) {
            let path = folder.appendingPathComponent("bootstrap-\(index).sqlite").path
            do {
                // Closed (its last reference gone) before its files are removed.
                let store = try CareStore.create(at: path)
                keptWire = WireCounter()
                let device = engine(store, server, keptWire, options)
                let before = server.cpuSeconds
                kept.append(try await measure { _ = try await device.sync() })
                if let cpu = server.cpuSeconds(since: before) { keptCPU.append(cpu) }
            }
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        let sorted = kept.sorted()
        let keptMedian = (sorted[(sorted.count - 1) / 2] + sorted[sorted.count / 2]) / 2
        print(
            "bootstrap of the next new devices, pages kept: \(kept.map(StoreBenchmark.format).joined(separator: ", "))"
                + (kept.count > 1 ? "; median \(StoreBenchmark.format(keptMedian)) of \(kept.count)" : "")
                + ", \(megabytes(keptWire.received)) received"
                + (keptCPU.isEmpty
                    ? ""
                    : String(format: ", the server's CPU %.2f s each", keptCPU.reduce(0, +) / Double(keptCPU.count)))
                + " (target: under 1 s)"
        )

        // 2b. The same bootstrap into an encrypted store (a key file's key), in the same run: pages kept, so it
        // compares with the next devices above.
        let encryptedA = try CareStore.create(
            at: folder.appendingPathComponent("site-encrypted.sqlite").path,
            key: StoreBenchmark.benchKey
        )
        let encryptedEngineA = engine(encryptedA, server, WireCounter(), options)
        let encryptedBootstrap = try await measure { _ = try await encryptedEngineA.sync() }
        print(
            "bootstrap into an encrypted store, pages kept: \(StoreBenchmark.format(encryptedBootstrap)) ("
                + "\(StoreBenchmark.ratio(encryptedBootstrap, keptMedian)) of the plain store's above, measured after it)"
        )

        // 3. Two sites edit offline, then sync until converged.
        let siteB = try CareStore.create(at: folder.appendingPathComponent("site-b.sqlite").path)
        let wireB = WireCounter()
        let engineB = engine(siteB, server, wireB, options)
        _ = try await engineB.sync()
        try makeEdits(siteA, dump: dump, seed: seed &+ 11)
        try makeEdits(siteB, dump: dump, seed: seed &+ 22)
        wireA.reset()
        wireB.reset()
        wireA.keepBodies()
        wireB.keepBodies()
        // Site A pushes; site B pushes and pulls A's edits; site A pulls B's.
        let serverWrote = server.bytesWritten
        let serverCPU = server.cpuSeconds
        let (steps, devicesCPU) = try await twoSites(engineA, engineB)
        let serverCPUUsed = server.cpuSeconds(since: serverCPU)
        // What the server wrote for the syncs, and the tail rows they left for it to merge after (read before the
        // exports below, which take longer than the server waits before it merges them).
        let serverWroteAfter = server.bytesWritten
        let tailRows = try await server.recordTailRows()
        let converged = ContinuousClock.now
        let converge = steps.reduce(.zero, +)
        let same = try siteA.exportCanonicalJSON() == siteB.exportCanonicalJSON()
        print(
            "two sites, \(edits) offline edits each: converged in \(StoreBenchmark.format(converge)) "
                + "(A pushes \(StoreBenchmark.format(steps[0])), B pushes and pulls \(StoreBenchmark.format(steps[1])), "
                + "A pulls \(StoreBenchmark.format(steps[2]))) "
                + "(exports identical: \(same)); on the wire site A sent \(megabytes(wireA.sent)), received "
                + "\(megabytes(wireA.received)); site B sent \(megabytes(wireB.sent)), received "
                + "\(megabytes(wireB.received)) (targets: under 1 s, about 160 kB per side)"
        )
        let devicesCPUText = String(
            format: "  the devices' CPU %.2f s (A's push %.2f s, B's push and pull %.2f s, A's pull %.2f s)",
            devicesCPU.reduce(0, +),
            devicesCPU[0],
            devicesCPU[1],
            devicesCPU[2]
        )
        if let before = serverWrote, let after = serverWroteAfter {
            // What a push of edits spread over the practice costs the server's disk: its change rows and record
            // tails in the write-ahead log, then again in the database file at the checkpoint (docs/sync.md).
            print(
                "  the server wrote \(megabytes(after - before)) meanwhile (its store's log, checkpoints and "
                    + "answers: write and pwrite calls)"
                    + (serverCPUUsed.map { String(format: "; its CPU %.2f s", $0) } ?? "")
            )
        }
        // This process runs both devices: their CPU, the frees they hand to another thread included (a step's may
        // finish in the next).
        print(devicesCPUText)
        if let rows = tailRows, rows > 0 {
            // The pushes appended the edits to their records' tails (docs/sync.md, "The server": "A push appends edits to its records' tails");
            // the server merges them into the records once no push has come for a second. What that costs, after
            // the sites converged: the wait for it, and what the server wrote meanwhile.
            try await merged(server)
            let done = ContinuousClock.now - converged
            var written: Int?
            if let before = serverWroteAfter, let after = server.bytesWritten { written = after - before }
            print(
                "  then the server merged the \(rows) tail rows those pushes left into its records, in the background: "
                    + "done \(StoreBenchmark.format(done)) after the sites converged"
                    + (written.map { ", writing \(megabytes($0))" } ?? "")
            )
        }
        if encoding == "binary" {
            // The same messages in each binary layout, compressed as sent: what the layout alone changes. Records
            // named by abbreviation are read with the converged site A's ids, and named so again in layout 3.
            let resolve = { (abbreviations: [RecordAbbreviation]) throws -> [String?] in
                try siteA.store.resolve(abbreviations)
            }
            for layout in BinaryWire.layouts {
                let (a, b) = (
                    try wireA.recount(layout: layout, compression: compression == "on", resolving: resolve),
                    try wireB.recount(layout: layout, compression: compression == "on", resolving: resolve)
                )
                print(
                    "  the same pushes and pages in binary layout \(layout): site A sent \(megabytes(a.sent)), "
                        + "received \(megabytes(a.received)); site B sent \(megabytes(b.sent)), received "
                        + "\(megabytes(b.received))\(layout == deviceOptions.binaryLayout ? " (this run's layout)" : "")"
                )
            }
        }

        // 3b. The same with two encrypted stores, what `outpost init` makes by default, in the same run. The
        // encrypted store bootstrapped above pulls the plain sites' edits and a second one bootstraps (neither
        // measured); then each makes as many offline edits of its own (other seeds) and they sync as the plain
        // sites did. The ratio is not the cipher's cost alone: these syncs come after the plain ones, on a server
        // holding their 20,000 edits too.
        let encryptedB = try CareStore.create(
            at: folder.appendingPathComponent("site-encrypted-b.sqlite").path,
            key: StoreBenchmark.benchKey
        )
        let encryptedEngineB = engine(encryptedB, server, WireCounter(), options)
        _ = try await encryptedEngineA.sync()
        _ = try await encryptedEngineB.sync()
        try makeEdits(encryptedA, dump: dump, seed: seed &+ 33)
        try makeEdits(encryptedB, dump: dump, seed: seed &+ 44)
        let encryptedSteps = try await twoSites(encryptedEngineA, encryptedEngineB).steps
        let encryptedConverge = encryptedSteps.reduce(.zero, +)
        let encryptedSame = try encryptedA.exportCanonicalJSON() == encryptedB.exportCanonicalJSON()
        let (pushA, pushPullB, pullA) = (
            StoreBenchmark.format(encryptedSteps[0]), StoreBenchmark.format(encryptedSteps[1]),
            StoreBenchmark.format(encryptedSteps[2])
        )
        let encryptedRatio = StoreBenchmark.ratio(encryptedConverge, converge)
        print(
            "two encrypted sites, \(edits) offline edits each: converged in "
                + "\(StoreBenchmark.format(encryptedConverge)) (A pushes \(pushA), B pushes and pulls \(pushPullB), "
                + "A pulls \(pullA)) (exports identical: \(encryptedSame)); \(encryptedRatio) of the plain sites', "
                + "measured before it"
        )
        // The tail rows these pushes left merged before the many devices start.
        if !(try await merged(server)) {
            print("  the server had not merged the tail rows a minute after the sites converged; measuring on")
        }

        // 3c. The plain sites again, syncing at once instead of one after the other, as two sites that come back on
        // line together do: each pushes beside the other (the server's one writer takes their batches in turn) and
        // pulls what the other has stored so far; a second sync of both pulls the rest. Caught up first with the
        // encrypted sites' edits (not measured), then as many offline edits of their own (other seeds).
        _ = try await engineA.sync()
        _ = try await engineB.sync()
        try makeEdits(siteA, dump: dump, seed: seed &+ 55)
        try makeEdits(siteB, dump: dump, seed: seed &+ 66)
        wireA.reset()
        wireB.reset()
        var rounds: [Duration] = []
        for _ in 0..<2 {
            rounds.append(
                try await measure {
                    async let a = engineA.sync()
                    async let b = engineB.sync()
                    _ = try await (a, b)
                }
            )
        }
        let atOnce = rounds.reduce(.zero, +)
        let atOnceSame = try siteA.exportCanonicalJSON() == siteB.exportCanonicalJSON()
        print(
            "two sites syncing at once, \(edits) offline edits each: converged in \(StoreBenchmark.format(atOnce)) "
                + "(both sync: \(StoreBenchmark.format(rounds[0])), then both again: \(StoreBenchmark.format(rounds[1])))"
                + " (exports identical: \(atOnceSame)); site A sent \(megabytes(wireA.sent)), received "
                + "\(megabytes(wireA.received)); site B sent \(megabytes(wireB.sent)), received "
                + "\(megabytes(wireB.received)); \(StoreBenchmark.ratio(atOnce, converge)) of one after the other's, "
                + "measured before it"
        )
        if !(try await merged(server)) {
            print("  the server had not merged the tail rows a minute after the sites converged; measuring on")
        }
        print("peak memory of this process so far: \(StoreBenchmark.mebibytes(StoreBenchmark.peakResidentBytes()))")

        // 4. Many devices of a small practice sync at once.
        let fleet = try await fleet(across: [server], folder: folder)
        print(
            "\(devices) devices syncing at once, \(rounds) rounds of 5 edits each: \(fleet.requests) requests, "
                + "p50 \(StoreBenchmark.format(fleet.requestP50)), p99 \(StoreBenchmark.format(fleet.requestP99)) "
                + "per request; whole sync p50 \(StoreBenchmark.format(fleet.syncP50)), p99 "
                + "\(StoreBenchmark.format(fleet.syncP99)); \(fleet.errors) errors (target: p99 under 250 ms, no errors)"
        )
        print(fleet.serverSide)
    }

    /// With `--database`: the many-devices part on one SQLite process, then on the PostgreSQL database with each
    /// count of `--processes` (each run on a practice of its own, the devices spread over the processes).
    func compareBackends(database: String, folder: URL) async throws {
        print(
            "outpost-bench sync --database \(BenchServer.redacted(database)) --processes \(processes) --seed \(seed) "
                + "--devices \(devices) --rounds \(rounds) --encoding \(encoding) --compression \(compression) "
                + "--fleet-scope \(fleetScope)"
        )
        print(
            "\(ProcessInfo.processInfo.activeProcessorCount) cores; \(devices) devices, \(rounds) rounds of 5 edits each"
        )
        // Each run's processes are started just before it and stopped after it, so no run shares the machine
        // with another's idle processes.
        var runs: [(label: String, count: Int, database: String?)] = [("SQLite, 1 process", 1, nil)]
        for count in processCounts {
            runs.append(("PostgreSQL, \(count) process\(count == 1 ? "" : "es")", count, database))
        }
        for (number, run) in runs.enumerated() {
            var servers: [BenchServer] = []
            defer {
                for server in servers { server.stop() }
            }
            for index in 0..<run.count {
                servers.append(
                    try BenchServer(
                        data: folder.appendingPathComponent("run-\(number)-\(index)").path,
                        database: run.database
                    )
                )
            }
            let result = try await fleet(across: servers, folder: folder)
            print(
                "\(run.label): \(result.requests) requests, p50 \(StoreBenchmark.format(result.requestP50)), p99 "
                    + "\(StoreBenchmark.format(result.requestP99)) per request; whole sync p50 "
                    + "\(StoreBenchmark.format(result.syncP50)), p99 \(StoreBenchmark.format(result.syncP99)); "
                    + "\(result.errors) errors; \(Int(result.changesPerSecond)) changes/s pushed "
                    + "(\(result.pushed) in \(StoreBenchmark.format(result.elapsed)))"
            )
            print("  \(result.serverSide)")
        }
    }

    /// What the many devices measured.
    struct FleetResult {
        var requests = 0
        var requestP50: Duration = .zero
        var requestP99: Duration = .zero
        var syncP50: Duration = .zero
        var syncP99: Duration = .zero
        /// The servers' own view of the rounds' `/v1` requests, from their request-duration histograms: how many,
        /// the bucket bounds (seconds) their p50 and p99 fall in, and the share answered within 250 ms.
        var serverRequests = 0
        var serverP50Bound = 0.0
        var serverP99Bound = 0.0
        var serverWithin250 = 0.0
        var errors = 0
        /// Changes the servers accepted from the devices' rounds, and the rounds' wall time.
        var pushed = 0
        var elapsed: Duration = .zero

        /// The servers' view, printed: the devices' figures above include their own side of each exchange,
        /// on the same machine (the benchmark runs every device in its process, beside the server).
        var serverSide: String {
            "as the server measured the same rounds (its request histogram, /v1 routes): \(serverRequests) requests, "
                + "p50 \(SyncBenchmark.bucket(serverP50Bound)), p99 \(SyncBenchmark.bucket(serverP99Bound)), "
                + "\(Int((serverWithin250 * 100).rounded()))% within 250 ms"
        }

        var changesPerSecond: Double {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return seconds > 0 ? Double(pushed) / seconds : 0
        }
    }

    /// A new practice of `servers` with a small generated panel; `devices` devices bootstrap it, each through
    /// one of the processes in turn (as a load balancer spreads them), then edit and sync at once for `rounds`
    /// rounds.
    func fleet(across servers: [BenchServer], folder: URL) async throws -> FleetResult {
        let first = servers[0]
        let practice = try first.admin(["practice", "add", "Busy clinic"]).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let token = try first.admin(["token", "issue", "--practice", practice, "--role", "admin"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard practice.hasPrefix("pra_"), !token.isEmpty else {
            throw ValidationError("outpost-server could not add a practice or issue a token")
        }
        var options = deviceOptions
        options.pushBatch = 5_000
        options.pageSize = 5_000
        let small = PracticeGenerator(seed: seed &+ 5, size: .small).generate()
        let tag = "\(practice.suffix(8))"
        let loader = try CareStore.create(at: folder.appendingPathComponent("busy-seed-\(tag).sqlite").path)
        try loader.importPractice(small)
        _ = try await engine(loader, first, WireCounter(), options, token: token).sync()
        // The devices' token: the admin's, or a clinician's scoped to every team (the scoped pull, same records).
        var deviceToken = token
        if fleetScope == "teams" {
            let teams = small.records.filter { $0.type == "team" }.map(\.id)
            deviceToken = try first.admin(
                ["token", "issue", "--practice", practice, "--role", "clinician", "--teams"] + teams
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var fleet: [(CareStore, SyncEngine)] = []
        let latencies = LatencyLog()
        for index in 0..<devices {
            let server = servers[index % servers.count]
            let store = try CareStore.create(at: folder.appendingPathComponent("device-\(tag)-\(index).sqlite").path)
            let deviceEngine = engine(store, server, WireCounter(latencies: nil), deviceOptions, token: deviceToken)
            _ = try await deviceEngine.sync()
            fleet.append(
                (store, engine(store, server, WireCounter(latencies: latencies), deviceOptions, token: deviceToken))
            )
        }
        var syncLatencies: [Duration] = []
        var result = FleetResult()
        let histogramBefore = try await Self.requestHistogram(of: servers)
        for round in 0..<rounds {
            for (index, device) in fleet.enumerated() {
                try makeEdits(device.0, dump: small, seed: seed &+ UInt64(round * 1000 + index), count: 5)
            }
            let start = ContinuousClock.now
            let results = await withTaskGroup(of: Result<(Duration, Int), any Error>.self) { group in
                for device in fleet {
                    group.addTask {
                        do {
                            var pushed = 0
                            let duration = try await Self.measure { pushed = try await device.1.sync().pushed }
                            return .success((duration, pushed))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                var results: [Result<(Duration, Int), any Error>] = []
                for await result in group { results.append(result) }
                return results
            }
            result.elapsed += ContinuousClock.now - start
            for outcome in results {
                switch outcome {
                case .success(let (duration, pushed)):
                    syncLatencies.append(duration)
                    result.pushed += pushed
                case .failure: result.errors += 1
                }
            }
        }
        let histogram = try await Self.requestHistogram(of: servers).merging(histogramBefore.mapValues { -$0 }) {
            $0 + $1
        }
        let bounds = histogram.keys.sorted()
        let total = histogram[.infinity] ?? 0
        func bound(_ fraction: Double) -> Double {
            bounds.first { Double(histogram[$0] ?? 0) >= fraction * Double(total) } ?? .infinity
        }
        result.serverRequests = total
        result.serverP50Bound = bound(0.5)
        result.serverP99Bound = bound(0.99)
        result.serverWithin250 = total > 0 ? Double(histogram[0.25] ?? 0) / Double(total) : 0
        let requests = latencies.sorted()
        let syncs = syncLatencies.sorted()
        result.requests = requests.count
        result.requestP50 = percentile(requests, 0.5)
        result.requestP99 = percentile(requests, 0.99)
        result.syncP50 = percentile(syncs, 0.5)
        result.syncP99 = percentile(syncs, 0.99)
        return result
    }

    /// The engine's default options with the chosen encoding.
    var deviceOptions: SyncEngine.Options {
        var options = SyncEngine.Options()
        options.encoding = SyncEngine.Encoding(rawValue: encoding) ?? .binary
        options.compression = compression == "on"
        options.pipelining = pipeline == "on"
        options.binaryLayout = UInt8(layout)
        return options
    }

    func engine(
        _ store: CareStore,
        _ server: BenchServer,
        _ wire: WireCounter,
        _ options: SyncEngine.Options,
        token: String? = nil
    ) -> SyncEngine {
        SyncEngine(
            store: store.store,
            transport: CountingTransport(
                base: HTTPTransport(baseURL: server.url, token: token ?? server.adminToken),
                counter: wire,
                roundTrip: .milliseconds(latency)
            ),
            options: options,
            logger: Logger(label: "bench")
        )
    }

    /// Offline edits on one replica: task priorities, due dates and notes, patient phones; 100 per
    /// transaction.
    /// The request-duration histograms of `servers`, summed.
    static func requestHistogram(of servers: [BenchServer]) async throws -> [Double: Int] {
        var total: [Double: Int] = [:]
        for server in servers { total.merge(try await server.requestHistogram()) { $0 + $1 } }
        return total
    }

    /// How a bucket bound (seconds) is printed: "≤ 250 ms", "over 10 s".
    static func bucket(_ seconds: Double) -> String {
        seconds.isFinite ? "≤ \(Int((seconds * 1000).rounded())) ms" : "over the last bucket"
    }

    func makeEdits(_ store: CareStore, dump: PracticeDump, seed: UInt64, count: Int? = nil) throws {
        try Self.makeEdits(store, dump: dump, seed: seed, count: count ?? edits)
    }

    /// `count` edits a clinician makes in a day's round, at random across the practice: task priorities, due
    /// dates and notes, patients' phones; saved 100 at a time.
    static func makeEdits(_ store: CareStore, dump: PracticeDump, seed: UInt64, count: Int) throws {
        let tasks = dump.records.filter { $0.type == "task" }.map { RecordRef(type: "task", id: $0.id) }
        let patients = dump.records.filter { $0.type == "patient" }.map { RecordRef(type: "patient", id: $0.id) }
        var generator = SeededGenerator(seed: seed)
        var batch: [Edit] = []
        for index in 0..<count {
            let task = StoreBenchmark.pick(tasks, &generator)
            switch generator.next() % 4 {
            case 0:
                batch.append(
                    .assign(task, "priority", .string(StoreBenchmark.pick(["routine", "urgent"], &generator)))
                )
            case 1:
                let due = PracticeGenerator.asOf.adding(days: Int(generator.next() % 90)).description
                batch.append(.assign(task, "dueDate", .string(due)))
            case 2: batch.append(.append(task, "notes", .string("Called; left a message (\(index)).")))
            default:
                let phone = "(406) 555-\(String(format: "%04d", Int(generator.next() % 10_000)))"
                batch.append(.assign(StoreBenchmark.pick(patients, &generator), "phone", .string(phone)))
            }
            if batch.count == 100 {
                _ = try store.update(batch)
                batch.removeAll()
            }
        }
        if !batch.isEmpty { _ = try store.update(batch) }
    }

    /// Two sites converging: site A pushes its offline edits; site B pushes its own and pulls A's; site A pulls B's.
    /// The three syncs' times, and the CPU this process (the two devices) used in each.
    func twoSites(_ a: SyncEngine, _ b: SyncEngine) async throws -> (steps: [Duration], cpu: [Double]) {
        var steps: [Duration] = []
        var cpu: [Double] = []
        for device in [a, b, a] {
            let before = StoreBenchmark.cpuSeconds()
            steps.append(try await measure { _ = try await device.sync() })
            cpu.append(StoreBenchmark.cpuSeconds() - before)
        }
        return (steps, cpu)
    }

    /// Waits (at most a minute) until the server has merged into its records the tail rows pushes left; whether
    /// it has.
    @discardableResult
    func merged(_ server: BenchServer) async throws -> Bool {
        let start = ContinuousClock.now
        while try await server.recordTailRows() ?? 0 > 0 {
            guard ContinuousClock.now - start < .seconds(60) else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    static func measure(_ body: () async throws -> Void) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        try await body()
        return clock.now - start
    }

    func measure(_ body: () async throws -> Void) async throws -> Duration {
        try await Self.measure(body)
    }

    func megabytes(_ bytes: Int) -> String {
        bytes < 1_000_000
            ? String(format: "%.1f kB", Double(bytes) / 1000) : String(format: "%.1f MB", Double(bytes) / 1e6)
    }

    func percentile(_ sorted: [Duration], _ fraction: Double) -> Duration {
        guard !sorted.isEmpty else { return .zero }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }
}

/// Counts HTTP body bytes each way and, optionally, logs request latencies.
final class WireCounter: @unchecked Sendable {
    // `lock` guards every stored property.
    private let lock = NSLock()
    private var sentBytes = 0
    private var receivedBytes = 0
    /// With ``keepsBodies``: every body sent and received, as it crossed the wire.
    private var bodies: [(sent: Bool, body: Data)] = []
    private var keepsBodies = false
    let latencies: LatencyLog?

    init(latencies: LatencyLog? = nil) { self.latencies = latencies }

    var sent: Int { lock.withLock { sentBytes } }
    var received: Int { lock.withLock { receivedBytes } }

    func add(sent: Int, received: Int) {
        lock.withLock {
            sentBytes += sent
            receivedBytes += received
        }
    }

    /// Keeps the bodies that cross the wire from now on (``recount(layout:compression:)``).
    func keepBodies() { lock.withLock { keepsBodies = true } }

    func keep(sent: Data?, received: Data) {
        lock.withLock {
            guard keepsBodies else { return }
            if let sent { bodies.append((true, sent)) }
            bodies.append((false, received))
        }
    }

    /// The bytes sent and received had the kept binary pushes and pages been written in `layout` (compressed as
    /// the client and server compress them); other bodies as they were. A message naming records by
    /// abbreviation is read with the ids `resolving` gives, and in layout 3 names the same records so.
    func recount(
        layout: UInt8,
        compression: Bool,
        resolving: ([RecordAbbreviation]) throws -> [String?]
    ) throws -> (sent: Int, received: Int) {
        var total = (sent: 0, received: 0)
        for (sent, body) in lock.withLock({ bodies }) {
            let gzipped = body.starts(with: [0x1F, 0x8B])
            let plain = gzipped ? try WireCompression.decompress(body, limit: 1 << 30) : [UInt8](body)
            var size = body.count
            if plain.starts(with: BinaryWire.magic), plain.count > 5, let kind = BinaryWire.Kind(rawValue: plain[5]) {
                let abbreviations = try BinaryWire.abbreviations(in: plain, kind: kind)
                let resolved = try resolving(abbreviations)
                let abbreviated = Set(
                    zip(abbreviations, resolved).compactMap { abbreviation, id in
                        id.map { RecordRef(type: abbreviation.type, id: $0) }
                    }
                )
                let type: any BinaryWireMessage.Type =
                    switch kind {
                    case .pushRequest: PushRequest.self
                    case .pullResponse: PullResponse.self
                    case .snapshotPage: SnapshotPage.self
                    }
                let written = try type.init(binary: plain, resolved: resolved).binaryEncoded(layout: layout) {
                    abbreviated.contains($0)
                }
                size = compression ? WireCompression.compressIfLarge(Data(written)).body.count : written.count
            }
            if sent { total.sent += size } else { total.received += size }
        }
        return total
    }

    func reset() {
        lock.withLock {
            sentBytes = 0
            receivedBytes = 0
            bodies = []
        }
    }
}

/// Request latencies from many tasks.
final class LatencyLog: @unchecked Sendable {
    // `lock` guards `values`.
    private let lock = NSLock()
    private var values: [Duration] = []

    func add(_ duration: Duration) { lock.withLock { values.append(duration) } }
    func sorted() -> [Duration] { lock.withLock { values.sorted() } }
}

/// A transport that counts what crosses the wire and, with `roundTrip`, delays each exchange as a slow link would.
struct CountingTransport: SyncTransport {
    let base: HTTPTransport
    let counter: WireCounter
    /// Added to every exchange before it is sent, as a slow link's round trip would be (`--latency`).
    var roundTrip: Duration = .zero

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        let clock = ContinuousClock()
        let start = clock.now
        if roundTrip > .zero { try await Task.sleep(for: roundTrip) }
        let response = try await base.send(request)
        counter.latencies?.add(clock.now - start)
        counter.add(sent: request.body?.count ?? 0, received: response.body.count)
        counter.keep(sent: request.body, received: response.body)
        return response
    }
}
