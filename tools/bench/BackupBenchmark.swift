import ArgumentParser
import Foundation
import OutpostClient
import OutpostModel
import OutpostSamples

/// `outpost-server backup` and `restore` on a generated practice, against the real server.
struct BackupBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Backup and restore of a practice's server store, and a device's first sync after the restore.",
        discussion: """
            Starts the outpost-server built beside this benchmark (SQLite, or --database), pushes the generated \
            practice into it from one device, then times 'outpost-server backup' while the server serves, a \
            plain copy of the store file beside it (SQLite only: the floor a file copy would cost), 'restore' into \
            the stopped server, and the device's first sync after the restore (a new epoch: it bootstraps again).
            """
    )

    @Option(help: "Seed of the generated practice.") var seed: UInt64 = 1
    @Option(help: "Practice size: small, medium or reference.") var size: String = "reference"
    @Option(
        help: ArgumentHelp(
            "A PostgreSQL database (postgres://USER@HOST:PORT/DB) holding no store yet.",
            valueName: "url"
        )
    )
    var database: String?

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
    }

    func run() async throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let folder = URL(
            fileURLWithPath: NSTemporaryDirectory() + "outpost-bench-backup-\(getpid())",
            isDirectory: true
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("server").path
        print(
            "outpost-bench backup --seed \(seed) --size \(size)"
                + (database.map { " --database \(BenchServer.redacted($0))" } ?? "")
        )
        var server = try BenchServer(data: data, database: database)
        defer { server.stop() }

        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let device = try CareStore.create(at: folder.appendingPathComponent("device.sqlite").path)
        try device.importPractice(dump)
        var options = SyncEngine.Options()
        options.pushBatch = 5_000
        options.pageSize = 5_000
        let changes = try device.store.status().pendingChanges
        _ = try await server.engine(device, options).sync()

        let file = folder.appendingPathComponent("practice.backup").path
        var output = ""
        let backup = try await SyncBenchmark.measure { output = try server.admin(["backup", "--out=\(file)"]) }
        let bytes = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.intValue ?? 0
        print(
            "backup while serving: \(StoreBenchmark.format(backup)) for \(dump.records.count) records and \(changes) "
                + "changes, \(StoreBenchmark.mebibytes(bytes)) file (the process, start to exit; it said: "
                + "\(output.trimmingCharacters(in: .whitespacesAndNewlines)))"
        )
        if database == nil {
            let store = data + "/outpost-server.sqlite"
            let copy = try await SyncBenchmark.measure {
                try FileManager.default.copyItem(atPath: store, toPath: folder.appendingPathComponent("copy").path)
            }
            print(
                "plain copy of the store file (not consistent while serving; the floor): \(StoreBenchmark.format(copy)) "
                    + "(backup: \(StoreBenchmark.ratio(backup, copy)) of it)"
            )
        }

        server.stop()
        let restore = try await SyncBenchmark.measure { output = try server.admin(["restore", file, "--force"]) }
        print(
            "restore into the stopped server: \(StoreBenchmark.format(restore)) (\(output.split(separator: "\n").first ?? ""))"
        )

        server = try BenchServer(data: data, database: database)
        var report = SyncReport()
        let first = try await SyncBenchmark.measure { report = try await server.engine(device, options).sync() }
        print(
            "the device's first sync after the restore: \(StoreBenchmark.format(first)) (bootstrapped "
                + "again: \(report.bootstrapped), the store's records already held; sent again \(report.resent) changes)"
        )
    }
}
