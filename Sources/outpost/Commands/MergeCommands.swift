import ArgumentParser
import OutpostClient
import OutpostModel

/// `outpost patient merge KEEP DUPLICATE --reason TEXT`: merges a duplicate patient into the one kept.
struct MergePatients: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge a duplicate patient into the one kept (undo with 'outpost patient unmerge').",
        discussion: """
            The duplicate is retired with a link to the patient kept; its tasks, observations, encounters and \
            notes follow that patient, and scorecards and the panel count the person once. Identity, subgroup, \
            team and consent values that differ are kept both and wait in 'outpost conflicts list'; values the \
            kept patient lacks are taken from the duplicate. The merge syncs and is audited with the reason. \
            Docs: docs/model.md, "Duplicate merges".
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: ArgumentHelp("The patient to keep.", valueName: "keep")) var keep: String
    @Argument(help: ArgumentHelp("The duplicate to retire into it.", valueName: "duplicate")) var duplicate: String
    @Option(help: ArgumentHelp("Why the two are one person (kept in the audit trail).", valueName: "text"))
    var reason: String

    mutating func run() throws {
        let store = try storeOptions.open()
        let summary = try store.merge(keep: keep, duplicate: duplicate, reason: reason)
        if output.json {
            try Terminal.json(
                MergeReport(
                    survivor: summary.survivor,
                    duplicate: summary.duplicate,
                    conflicts: summary.conflicts,
                    filled: summary.filled
                )
            )
            return
        }
        print("\(summary.duplicate): merged into \(summary.survivor)")
        if !summary.filled.isEmpty { print("taken from the duplicate: " + summary.filled.joined(separator: ", ")) }
        if !summary.conflicts.isEmpty {
            print(
                "values that differ, now in 'outpost conflicts list': "
                    + summary.conflicts.map { "\(summary.survivor).\($0)" }.joined(separator: ", ")
            )
        }
    }

    /// `--json` output.
    struct MergeReport: Encodable {
        var survivor: String
        var duplicate: String
        var conflicts: [String]
        var filled: [String]
    }
}

/// `outpost patient unmerge DUPLICATE --reason TEXT`: undoes a merge.
struct UnmergePatient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmerge",
        abstract: "Undo the merge of a duplicate patient: it is a patient of its own again.",
        discussion: """
            Its link is cleared, so its tasks, observations, encounters and notes follow it again. Values the \
            merge copied onto the kept patient stay there; resolve them with 'outpost conflicts resolve'.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The merged duplicate.", valueName: "duplicate")) var duplicate: String
    @Option(help: ArgumentHelp("Why the merge is undone (kept in the audit trail).", valueName: "text"))
    var reason: String

    mutating func run() throws {
        let store = try storeOptions.open()
        let survivor = try store.patientMerges().survivor(of: duplicate)
        try store.unmerge(duplicate, reason: reason)
        print("\(duplicate): unmerged" + (survivor == duplicate ? "" : " from \(survivor)"))
    }
}
