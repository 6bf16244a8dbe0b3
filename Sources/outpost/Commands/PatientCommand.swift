import ArgumentParser
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost patient ...`
struct PatientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patient",
        abstract: "Add, find, show, change and retire patients.",
        subcommands: [
            AddRecord<PatientKind>.self, ListPatients.self, ShowRecord<PatientKind>.self, SetFields<PatientKind>.self,
            RetirePatient.self, ListDuplicates.self, MergePatients.self, UnmergePatient.self,
        ]
    )
}

struct ListPatients: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List patients, optionally of one subgroup, team, site or risk tier."
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Only patients in this subgroup (id or key).", valueName: "subgroup"))
    var subgroup: String?
    @Option(help: ArgumentHelp("Only patients whose primary team is this team.", valueName: "team-id"))
    var team: String?
    @Option(help: ArgumentHelp("Only patients seen at this site.", valueName: "site-id")) var site: String?
    @Option(help: ArgumentHelp("Only patients of this risk tier.", valueName: "tier")) var risk: String?
    @Flag(name: .long, help: "Include retired patients.") var all = false

    mutating func validate() throws {
        try RecordOutput.validateAllowed(risk, field: "riskTier", of: .patient, option: "--risk")
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        try RecordOutput.requireFilters([(team, .team), (site, .site)], in: store)
        var subgroupIDs: Set<String> = []
        if let subgroup {
            let matching = try store.records(.subgroup).filter { $0.id == subgroup || $0.string("key") == subgroup }
            guard !matching.isEmpty else {
                throw CLIError.input("no subgroup with id or key '\(subgroup)'; see 'outpost subgroup list'")
            }
            subgroupIDs = Set(matching.map(\.id))
        }
        let patients = try store.patients(
            PatientQuery(
                subgroups: subgroup == nil ? nil : subgroupIDs,
                team: team,
                site: site,
                riskTier: risk,
                includesRetired: all
            )
        )
        try RecordOutput.printList(patients, columns: PatientKind.columns, json: output.json)
    }
}

struct RetirePatient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retire",
        abstract: "Retire a patient (records are never deleted): inactive, deceased or entered-in-error."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The patient's id.", valueName: "id")) var id: String
    @Option(help: "The new status: inactive, deceased or entered-in-error.") var status = "inactive"

    mutating func validate() throws {
        guard ["inactive", "deceased", "entered-in-error"].contains(status) else {
            throw ValidationError("--status must be inactive, deceased or entered-in-error")
        }
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let patient = try RecordOutput.require(id, .patient, in: store)
        try store.update([.assign(patient.ref, "status", .string(status))])
        print("\(id): \(status)")
    }
}
