import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostCommandLine

/// `outpost outbox list|show|retry|discard`: the changes the server refused one by one, held aside on this
/// device while the rest of the outbox flows (protocol/README.md, "Per-change refusals").
struct OutboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "List, show, retry or discard the changes the server refused.",
        discussion: """
            A change the server refuses on its own (outside the token's scope, not allowed to its role, invalid \
            under the server's model) is held aside on this device, and the rest of the outbox is pushed. It is \
            never sent again until retried, and never lost until discarded with a reason.
            """,
        subcommands: [List.self, Show.self, Retry.self, Discard.self],
        defaultSubcommand: List.self
    )

    /// The one line `outpost status` and `outpost sync` print when changes are held aside.
    static func refusedLine(_ held: Int, new: Int = 0) -> String {
        "\(held) change\(held == 1 ? "" : "s") refused by the server\(new > 0 ? " (\(new) in this sync)" : "")"
            + " and held aside; see them with 'outpost outbox list'"
    }

    /// Reads a change id: `replica/counter`, or this replica's counter alone.
    static func changeID(_ text: String, replica: ReplicaID) throws -> ChangeID {
        if let id = ChangeID(text) { return id }
        if let first = text.first, first != "0", text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let counter = UInt64(text)
        {
            return ChangeID(replica: replica, counter: counter)
        }
        throw CLIError.input(
            "'\(text)' is not a change id; give replica/counter (as 'outpost outbox list' prints it) or the counter"
        )
    }

    /// A refused change as `list --json` and `show --json` print it.
    struct Entry: Encodable {
        var id: String
        var record: String
        var field: String
        var operation: String
        var state: String
        var code: String
        var message: String
        var errorField: String?
        var refusedAt: String
        var refusals: Int
        var discardReason: String?
        var discardedBy: String?
        var discardedAt: String?

        init(_ refused: RefusedOutboxChange) {
            id = refused.id.description
            record = refused.change.record.description
            field = refused.change.field
            operation = refused.change.operation.rawValue
            state = refused.state.rawValue
            code = refused.code
            message = refused.message
            errorField = refused.field
            refusedAt = Format.millis(refused.refusedAtMillis)
            refusals = refused.refusals
            discardReason = refused.discardReason
            discardedBy = refused.discardedBy
            discardedAt = refused.discardedAtMillis.map(Format.millis)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the refused changes held aside (and, with --discarded, those discarded)."
        )
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var output: OutputOptions
        @Flag(help: "Include the changes discarded, with their reasons.") var discarded = false

        func run() throws {
            let store = try storeOptions.open()
            let entries = try store.store.refusedChanges(includingDiscarded: discarded).map(Entry.init)
            if output.json {
                try Terminal.json(entries)
                return
            }
            guard !entries.isEmpty else {
                print("no refused changes\(discarded ? "" : " held aside")")
                return
            }
            for entry in entries {
                print(
                    "\(entry.id)  \(entry.state)  \(entry.record).\(entry.field)  \(entry.code): \(entry.message)"
                )
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one refused change and why it was refused."
        )
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: ArgumentHelp("The change's id (replica/counter, or the counter).", valueName: "id"))
        var id: String

        func run() throws {
            let store = try storeOptions.open()
            let refused = try store.store.refusedChange(try OutboxCommand.changeID(id, replica: store.store.replicaID))
            let entry = Entry(refused)
            if output.json {
                try Terminal.json(entry)
                return
            }
            let change = refused.change
            print("change:   \(entry.id)")
            print("state:    \(entry.state)")
            print(
                "edit:     \(entry.operation) \(entry.record).\(entry.field) = \(TablePrinter.printable(change.value.description))"
            )
            print("by:       \(change.author)\(change.site.map { " at \($0)" } ?? "") at \(Format.clock(change.clock))")
            print("refused:  \(entry.code)\(entry.errorField.map { " (\($0))" } ?? ""): \(entry.message)")
            print("when:     \(entry.refusedAt) (\(entry.refusals) time\(entry.refusals == 1 ? "" : "s"))")
            if let reason = entry.discardReason {
                print(
                    "discarded: \(entry.discardedAt ?? "?") by \(entry.discardedBy ?? "?"): \(reason)"
                )
            }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retry",
            abstract: "Send refused changes again with the next sync (once the cause is fixed).",
            discussion: "A change refused again is held aside again, with the new reason."
        )
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: ArgumentHelp("The change's id (replica/counter, or the counter).", valueName: "id"))
        var id: String?
        @Flag(help: "Retry every refused change held aside.") var all = false

        func validate() throws {
            guard (id != nil) != all else {
                throw ValidationError("give one change id or --all, not both; 'outpost outbox list' shows the ids")
            }
        }

        func run() throws {
            let store = try storeOptions.open()
            if all {
                let count = try store.store.retryAllRefused()
                print("\(count) refused change\(count == 1 ? "" : "s") will be sent again with the next sync")
                return
            }
            let change = try OutboxCommand.changeID(id ?? "", replica: store.store.replicaID)
            try store.store.retryRefused(change)
            print("\(change) will be sent again with the next sync")
        }
    }

    struct Discard: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "discard",
            abstract: "Give up a refused change for good; the reason is kept ('outpost outbox list --discarded').",
            discussion: """
                The change is never sent again, and this device withdraws it: the record reads again as on the \
                server and the other devices, which never see it (the change log keeps it, marked discarded, for \
                'outpost audit'). When the values it replaced came to this device in a snapshot, the next sync \
                bootstraps again to bring them back, keeping the outbox.
                """
        )
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: ArgumentHelp("The change's id (replica/counter, or the counter).", valueName: "id"))
        var id: String
        @Option(help: ArgumentHelp("Why the change may be lost (kept with the discard).", valueName: "text"))
        var reason: String?

        func validate() throws {
            guard let reason, !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ValidationError("discard needs --reason TEXT: say why this change may be lost")
            }
        }

        func run() throws {
            let store = try storeOptions.open()
            let change = try OutboxCommand.changeID(id, replica: store.store.replicaID)
            let rebootstrap = try store.store.discardRefused(change, reason: reason ?? "")
            print("\(change) discarded; it will not be sent ('outpost outbox list --discarded' keeps the reason)")
            if rebootstrap {
                print(
                    "the values it replaced come back with the next sync, which bootstraps again (the outbox is kept)"
                )
            }
        }
    }
}
