import ArgumentParser
import Foundation
import OutpostModel
import OutpostSamples

/// FHIR Bulk Data NDJSON in and out of the reference practice, beside Outpost's own JSON import, in one run:
/// each step is the real `outpost` executable (the one beside this benchmark) as a child process, timed
/// from spawn to exit, its peak memory read from its own `/proc/<pid>/status`. The stores are plain
/// (`--no-encrypt`): what encryption costs is `outpost-bench store`'s to show.
struct FHIRBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fhir",
        abstract: "Export and import the reference practice as FHIR NDJSON, beside 'outpost import' of its JSON.",
        discussion: """
            Steps, each in a new store: 'outpost import' of the practice's JSON dump (the baseline); \
            'outpost fhir export --out DIR' of that store (Bulk Data NDJSON, one file per resource type); \
            'outpost fhir import DIR' of the export into another new store. Each step's wall time and peak \
            memory are printed, the FHIR steps also as a ratio to the JSON import of the same run. Figures \
            measured while other work runs on the machine are 'under load'.
            """
    )

    @Option(help: "Seed of the generated practice.")
    var seed: UInt64 = 1

    @Option(help: "Practice size: small, medium or reference.")
    var size: String = "reference"

    @Option(help: "Runs of each step; the best time and the highest peak are reported.")
    var runs: Int = 1

    @Option(help: "Folder for the stores and files (default: a new temporary folder, removed afterwards).")
    var directory: String?

    @Flag(help: "Say the figures were measured on an otherwise idle machine (default: labelled 'under load').")
    var idle = false

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let outpost = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("outpost").path
        guard FileManager.default.isExecutableFile(atPath: outpost) else {
            throw ValidationError("no outpost executable beside outpost-bench; build the outpost product too")
        }
        let folder = URL(
            fileURLWithPath: directory ?? NSTemporaryDirectory() + "outpost-bench-fhir-\(getpid())",
            isDirectory: true
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(at: folder) } }

        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let json = folder.appendingPathComponent("practice.json").path
        try Data(dump.jsonText().utf8).write(to: URL(fileURLWithPath: json))
        let label = idle ? "idle machine" : "under load"
        print("practice: seed \(seed), size \(size), \(dump.records.count) records; best of \(runs) run(s); \(label)")

        var steps: [String: (best: Duration, peak: Int)] = [:]
        func record(_ name: String, _ elapsed: Duration, _ peak: Int) {
            let held = steps[name] ?? (Duration.seconds(1_000_000), 0)
            steps[name] = (min(held.best, elapsed), max(held.peak, peak))
        }
        let clock = ContinuousClock()
        var ndjsonBytes = 0
        var resources = 0
        for run in 1...runs {
            let source = folder.appendingPathComponent("json-\(run).sqlite").path
            _ = try StoreBenchmark.spawn([outpost, "init", "--no-encrypt", "--store", source])
            var start = clock.now
            var peak = try StoreBenchmark.spawn([outpost, "import", "--store", source, json])
            record("outpost import (JSON)", clock.now - start, peak)

            let out = folder.appendingPathComponent("ndjson-\(run)").path
            start = clock.now
            peak = try StoreBenchmark.spawn([outpost, "fhir", "export", "--store", source, "--out", out])
            record("outpost fhir export (NDJSON)", clock.now - start, peak)
            (ndjsonBytes, resources) = try Self.measureFolder(out)

            let target = folder.appendingPathComponent("fhir-\(run).sqlite").path
            _ = try StoreBenchmark.spawn([outpost, "init", "--no-encrypt", "--store", target])
            start = clock.now
            peak = try StoreBenchmark.spawn([outpost, "fhir", "import", "--store", target, out])
            record("outpost fhir import (NDJSON)", clock.now - start, peak)
        }
        print(
            "NDJSON: \(resources) resources, \(StoreBenchmark.mebibytes(ndjsonBytes)); practice JSON "
                + StoreBenchmark.mebibytes(
                    (try? FileManager.default.attributesOfItem(atPath: json)[.size] as? Int) ?? 0
                )
        )
        let baseline = steps["outpost import (JSON)"]?.best ?? .seconds(1)
        let table: [[String]] =
            [["step (\(label))", "wall", "vs JSON import", "peak memory"]]
            + ["outpost import (JSON)", "outpost fhir export (NDJSON)", "outpost fhir import (NDJSON)"].map { name in
                let step = steps[name] ?? (.zero, 0)
                return [
                    name, StoreBenchmark.format(step.best), StoreBenchmark.ratio(step.best, baseline),
                    StoreBenchmark.mebibytes(step.peak),
                ]
            }
        let widths = (0..<4).map { column in table.map { $0[column].count }.max() ?? 0 }
        for row in table {
            print(
                zip(row, widths).map { cell, width in cell.padding(toLength: width, withPad: " ", startingAt: 0) }
                    .joined(separator: "  ")
            )
        }
        print("")
        print(
            "reproduce: swift build -c release --scratch-path .build-release --product outpost-bench && swift build "
                + "-c release --scratch-path .build-release --product outpost && .build-release/release/outpost-bench "
                + "fhir --seed \(seed) --size \(size) --runs \(runs)"
        )
    }

    /// The bytes and lines (resources) of the `.ndjson` files in `path`.
    static func measureFolder(_ path: String) throws -> (bytes: Int, lines: Int) {
        var bytes = 0
        var lines = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: path) where name.hasSuffix(".ndjson") {
            guard let data = FileManager.default.contents(atPath: path + "/" + name) else { continue }
            bytes += data.count
            lines += data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        }
        return (bytes, lines)
    }
}
