import ArgumentParser
import OutpostCRDT
import OutpostModel
import OutpostSamples

/// Applies the reference practice's creation changes to an in-memory CRDT document.
struct ApplyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Generate a practice, turn it into field-write changes and apply them to a CRDT Document."
    )

    @Option(help: "Seed of the generated practice.")
    var seed: UInt64 = 1

    @Option(help: "Practice size: small, medium or reference.")
    var size: String = "reference"

    @Option(help: "Runs; the best is reported.")
    var runs: Int = 3

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let clock = ContinuousClock()
        let generationStart = clock.now
        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let generation = clock.now - generationStart
        let changes = try dump.changes(
            replica: ReplicaID(unchecked: "bench"),
            clock: Timestamp(millis: PracticeGenerator.asOf.millis),
            author: "per_bench"
        )
        print("practice: seed \(seed), size \(size), \(dump.records.count) records, \(changes.count) changes")
        print("generation: \(format(generation))")

        var best: Duration?
        var fieldCount = 0
        for run in 1...runs {
            var document = Document(schema: CareModel.schema)
            let start = clock.now
            try document.apply(changes)
            let elapsed = clock.now - start
            fieldCount = document.records.values.reduce(0) { $0 + $1.sortedFields.count }
            print("run \(run): \(format(elapsed))")
            if best.map({ elapsed < $0 }) ?? true { best = elapsed }
        }
        guard let best else { return }
        let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
        let rate = Int(Double(changes.count) / max(seconds, 1e-9))
        print("best of \(runs): \(format(best)), \(rate) changes/s, \(fieldCount) fields in the document")
        print("reproduce: swift run -c release outpost-bench apply --seed \(seed) --size \(size) --runs \(runs)")
    }

    private func format(_ duration: Duration) -> String {
        let millis = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return "\(Int(millis.rounded())) ms"
    }
}
