import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// `outpost history RECORD`
struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show every value each field of a record has had, with who, where and when."
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: ArgumentHelp("The record's id, for example pat_01JD….", valueName: "id")) var id: String
    @Option(help: ArgumentHelp("Only this field.", valueName: "field")) var field: String?

    struct Entry: Encodable {
        var change: String
        var field: String
        var operation: String
        var value: Value
        var replaces: [String]
        var clock: String
        var at: String
        var author: String
        var site: String?
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let record = try RecordOutput.require(id, nil, in: store)
        let changes = try store.store.history(of: record.ref).filter { field == nil || $0.field == field }
        let entries = changes.map { change in
            Entry(
                change: change.id.description,
                field: change.field,
                operation: change.operation.rawValue,
                value: change.value,
                replaces: change.replaces.map(\.description),
                clock: change.clock.description,
                at: Format.clock(change.clock),
                author: change.author,
                site: change.site
            )
        }
        if output.json {
            try Terminal.json(entries)
            return
        }
        Terminal.table(
            ["when", "field", "op", "value", "author", "site", "change"],
            entries.map { [$0.at, $0.field, $0.operation, $0.value.description, $0.author, $0.site ?? "", $0.change] },
            empty: "no history"
        )
    }
}
