import ArgumentParser
import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostSamples

/// Store sizes before and after coordinated compaction, on a year of the reference practice's activity, and the
/// time `outpost-server compact` and `outpost compact` take.
struct CompactionBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compaction",
        abstract: "Server and device store sizes before and after compaction of a year of activity.",
        discussion: """
            A device imports the practice and pushes it; two sites bootstrap. Every month each site makes --edits \
            edits (task priority and due date, a task note, a patient's phone) and all three sync. Then the \
            server compacts (the real 'outpost-server compact') and a site compacts its own history \
            (LocalStore.compactHistory, as 'outpost compact'). Sizes are the SQLite pages in use (page_count - \
            freelist_count), and the file after VACUUM. With --database the server runs on PostgreSQL: its sizes \
            are the store's tables with their indexes and TOAST (pg_total_relation_size), as they are and after \
            VACUUM FULL.
            """
    )

    @Option(help: "Seed of the generated practice.") var seed: UInt64 = 1
    @Option(help: "Practice size: small, medium or reference.") var size: String = "reference"
    @Option(help: "Months of activity.") var months: Int = 12
    @Option(help: "Edits per site per month.") var edits: Int = 10_000
    @Option(
        help: ArgumentHelp(
            "A PostgreSQL database (postgres://USER@HOST:PORT/DB) holding no store yet: the server runs on it.",
            valueName: "url"
        )
    )
    var database: String?

    func validate() throws { try BenchServer.validate(database: database) }

    func run() async throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else {
            throw ValidationError("--size must be small, medium or reference")
        }
        let folder = URL(fileURLWithPath: NSTemporaryDirectory() + "outpost-bench-compact-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try BenchServer(data: folder.appendingPathComponent("server").path, database: database)
        defer { server.stop() }
        print(
            "outpost-bench compaction --seed \(seed) --size \(size) --months \(months) --edits \(edits)"
                + (database.map { " --database \(BenchServer.redacted($0))" } ?? "")
        )

        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let seedStore = try CareStore.create(at: folder.appendingPathComponent("seed.sqlite").path)
        try seedStore.importPractice(dump)
        var options = SyncEngine.Options()
        options.pushBatch = 5_000
        options.pageSize = 5_000
        func engine(_ store: CareStore) -> SyncEngine { server.engine(store, options) }
        _ = try await engine(seedStore).sync()
        let sitePaths = ["site-a", "site-b"].map { folder.appendingPathComponent("\($0).sqlite").path }
        let sites = try sitePaths.map { try CareStore.create(at: $0) }
        for site in sites { _ = try await engine(site).sync() }
        let tasks = dump.records.filter { $0.type == "task" }.map { RecordRef(type: "task", id: $0.id) }
        let patients = dump.records.filter { $0.type == "patient" }.map { RecordRef(type: "patient", id: $0.id) }
        var generator = SeededGenerator(seed: seed &+ 7)
        for month in 0..<months {
            for (index, site) in sites.enumerated() {
                var batch: [Edit] = []
                for edit in 0..<edits {
                    let task = StoreBenchmark.pick(tasks, &generator)
                    switch generator.next() % 4 {
                    case 0:
                        batch.append(
                            .assign(task, "priority", .string(StoreBenchmark.pick(["routine", "urgent"], &generator)))
                        )
                    case 1:
                        let due = PracticeGenerator.asOf.adding(days: month * 30 + Int(generator.next() % 90))
                        batch.append(.assign(task, "dueDate", .string(due.description)))
                    case 2:
                        batch.append(
                            .append(task, "notes", .string("Called; left a message (\(month)-\(index)-\(edit))."))
                        )
                    default:
                        let phone = "(406) 555-\(String(format: "%04d", Int(generator.next() % 10_000)))"
                        batch.append(.assign(StoreBenchmark.pick(patients, &generator), "phone", .string(phone)))
                    }
                    if batch.count == 500 {
                        _ = try site.update(batch)
                        batch.removeAll()
                    }
                }
                if !batch.isEmpty { _ = try site.update(batch) }
                _ = try await engine(site).sync()
            }
        }
        for store in [seedStore] + sites { _ = try await engine(store).sync() }
        for store in [seedStore] + sites { _ = try await engine(store).sync() }
        let exported = try sites[0].store.records(ofType: "patient").count

        let serverPath = server.data + "/outpost-server.sqlite"
        let none: (used: Int, vacuumed: Int) = (0, 0)
        let serverBefore = database == nil ? try Self.size(serverPath) : none
        let tablesBefore = database == nil ? [] : try Self.tableSizes(server)
        let deviceBefore = try Self.size(sitePaths[0])
        let clock = ContinuousClock()
        let start = clock.now
        let report = try server.admin(["compact", "--horizon=90d"])
        let serverTime = clock.now - start
        let serverAfter = database == nil ? try Self.size(serverPath) : none
        let tablesAfter = database == nil ? [] : try Self.tableSizes(server)
        let deviceStart = clock.now
        let local = try sites[0].store.compactHistory()
        let deviceTime = clock.now - deviceStart
        let deviceAfter = try Self.size(sitePaths[0])
        // Nothing a device reads changed, and a device bootstrapping now reads the same.
        let late = try CareStore.create(at: folder.appendingPathComponent("late.sqlite").path)
        _ = try await engine(late).sync()
        for store in [seedStore] + sites { _ = try await engine(store).sync() }
        let same =
            try sites[0].store.records(ofType: "patient").count == exported
            && late.store.records(ofType: "task").count == sites[0].store.records(ofType: "task").count

        print("activity: \(months) months x 2 sites x \(edits) edits = \(months * 2 * edits) edits")
        print(report.split(separator: "\n").map { "server compact: " + $0 }.joined(separator: "\n"))
        if database == nil {
            let kept = Self.percent(serverAfter.used, serverBefore.used)
            let used = "\(Self.mb(serverBefore.used)) in use before, \(Self.mb(serverAfter.used)) after (\(kept) kept)"
            let vacuumed =
                "file after VACUUM \(Self.mb(serverAfter.vacuumed)) (before: \(Self.mb(serverBefore.vacuumed)))"
            let took = "compact took \(StoreBenchmark.format(serverTime)) (the whole command, process start included)"
            print("server store: \(used); \(vacuumed); \(took)")
        } else {
            print(
                "server store (PostgreSQL): compact took \(StoreBenchmark.format(serverTime)) (the whole command, "
                    + "process start included); tables with indexes and TOAST, as they are and after VACUUM FULL:"
            )
            for (before, after) in zip(tablesBefore, tablesAfter) {
                let was = "before \(Self.mb(before.size)) (\(Self.mb(before.vacuumed)) vacuumed)"
                let kept = Self.percent(after.vacuumed, before.vacuumed)
                let now = "after \(Self.mb(after.size)) (\(Self.mb(after.vacuumed)) vacuumed, \(kept) kept)"
                print("  \(before.table): \(was), \(now)")
            }
        }
        print(
            "device store (site A): \(Self.mb(deviceBefore.used)) in use before, \(Self.mb(deviceAfter.used)) after "
                + "(\(Self.percent(deviceAfter.used, deviceBefore.used)) kept); file after VACUUM "
                + "\(Self.mb(deviceAfter.vacuumed)) (before: \(Self.mb(deviceBefore.vacuumed))); dropped "
                + "\(local.dropped) of \(local.examined) changes in \(StoreBenchmark.format(deviceTime))"
        )
        print("reads after compaction unchanged, a new device bootstraps the same: \(same)")
    }

    /// Pages in use, and the file's size after VACUUM, of a copy (the store itself is left as it is).
    static func size(_ path: String) throws -> (used: Int, vacuumed: Int) {
        let queue = try DatabaseQueue(path: path)
        let used = try queue.inDatabase { db -> Int in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            let size = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            return (pages - free) * size
        }
        let copy = path + ".vacuumed"
        try? FileManager.default.removeItem(atPath: copy)
        try queue.inDatabase { db in try db.execute(sql: "VACUUM INTO ?", arguments: [copy]) }
        let vacuumed = (try FileManager.default.attributesOfItem(atPath: copy)[.size] as? Int) ?? 0
        try? FileManager.default.removeItem(atPath: copy)
        return (used, vacuumed)
    }

    /// The PostgreSQL store's tables, largest first with the whole store last (`total`): each one's size with its
    /// indexes and TOAST as it is, then after VACUUM FULL (which rewrites it without its dead rows).
    static func tableSizes(_ server: BenchServer) throws -> [(table: String, size: Int, vacuumed: Int)] {
        let tables = ["change", "record", "device_patient", "patient_scope", "patient_site", "conflict", "audit"]
        func sizes() throws -> [String: Int] {
            let list = tables.map { "'\($0)'" }.joined(separator: ", ")
            var found: [String: Int] = [:]
            for row in try server.psql(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relname IN (\(list)) "
                    + "AND relnamespace = 'public'::regnamespace"
            ) where row.count == 2 {
                found[row[0]] = Int(row[1]) ?? 0
            }
            found["total"] = found.values.reduce(0, +)
            return found
        }
        let before = try sizes()
        _ = try server.psql("VACUUM FULL \(tables.map { "\"\($0)\"" }.joined(separator: ", "))")
        let after = try sizes()
        return (tables.sorted { before[$0] ?? 0 > before[$1] ?? 0 } + ["total"]).map {
            ($0, before[$0] ?? 0, after[$0] ?? 0)
        }
    }

    static func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

    static func percent(_ part: Int, _ whole: Int) -> String {
        whole == 0 ? "-" : String(format: "%.0f%%", 100 * Double(part) / Double(whole))
    }
}
