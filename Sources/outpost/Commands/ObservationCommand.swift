import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost observation ...`: list, show and correct observations (record new ones with `outpost observe`).
struct ObservationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observation",
        abstract: "List and show observations; mark one entered-in-error (record new ones with 'outpost observe').",
        subcommands: [
            ListRecords<ObservationKind>.self, ShowRecord<ObservationKind>.self, SetFields<ObservationKind>.self,
        ]
    )
}
