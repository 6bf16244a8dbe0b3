import ArgumentParser
import Foundation
import OutpostCommandLine
import OutpostModel
import OutpostServer

/// `outpost-server purge`: legal erasure of a patient from the server and, on their next sync, every device.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Erase a patient and everything that belongs to it, everywhere (legal purge).",
        subcommands: [Patient.self, List.self]
    )

    struct Patient: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "patient",
            abstract: "Erase a patient, its tasks, observations and encounters, with their history and conflicts.",
            discussion: """
                Every device removes them on its next sync. An audit entry remains with the patient's id, the \
                time, the reason and how many records went, and no patient data ('outpost-server purge list').
                """
        )
        @OptionGroup var data: DataOptions
        @OptionGroup var practice: ConflictsCommand.PracticeOption
        @Argument(help: ArgumentHelp("The patient's id (pat_…).", valueName: "patient-id")) var id: String
        @Option(help: ArgumentHelp("The legal ground, for the audit.", valueName: "text")) var reason: String

        func run() async throws {
            let store = try await data.openStore()
            let entry = try await store.purge(
                practice: try await practice.resolve(in: store),
                patient: id,
                reason: reason,
                now: SystemWallClock().nowMillis()
            )
            print("purged \(entry.patient): \(entry.records) records; devices remove them on their next sync")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List a practice's purges (the audit entries)."
        )
        @OptionGroup var data: DataOptions
        @OptionGroup var practice: ConflictsCommand.PracticeOption
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            let store = try await data.openStore()
            let entries = try await store.purges(practice: try await practice.resolve(in: store))
            if json {
                try JSONOutput.print(entries)
            } else if entries.isEmpty {
                print("no purges")
            } else {
                TablePrinter.print(
                    ["PATIENT", "RECORDS", "WHEN", "REASON"],
                    entries.map {
                        [$0.patient, String($0.records), CalendarDate.dateTime(millis: $0.atMillis), $0.reason]
                    }
                )
            }
        }
    }
}
