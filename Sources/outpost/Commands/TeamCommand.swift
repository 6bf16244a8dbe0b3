import ArgumentParser
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost team ...`
struct TeamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "team",
        abstract: "Add, list, show and change care teams and their members.",
        subcommands: [
            AddRecord<TeamKind>.self, ListRecords<TeamKind>.self, ShowRecord<TeamKind>.self, SetFields<TeamKind>.self,
            TeamMember.self,
        ]
    )
}

struct TeamMember: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "member",
        abstract: "Add people to a team or remove them.",
        subcommands: [Change.self, Remove.self]
    )

    struct Change: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a person to a team.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: ArgumentHelp("The team's id.", valueName: "team-id")) var team: String
        @Argument(help: ArgumentHelp("The person's id.", valueName: "person-id")) var person: String

        mutating func run() throws {
            let store = try storeOptions.open()
            let record = try RecordOutput.require(team, .team, in: store)
            try store.update([.add(record.ref, "members", .string(person))])
            print("\(team): \(person) added")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a person from a team.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: ArgumentHelp("The team's id.", valueName: "team-id")) var team: String
        @Argument(help: ArgumentHelp("The person's id.", valueName: "person-id")) var person: String

        mutating func run() throws {
            let store = try storeOptions.open()
            let record = try RecordOutput.require(team, .team, in: store)
            guard record.values("members").contains(.string(person)) else {
                throw CLIError.input("\(person) is not a member of \(team); see 'outpost team show \(team)'")
            }
            try store.update([.remove(record.ref, "members", .string(person))])
            print("\(team): \(person) removed")
        }
    }
}
