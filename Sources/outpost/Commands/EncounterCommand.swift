import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost encounter ...`
struct EncounterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encounter",
        abstract: "Record encounters (office, virtual, home, school, ED visits, admissions, specialist visits).",
        subcommands: [
            AddEncounter.self, ListRecords<EncounterKind>.self, ShowRecord<EncounterKind>.self,
            SetFields<EncounterKind>.self,
        ]
    )
}

struct AddEncounter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Record an encounter for a patient (immutable once written; a cost may be added once later)."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The patient's id.", valueName: "patient-id")) var patient: String
    @Argument(
        help: ArgumentHelp(
            "office, virtual, home, school, ed-visit, admission or specialist.",
            valueName: "kind"
        )
    )
    var kind: String
    @Option(help: ArgumentHelp("When it started (default: now).", valueName: "YYYY-MM-DDTHH:MM:SSZ")) var at: String?
    @Option(help: ArgumentHelp("Total cost in cents.", valueName: "cents")) var costCents: Int64?
    @Option(help: ArgumentHelp("Where it happened (default: this replica's site).", valueName: "site-id"))
    var site: String?

    mutating func run() throws {
        let store = try storeOptions.open()
        let owner = try RecordOutput.require(patient, .patient, in: store)
        var fields: [String: [Value]] = [
            "patient": [.string(owner.id)], "kind": [.string(kind)], "occurredAt": [.string(at ?? Format.nowISO8601())],
            "status": ["finished"],
        ]
        if let costCents { fields["costCents"] = [.int(costCents)] }
        if let place = try site ?? store.site() { fields["site"] = [.string(place)] }
        print(try store.create(.encounter, fields: fields).id)
    }
}
