import ArgumentParser
import OutpostClient
import OutpostModel

/// `outpost patient duplicates`: likely duplicate patients, with a score and the evidence.
struct ListDuplicates: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplicates",
        abstract: "List likely duplicate patients (for example registered twice while offline) with a score.",
        discussion: """
            Names are compared with accents and case folded and one typo allowed; birth dates allow one digit \
            or day and month swapped; phone, MRN and address must be equal. The evidence names the fields that \
            matched. Retired patients are left out.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Only pairs scoring at least this (0 to 1).", valueName: "score"))
    var minScore = PatientDuplicates.threshold

    mutating func validate() throws {
        guard (0...1).contains(minScore) else { throw ValidationError("--min-score takes a number from 0 to 1") }
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let pairs = PatientDuplicates.find(try store.records(.patient), threshold: minScore)
        if output.json {
            try Terminal.json(pairs)
            return
        }
        Terminal.table(
            ["patient", "other", "score", "evidence"],
            pairs.map {
                [$0.first, $0.second, String(Double(Int($0.score * 100)) / 100), $0.evidence.joined(separator: ", ")]
            }
        )
    }
}
