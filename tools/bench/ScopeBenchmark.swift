import ArgumentParser
import Foundation
import Logging
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostSamples

/// What a scoped device pays to pull its part of a practice, beside the admin's full pull, against the real
/// `outpost-server` on loopback (see ``BenchServer``).
struct ScopeBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scope",
        abstract: "Pull cost of scoped devices (one team, one site) vs the admin's full pull, over loopback.",
        discussion: """
            Starts the outpost-server built beside this benchmark, pushes the generated practice once with the \
            admin token, then bootstraps a new replica with: the admin token; a clinician token scoped to the \
            practice's first team; a site-device token scoped to its first site (a clinic); a site-device token \
            scoped to its home-visit site. Then the admin moves a patient of the team to another team and back, \
            and the team's device syncs after each move (incremental: no resync). Last, a nurse back from days \
            offline: the team's device pulls a backlog of the admin's edits (--backlog) alone, and while the \
            office (a whole-practice device) pushes edits of its own (--beside), each round against the office's \
            push alone. Bytes on the wire are HTTP bodies (requests and responses), without headers.
            """
    )

    @Option(help: "Seed of the generated practice.") var seed: UInt64 = 1
    @Option(help: "Practice size: small, medium or reference.") var size: String = "reference"
    @Option(help: "Edits the team device misses while offline, for its pull beside a push.") var backlog: Int = 20_000
    @Option(help: "Edits the office pushes while the team device pulls its backlog.") var beside: Int = 5_000
    @Option(help: "Rounds of the pull beside a push.") var rounds: Int = 3

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard backlog > 0, beside > 0, rounds > 0 else {
            throw ValidationError("--backlog, --beside and --rounds must be at least 1")
        }
    }

    /// One device's sync: how long, what crossed the wire, what the replica holds afterwards.
    struct Pull {
        var time: Duration
        var sent: Int
        var received: Int
        var records: Int
        var patients: Int
        var report: SyncReport
    }

    func run() async throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let folder = URL(
            fileURLWithPath: NSTemporaryDirectory() + "outpost-bench-scope-\(getpid())",
            isDirectory: true
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try BenchServer(data: folder.appendingPathComponent("server").path)
        defer { server.stop() }
        print(
            "outpost-bench scope --seed \(seed) --size \(size) --backlog \(backlog) --beside \(beside) --rounds \(rounds)"
        )
        print("server: \(server.url.absoluteString) (\(ProcessInfo.processInfo.activeProcessorCount) cores)")

        // The admin's device loads the practice and pushes all of it.
        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let adminStore = try CareStore.create(at: folder.appendingPathComponent("admin-seed.sqlite").path)
        try adminStore.importPractice(dump)
        var options = SyncEngine.Options()
        options.pushBatch = 5_000
        options.pageSize = 5_000
        let adminWire = WireCounter()
        let adminEngine = engine(adminStore, server, adminWire, options, token: server.adminToken)
        let firstPush = try await SyncBenchmark.measure { _ = try await adminEngine.sync() }
        print(
            "first push (admin): \(dump.records.count) records in \(StoreBenchmark.format(firstPush)), "
                + "\(Self.bytes(adminWire.sent)) sent"
        )

        // The scopes: the first team, the first site (a clinic), the home-visit site.
        let teams = dump.records.filter { $0.type == "team" }.map(\.id)
        let sites = dump.records.filter { $0.type == "site" }
        guard teams.count >= 2, let clinic = sites.first?.id else {
            throw ValidationError("the generated practice needs two teams and a site")
        }
        let team = teams[0]
        let homeVisits = sites.first { $0.fields["kind"] == .value(.string("home-visit")) }?.id
        let teamPatients = Set(
            dump.records.filter { $0.type == "patient" && $0.fields["primaryTeam"] == .value(.string(team)) }
                .map(\.id)
        )
        func patients(at site: String) -> Set<String> {
            Set(
                dump.records.filter { record in
                    guard record.type == "patient", case .list(let values)? = record.fields["sites"] else {
                        return false
                    }
                    return values.contains(.string(site))
                }.map(\.id)
            )
        }

        // 1-3. A new replica per token: bootstrap and pull until up to date.
        let full = try await bootstrap("admin", token: server.adminToken, server, folder, options)
        print(line("admin, whole practice", full, dump, expected: nil, full: full))
        let teamToken = try issue(server, ["--role", "clinician", "--teams", team])
        let teamPull = try await bootstrap("team", token: teamToken, server, folder, options)
        print(line("clinician, 1 of \(teams.count) teams", teamPull, dump, expected: teamPatients, full: full))
        let sitePull = try await bootstrap(
            "site",
            token: try issue(server, ["--role", "site-device", "--sites", clinic]),
            server,
            folder,
            options
        )
        print(line("site device, first clinic", sitePull, dump, expected: patients(at: clinic), full: full))
        if let homeVisits {
            let homePull = try await bootstrap(
                "home",
                token: try issue(server, ["--role", "site-device", "--sites", homeVisits]),
                server,
                folder,
                options
            )
            print(
                line("site device, home visits", homePull, dump, expected: patients(at: homeVisits), full: full)
            )
        }

        // 4. The admin moves a patient of the team to another team, then back; the team's device syncs after
        // each move, with nothing else new on the server.
        let (teamStore, teamEngine, teamWire) = teamPull.device
        teamWire.reset()
        let idle = try await measure(teamStore, teamEngine, teamWire)
        print(
            "team device, nothing new: \(StoreBenchmark.format(idle.time)), \(Self.bytes(idle.sent)) sent, "
                + "\(Self.bytes(idle.received)) received"
        )
        guard let moving = teamPatients.sorted().first else {
            throw ValidationError("the first team has no patients")
        }
        let ownRecords =
            dump.records.filter { $0.id == moving || owner(of: $0) == moving }.count
        for (label, target) in [("out of", teams[1]), ("back into", team)] {
            _ = try adminStore.update([.assign(RecordRef(type: "patient", id: moving), "primaryTeam", .string(target))])
            _ = try await adminEngine.sync()
            let move = try await measure(teamStore, teamEngine, teamWire)
            print(
                "a patient moved \(label) the team (the patient and \(ownRecords - 1) records of it): the team "
                    + "device's next sync \(StoreBenchmark.format(move.time)), \(Self.bytes(move.sent)) sent, "
                    + "\(Self.bytes(move.received)) received; \(move.report.purged) patients removed, "
                    + "\(move.report.pulled) changes pulled, bootstrapped: \(move.report.bootstrapped); "
                    + "now holds \(move.patients) patients, \(move.records) records"
            )
        }

        // 5. A nurse back from days offline: the admin makes `backlog` edits across the practice while the team
        // device is away, and its next sync pulls them through scoped pages, most of each page outside its scope.
        // Alone, then while the office (a whole-practice device, holding everything but its own new edits) pushes
        // `beside` edits: on SQLite a scoped page read inside a write transaction held the writer the push waits for.
        let (officeStore, officeEngine, _) = full.device
        _ = try await officeEngine.sync()
        _ = try await teamEngine.sync()
        var generation: UInt64 = 100
        func edits(_ store: CareStore, _ count: Int) throws {
            generation += 1
            try SyncBenchmark.makeEdits(store, dump: dump, seed: seed &+ generation, count: count)
        }
        func backlogWaiting() async throws {
            try edits(adminStore, backlog)
            _ = try await adminEngine.sync()
            _ = try await officeEngine.sync()
        }
        var pulls: [(alone: Duration, beside: Duration)] = []
        var pushes: [(alone: Duration, beside: Duration)] = []
        for round in 1...rounds {
            try await backlogWaiting()
            let pullAlone = try await measure(teamStore, teamEngine, teamWire)
            try edits(officeStore, beside)
            let pushAlone = try await SyncBenchmark.measure { _ = try await officeEngine.sync() }
            _ = try await teamEngine.sync()
            try await backlogWaiting()
            try edits(officeStore, beside)
            async let pulled = measure(teamStore, teamEngine, teamWire)
            async let pushed = SyncBenchmark.measure { _ = try await officeEngine.sync() }
            let (pullBeside, pushBeside) = try await (pulled, pushed)
            pulls.append((pullAlone.time, pullBeside.time))
            pushes.append((pushAlone, pushBeside))
            print(
                "round \(round): the team device back from offline pulls \(pullAlone.report.pulled) changes of "
                    + "\(backlog) in \(StoreBenchmark.format(pullAlone.time)) alone, "
                    + "\(StoreBenchmark.format(pullBeside.time)) (\(pullBeside.report.pulled) changes) beside the "
                    + "office's push; the office pushes \(beside) "
                    + "edits in \(StoreBenchmark.format(pushAlone)) alone, \(StoreBenchmark.format(pushBeside)) beside "
                    + "the pull"
            )
        }
        func median(_ values: [Duration]) -> String { StoreBenchmark.format(values.sorted()[values.count / 2]) }
        print(
            "a nurse back from offline, medians of \(rounds): her pull \(median(pulls.map(\.alone))) alone, "
                + "\(median(pulls.map(\.beside))) beside a push; the push \(median(pushes.map(\.alone))) alone, "
                + "\(median(pushes.map(\.beside))) beside her pull"
        )
        print("peak memory of this process: \(StoreBenchmark.mebibytes(StoreBenchmark.peakResidentBytes()))")
    }

    /// A pull together with the device that made it, for syncing it again.
    struct Bootstrapped {
        var pull: Pull
        var device: (CareStore, SyncEngine, WireCounter)
    }

    func bootstrap(
        _ name: String,
        token: String,
        _ server: BenchServer,
        _ folder: URL,
        _ options: SyncEngine.Options
    ) async throws -> Bootstrapped {
        let store = try CareStore.create(at: folder.appendingPathComponent("\(name).sqlite").path)
        let wire = WireCounter()
        let deviceEngine = engine(store, server, wire, options, token: token)
        let pull = try await measure(store, deviceEngine, wire)
        return Bootstrapped(pull: pull, device: (store, deviceEngine, wire))
    }

    /// One sync of a device, timed, with the wire counter reset before it.
    func measure(_ store: CareStore, _ deviceEngine: SyncEngine, _ wire: WireCounter) async throws -> Pull {
        wire.reset()
        var report = SyncReport()
        let time = try await SyncBenchmark.measure { report = try await deviceEngine.sync() }
        let counts = try store.store.status().recordCounts
        return Pull(
            time: time,
            sent: wire.sent,
            received: wire.received,
            records: counts.values.reduce(0, +),
            patients: counts["patient"] ?? 0,
            report: report
        )
    }

    /// A new token's secret, from `outpost-server token issue` on the server's data directory.
    func issue(_ server: BenchServer, _ arguments: [String]) throws -> String {
        let secret = try server.admin(["token", "issue"] + arguments).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else { throw ValidationError("outpost-server token issue \(arguments) failed") }
        return secret
    }

    func engine(
        _ store: CareStore,
        _ server: BenchServer,
        _ wire: WireCounter,
        _ options: SyncEngine.Options,
        token: String
    ) -> SyncEngine {
        SyncEngine(
            store: store.store,
            transport: CountingTransport(base: HTTPTransport(baseURL: server.url, token: token), counter: wire),
            options: options,
            logger: Logger(label: "bench")
        )
    }

    /// The patient a record follows, if any.
    func owner(of record: DumpRecord) -> String? {
        guard let field = CareModel.ownerField[record.type], case .value(.string(let patient))? = record.fields[field]
        else { return nil }
        return patient
    }

    /// One device's figures, with the ratios to the admin's full pull and a check against the records the
    /// scope should hold (the practice's structure and the expected patients with what follows them).
    func line(
        _ label: String,
        _ bootstrapped: Bootstrapped,
        _ dump: PracticeDump,
        expected: Set<String>?,
        full: Bootstrapped
    )
        -> String
    {
        let pull = bootstrapped.pull
        let admin = full.pull
        var text =
            "\(label): bootstrap \(StoreBenchmark.format(pull.time)), \(Self.bytes(pull.received)) received, "
            + "\(Self.bytes(pull.sent)) sent; holds \(pull.patients) patients, \(pull.records) records"
        if let expected {
            let records = dump.records.filter { record in
                if record.type == "patient" { return expected.contains(record.id) }
                if CareModel.ownerField[record.type] == nil { return true }
                return owner(of: record).map(expected.contains) ?? false
            }.count
            let exact = pull.patients == expected.count && pull.records == records
            text +=
                " (expected \(expected.count) patients, \(records) records: \(exact ? "exact" : "MISMATCH"))"
                + String(
                    format: "; vs admin: time %.1f%%, bytes %.1f%%, records %.1f%%",
                    100 * Self.seconds(pull.time) / Self.seconds(admin.time),
                    100 * Double(pull.received) / Double(max(1, admin.received)),
                    100 * Double(pull.records) / Double(max(1, admin.records))
                )
        }
        return text
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func bytes(_ count: Int) -> String {
        count < 1_000_000
            ? String(format: "%.1f kB", Double(count) / 1000) : String(format: "%.1f MB", Double(count) / 1e6)
    }
}
