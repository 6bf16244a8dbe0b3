import ArgumentParser
import OutpostClient

/// `outpost compact`: drops superseded values the server has acknowledged from this replica's change log.
struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Drop superseded values the server has acknowledged from this replica's history.",
        discussion: """
            By the rule the server compacts by (docs/sync.md, "Compaction"): a change received from the \
            server, or one of this device's the server stored, whose value a later write replaced; never a change \
            waiting to be sent, refused or discarded, never a field in conflict, never the fields the scorecard \
            dates (subgroup, patient status, care gaps, task status). Current values, lists, exports and sync are \
            unchanged; 'outpost history' and 'outpost audit' no longer show the dropped values. Explicit, never \
            automatic.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    mutating func run() throws {
        let store = try storeOptions.open()
        let report = try store.store.compactHistory()
        if output.json {
            try Terminal.json(report)
            return
        }
        print(
            "dropped \(report.dropped) of \(report.examined) changes in the history (\(report.rowsDeleted) rows removed)"
        )
    }
}
