import ArgumentParser
import OutpostProtocol

/// The `outpost` command: clinicians' and admins' work on a local replica.
struct OutpostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost",
        abstract: "Work with Outpost records offline and sync them with an Outpost server.",
        discussion: """
            Every command works offline on this device's replica (--store, or OUTPOST_STORE). Exit codes: \
            0 ok, 1 runtime error (storage, network), 2 bad usage or input.
            """,
        version: "outpost \(OutpostVersion.software) (protocol v\(OutpostVersion.wireProtocol))",
        subcommands: [
            Init.self, Use.self, Status.self,
            RecordGroup<SiteKind>.self, RecordGroup<PersonKind>.self, TeamCommand.self, RecordGroup<SubgroupKind>.self,
            PatientCommand.self, TaskCommand.self, Worklist.self, Observe.self, EncounterCommand.self,
            ObservationCommand.self, History.self, Export.self, Import.self, RemoteCommand.self, SyncCommand.self,
            OutboxCommand.self,
            ConflictsCommand.self, Audit.self, ScorecardCommand.self, PanelCommand.self, GapsCommand.self,
            FHIRCommand.self, Rekey.self, Doctor.self, Compact.self,
        ]
    )
}
