import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// `outpost audit`: who changed what, where and when.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List who changed what, where and when, resolutions and their reasons included.",
        discussion: """
            Reads this replica's change log, which is append-only: entries are never edited or removed. A \
            replica that bootstrapped from a snapshot holds history from then on.
            """
    )
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Only this patient and its records.", valueName: "patient-id")) var patient: String?
    @Option(help: ArgumentHelp("Only changes from this day on (YYYY-MM-DD, UTC).", valueName: "date")) var since:
        String?

    struct Entry: Encodable {
        var at: String
        var author: String
        var site: String?
        var device: String
        var record: String
        var field: String
        var operation: String
        var value: Value
        var change: String
        /// A refused change of this replica given up with `outpost outbox discard`: never sent to the server.
        var discarded: Discard?
    }

    struct Discard: Encodable {
        var reason: String
        var by: String
        var at: String
    }

    func run() async throws {
        var sinceMillis: UInt64?
        if let since {
            guard let date = CalendarDate(since) else {
                throw CLIError.input("--since takes a date YYYY-MM-DD, for example 2026-11-01")
            }
            sinceMillis = UInt64(max(0, date.daysSinceEpoch)) * 86_400_000
        }
        let store = try storeOptions.open()
        if let patient { _ = try RecordOutput.require(patient, .patient, in: store) }
        var discards: [ChangeID: Discard] = [:]
        for refused in try store.store.refusedChanges(includingDiscarded: true) where refused.state == .discarded {
            discards[refused.id] = Discard(
                reason: refused.discardReason ?? "",
                by: refused.discardedBy ?? "",
                at: refused.discardedAtMillis.map(Format.millis) ?? ""
            )
        }
        let entries = try store.store.changes(owner: patient, sinceMillis: sinceMillis).map { change in
            Entry(
                at: Format.clock(change.clock),
                author: change.author,
                site: change.site,
                device: change.id.replica.rawValue,
                record: change.record.id,
                field: change.field,
                operation: change.operation.rawValue,
                value: change.value,
                change: change.id.description,
                discarded: discards[change.id]
            )
        }
        if output.json {
            try Terminal.json(entries)
            return
        }
        Terminal.table(
            ["when", "author", "site", "device", "record", "field", "op", "value"],
            entries.map {
                [$0.at, $0.author, $0.site ?? "", $0.device, $0.record, $0.field, $0.operation, $0.value.description]
            },
            empty: "no changes"
        )
        for entry in entries {
            guard let discard = entry.discarded else { continue }
            print(
                "\(entry.change) was refused by the server and discarded by \(discard.by) at \(discard.at): "
                    + "\(discard.reason)"
            )
        }
    }
}
