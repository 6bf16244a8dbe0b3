import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostCommandLine
import OutpostModel
import OutpostServer

/// `outpost-server conflicts`: the umbrella store's open conflicts, read from the server's state.
struct ConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List and show the open conflicts of one practice, as the server holds them.",
        discussion: "Resolve them from a replica: 'outpost conflicts resolve ID --pick N --reason TEXT'.",
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    /// The practice option: required when the store holds more than one.
    struct PracticeOption: ParsableArguments {
        @Option(help: ArgumentHelp("The practice (default: the only practice).", valueName: "practice-id"))
        var practice: String?

        func resolve(in store: any AdminStorage) async throws -> String {
            if let practice {
                guard try await store.practice(practice) != nil else {
                    throw ValidationError("no practice \(practice); list them with 'outpost-server practice list'")
                }
                return practice
            }
            let all = try await store.practices()
            guard all.count == 1 else {
                throw ValidationError("the store has \(all.count) practices; name one with --practice")
            }
            return all[0].id
        }
    }

    struct Row: Encodable {
        var id: String
        var type: String
        var field: String
        var values: Int
        var since: String
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List a practice's open conflicts."
        )
        @OptionGroup var data: DataOptions
        @OptionGroup var practice: PracticeOption
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            let store = try await data.openStore()
            let conflicts = try await store.conflicts(practice: try await practice.resolve(in: store), id: nil)
            let rows = conflicts.map {
                Row(
                    id: $0.id,
                    type: $0.conflict.record.type,
                    field: $0.conflict.field,
                    values: $0.conflict.values.count,
                    since: CalendarDate.dateTime(millis: $0.detectedAtMillis)
                )
            }
            if json {
                try JSONOutput.print(rows)
            } else if rows.isEmpty {
                print("no open conflicts")
            } else {
                TablePrinter.print(
                    ["ID", "FIELD", "VALUES", "SINCE"],
                    rows.map { [$0.id, "\($0.type).\($0.field)", String($0.values), $0.since] }
                )
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show every concurrent value of a conflict: who, where, which device, when."
        )
        @OptionGroup var data: DataOptions
        @OptionGroup var practice: PracticeOption
        @Argument(help: ArgumentHelp("The conflict's id (RECORD-ID.field).", valueName: "id")) var id: String
        @Flag(help: "Print JSON instead of a table.") var json = false

        struct Value: Encodable {
            var index: Int
            var value: OutpostCRDT.Value
            var author: String
            var site: String?
            var device: String
            var at: String
            var provisional: Bool
        }

        func run() async throws {
            let store = try await data.openStore()
            guard
                let found = try await store.conflicts(practice: try await practice.resolve(in: store), id: id).first
            else {
                throw ValidationError(
                    "no open conflict '\(id)' in this practice; list them with 'outpost-server conflicts list'"
                )
            }
            let values = found.conflict.values.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) }.enumerated().map {
                Value(
                    index: $0.offset + 1,
                    value: $0.element.value,
                    author: $0.element.author,
                    site: $0.element.site,
                    device: $0.element.id.replica.rawValue,
                    at: CalendarDate.dateTime(millis: $0.element.clock.millis),
                    provisional: $0.element.id == found.conflict.provisionalWinner.id
                )
            }
            if json {
                try JSONOutput.print(values)
                return
            }
            print(
                "conflict \(found.id): \(found.conflict.record.type).\(found.conflict.field), open since \(CalendarDate.dateTime(millis: found.detectedAtMillis))"
            )
            TablePrinter.print(
                ["#", "VALUE", "AUTHOR", "SITE", "DEVICE", "WHEN", ""],
                values.map {
                    [
                        String($0.index), $0.value.description, $0.author, $0.site ?? "", $0.device, $0.at,
                        $0.provisional ? "<- shown until resolved" : "",
                    ]
                }
            )
        }
    }
}
