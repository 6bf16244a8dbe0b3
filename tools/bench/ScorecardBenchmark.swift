import ArgumentParser
import Foundation
import OutpostClient
import OutpostModel
import OutpostSamples

/// The value scorecard of the reference practice over a year: reading the store, computing, and memory.
struct ScorecardBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scorecard",
        abstract: "Scorecard of the reference practice over a year (2025-06-01..2026-05-31): time and memory.",
        discussion: """
            Without --store: generates the practice, imports it into a new store, then measures. With --store \
            PATH: the first run imports the practice there and stops; the next measures only opening the \
            store, reading it (CareStore.scorecardData) and computing the scorecard, so the peak memory \
            reported is the scorecard's own.
            """
    )

    @Option(help: "Seed of the generated practice.") var seed: UInt64 = 1
    @Option(help: "Practice size: small, medium or reference.") var size: String = "reference"
    @Option(help: "Runs; the best is reported.") var runs: Int = 3
    @Option(help: "The period.") var period: String = "2025-06-01..2026-05-31"
    @Option(help: "A store to read instead of importing a generated practice (made, and left, if missing).")
    var store: String?

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard ScorecardPeriod(period) != nil else { throw ValidationError("--period is not a period") }
    }

    func run() throws {
        guard let practiceSize = PracticeGenerator.Size(named: size), let period = ScorecardPeriod(period) else {
            throw ExitCode.validationFailure
        }
        let path: String
        var folder: URL?
        if let store, FileManager.default.fileExists(atPath: store) {
            path = store
        } else if let store {
            let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
            try CareStore.create(at: store).importPractice(dump)
            print("imported \(dump.records.count) records into \(store); run again with the same --store to measure")
            return
        } else {
            let directory = URL(
                fileURLWithPath: NSTemporaryDirectory() + "outpost-bench-scorecard-\(getpid())",
                isDirectory: true
            )
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            folder = directory
            path = directory.appendingPathComponent("store.sqlite").path
            let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
            let started = DispatchTime.now()
            try CareStore.create(at: path).importPractice(dump)
            print("imported \(dump.records.count) records in \(Self.millis(since: started)) ms")
            print("peak memory after import: \(StoreBenchmark.mebibytes(StoreBenchmark.peakResidentBytes()))")
        }
        defer { if let folder { try? FileManager.default.removeItem(at: folder) } }

        var readTimes: [Double] = []
        var computeTimes: [Double] = []
        var card: Scorecard?
        for _ in 0..<runs {
            let started = DispatchTime.now()
            let data = try CareStore.open(at: path).scorecardData()
            readTimes.append(Self.millis(since: started))
            let computing = DispatchTime.now()
            card = Scorecard.compute(data, period: period, by: .subgroup)
            computeTimes.append(Self.millis(since: computing))
        }
        guard let card else { return }
        let totals = zip(readTimes, computeTimes).map { $0 + $1 }
        print("scorecard \(period) by subgroup, best of \(runs):")
        print("  read store (records + history): \(Self.format(readTimes)) ms")
        print("  compute: \(Self.format(computeTimes)) ms")
        print("  total: \(Self.format(totals)) ms")
        print("peak memory (whole run): \(StoreBenchmark.mebibytes(StoreBenchmark.peakResidentBytes()))")
        print(
            "patients \(card.total.patients), member-months \(card.total.memberMonths), payment $"
                + String(format: "%.2f", Double(card.total.paymentCents) / 100) + ", cost $"
                + String(format: "%.2f", Double(card.total.costCents) / 100)
        )
        for group in card.groups {
            print(
                "  \(group.label): \(group.patients) patients, \(group.memberMonths) member-months, payment $"
                    + String(format: "%.2f", Double(group.paymentCents) / 100)
            )
        }
        print("command: swift run -c release outpost-bench scorecard --seed \(seed) --size \(size)")
    }

    static func millis(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000
    }

    static func format(_ times: [Double]) -> String {
        let best = times.min() ?? 0
        return String(format: "%.0f", best) + " (" + times.map { String(format: "%.0f", $0) }.joined(separator: " / ")
            + ")"
    }
}
