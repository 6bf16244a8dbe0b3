import ArgumentParser
import Foundation
import OutpostModel
import OutpostSamples

/// Writes a generated practice dump (docs/practice-format.md), validated, to a file.
struct GeneratePractice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a synthetic practice (outpost-practice JSON), deterministic from its seed.",
        discussion:
            "For example: swift run outpost-bench generate --seed 1 --size small --out fixtures/practice-small.json"
    )

    @Option(help: "Seed: the same seed and size give the same bytes.")
    var seed: UInt64 = 1

    @Option(help: "Practice size: small (20 patients), medium (250) or reference (2,500).")
    var size: String = "small"

    @Option(help: "Output file; standard output when omitted.")
    var out: String?

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
    }

    func run() throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        do {
            try dump.validate(today: PracticeGenerator.asOf)
        } catch {
            // Identifiers and rules only: ModelError never carries patient data.
            FileHandle.standardError.write(Data("generated practice is invalid: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let text = dump.jsonText()
        if let out {
            try Data(text.utf8).write(to: URL(fileURLWithPath: out))
            print("wrote \(dump.records.count) records to \(out)")
        } else {
            print(text, terminator: "")
        }
    }
}
