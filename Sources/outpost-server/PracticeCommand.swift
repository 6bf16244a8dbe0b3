import ArgumentParser
import Foundation
import OutpostCommandLine
import OutpostModel
import OutpostProtocol
import OutpostServer

struct PracticeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "practice",
        abstract: "Add and list the practices of the umbrella store.",
        subcommands: [Add.self, List.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a practice and print its id."
        )
        @OptionGroup var data: DataOptions
        @Argument(help: "The practice's name.") var name: String

        func run() async throws {
            let store = try await data.openStore()
            var generator = SystemRandomNumberGenerator()
            let practice = try await store.addPractice(
                name: name,
                now: SystemWallClock().nowMillis(),
                generator: &generator
            )
            print(practice.id)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the practices.")
        @OptionGroup var data: DataOptions
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            let store = try await data.openStore()
            let practices = try await store.practices()
            if json {
                try JSONOutput.print(practices)
            } else {
                TablePrinter.print(
                    ["ID", "NAME", "CREATED"],
                    practices.map { [$0.id, $0.name, CalendarDate.dateTime(millis: $0.createdAtMillis)] }
                )
            }
        }
    }
}
