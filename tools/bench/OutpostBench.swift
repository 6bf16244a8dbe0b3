import ArgumentParser

/// Benchmarks (never tests): each prints its figures and the command that reproduces them.
@main
struct OutpostBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost-bench",
        abstract: "Outpost's benchmarks. Run in release mode: swift run -c release outpost-bench <name>.",
        subcommands: [
            ApplyBenchmark.self, StoreBenchmark.self, SyncBenchmark.self, GeneratePractice.self,
            ScorecardBenchmark.self, ScopeBenchmark.self, AppendBenchmark.self, FHIRBenchmark.self,
            ReadsBenchmark.self, BackupBenchmark.self, CompactionBenchmark.self, WireBenchmark.self,
        ]
    )
}
