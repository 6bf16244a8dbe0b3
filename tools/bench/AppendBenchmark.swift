import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostSamples

/// Appending to one long log (a task's notes): each round appends the same number of notes on a replica and
/// pushes them to the real server. An append must cost the same whatever the log's length, so every round
/// should take about as long as the first.
struct AppendBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Rounds of notes appended to one task, committed locally and pushed to the real outpost-server."
    )

    @Option(help: "Notes appended per round.") var notes: Int = 5_000
    @Option(help: "Rounds.") var rounds: Int = 3
    @Option(help: "Notes per local transaction.") var perCommit: Int = 100

    func validate() throws {
        guard notes >= 1, rounds >= 1, perCommit >= 1 else {
            throw ValidationError("--notes, --rounds and --per-commit must be at least 1")
        }
    }

    func run() async throws {
        let folder = URL(
            fileURLWithPath: NSTemporaryDirectory() + "outpost-bench-append-\(getpid())",
            isDirectory: true
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try BenchServer(data: folder.appendingPathComponent("server").path)
        defer { server.stop() }
        print("outpost-bench append --notes \(notes) --rounds \(rounds) --per-commit \(perCommit)")

        let dump = PracticeGenerator(seed: 1, size: .small).generate()
        let store = try CareStore.create(at: folder.appendingPathComponent("replica.sqlite").path)
        try store.importPractice(dump)
        var options = SyncEngine.Options()
        options.pushBatch = 5_000
        options.pageSize = 5_000
        let engine = SyncBenchmark().engine(store, server, WireCounter(), options)
        _ = try await engine.sync()
        let task = try requireTask(dump)

        var length = 0
        for round in 1...rounds {
            let commit = try await SyncBenchmark.measure {
                var batch: [Edit] = []
                for index in 0..<notes {
                    batch.append(.append(task, "notes", .string("Visit note \(round).\(index)")))
                    if batch.count == perCommit {
                        _ = try store.update(batch)
                        batch.removeAll()
                    }
                }
                if !batch.isEmpty { _ = try store.update(batch) }
            }
            let push = try await SyncBenchmark.measure { _ = try await engine.sync() }
            length += notes
            print(
                "round \(round): log of \(length) notes; \(notes) appended locally in \(StoreBenchmark.format(commit)), "
                    + "pushed in \(StoreBenchmark.format(push))"
            )
        }
    }

    private func requireTask(_ dump: PracticeDump) throws -> RecordRef {
        guard let task = dump.records.first(where: { $0.type == "task" }) else {
            throw ValidationError("the generated practice has no task")
        }
        return RecordRef(type: "task", id: task.id)
    }
}
