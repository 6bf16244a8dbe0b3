import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// A record type the CLI manages with the generic add/list/show/set commands.
protocol CLIRecordKind {
    static var type: RecordType { get }
    /// Values filled in when `add` does not give them.
    static var defaults: [String: Value] { get }
    /// Fields shown as columns by `list`, after the id.
    static var columns: [String] { get }
}

enum SiteKind: CLIRecordKind {
    static let type = RecordType.site
    static let defaults: [String: Value] = ["status": "active"]
    static let columns = ["name", "kind", "status"]
}

enum PersonKind: CLIRecordKind {
    static let type = RecordType.person
    static let defaults: [String: Value] = ["status": "active"]
    static let columns = ["name", "role", "status"]
}

enum TeamKind: CLIRecordKind {
    static let type = RecordType.team
    static let defaults: [String: Value] = ["status": "active"]
    static let columns = ["name", "subgroup", "leader", "members", "status"]
}

enum SubgroupKind: CLIRecordKind {
    static let type = RecordType.subgroup
    static let defaults: [String: Value] = ["status": "active"]
    static let columns = ["key", "label", "monthlyPaymentCents", "status"]
}

enum PatientKind: CLIRecordKind {
    static let type = RecordType.patient
    static let defaults: [String: Value] = ["status": "active"]
    static let columns = ["familyName", "givenName", "birthDate", "subgroup", "primaryTeam", "riskTier", "status"]
}

enum TaskKind: CLIRecordKind {
    static let type = RecordType.task
    static let defaults: [String: Value] = ["status": "requested", "priority": "routine"]
    static let columns = ["patient", "kind", "priority", "status", "dueDate", "assignee", "title"]
}

enum ObservationKind: CLIRecordKind {
    static let type = RecordType.observation
    static let defaults: [String: Value] = [:]
    static let columns = ["patient", "code", "value", "unit", "effectiveAt"]
}

enum EncounterKind: CLIRecordKind {
    static let type = RecordType.encounter
    static let defaults: [String: Value] = [:]
    static let columns = ["patient", "kind", "occurredAt", "costCents", "site"]
}

struct AddRecord<Kind: CLIRecordKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "add",
            abstract: "Add \(RecordOutput.article(Kind.type)) and print its id.",
            discussion: FieldArguments.help(for: Kind.type)
        )
    }

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("Field values, for example name=Northside.", valueName: "field=value"))
    var fields: [String] = []

    mutating func run() throws {
        let store = try storeOptions.open()
        var values: [String: [Value]] = [:]
        for assignment in try FieldArguments.parse(fields, type: Kind.type) {
            if assignment.operation == .remove {
                throw CLIError.input("\(assignment.field.path): a new record has nothing to remove")
            }
            values[assignment.field.name, default: []].append(assignment.value)
        }
        for (name, value) in Kind.defaults where values[name] == nil { values[name] = [value] }
        let ref = try store.create(Kind.type, fields: values)
        print(ref.id)
        try ScopeNote.noteIfOutside(ref, in: store)
    }
}

struct ListRecords<Kind: CLIRecordKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "list", abstract: "List \(Kind.type) records.")
    }

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Flag(name: .long, help: "Include retired records.") var all = false
    @Option(
        help: ArgumentHelp(
            "Only the records of this patient and of the duplicates merged into it (observations, encounters).",
            valueName: "patient-id"
        )
    )
    var patient: String?

    mutating func validate() throws {
        if patient != nil, CareModel.ownerField[Kind.type.rawValue] != RecordType.patient.rawValue {
            throw ValidationError("--patient filters records that belong to a patient, not \(Kind.type) records")
        }
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let records: [MaterializedRecord]
        if let patient {
            let owner = try RecordOutput.require(patient, .patient, in: store)
            records = try store.records(Kind.type, followingPatient: owner.id)
        } else {
            records = try store.records(Kind.type)
        }
        try RecordOutput.printList(records.filter { all || !$0.isRetired }, columns: Kind.columns, json: output.json)
    }
}

struct ShowRecord<Kind: CLIRecordKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "show", abstract: "Show every field of \(RecordOutput.article(Kind.type)).")
    }

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: ArgumentHelp("The \(Kind.type)'s id.", valueName: "id")) var id: String

    mutating func run() throws {
        let store = try storeOptions.open()
        let record = try RecordOutput.require(id, Kind.type, in: store)
        guard Kind.type == .patient, !output.json else {
            RecordOutput.printRecord(record, json: output.json)
            return
        }
        // A merge's survivor is shown with what its duplicates hold (their sets, notes and contact details are
        // read through it); a duplicate says whom it follows.
        let merges = try store.projectedMerges()
        let duplicates = try merges.duplicates(of: record.id).compactMap { id in
            try store.record(RecordRef(type: RecordType.patient.rawValue, id: id))
        }
        RecordOutput.printRecord(
            record,
            survivor: merges.isMerged(record.id) ? merges.survivor(of: record.id) : nil,
            duplicates: duplicates
        )
    }
}

struct SetFields<Kind: CLIRecordKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "set",
            abstract: "Change fields of \(RecordOutput.article(Kind.type)) (one transaction).",
            discussion: FieldArguments.help(for: Kind.type)
        )
    }

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The \(Kind.type)'s id.", valueName: "id")) var id: String
    @Argument(help: ArgumentHelp("Changes: FIELD=VALUE, FIELD+=VALUE, FIELD-=VALUE.", valueName: "field=value"))
    var fields: [String] = []

    mutating func validate() throws {
        if fields.isEmpty { throw ValidationError("give at least one FIELD=VALUE to change") }
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let record = try RecordOutput.require(id, Kind.type, in: store)
        let edits = try FieldArguments.parse(fields, type: Kind.type, isUpdate: true).map { assignment in
            Edit(
                record: record.ref,
                field: assignment.field.name,
                operation: assignment.operation,
                value: assignment.value
            )
        }
        let changes = try store.update(edits)
        print("\(record.id): \(changes.count) change\(changes.count == 1 ? "" : "s") saved")
        try ScopeNote.noteIfOutside(record.ref, in: store)
    }
}

/// `outpost site|person|subgroup ...`: the generic record commands.
struct RecordGroup<Kind: CLIRecordKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: Kind.type.rawValue,
            abstract: "Add, list, show and change \(Kind.type) records.",
            subcommands: [AddRecord<Kind>.self, ListRecords<Kind>.self, ShowRecord<Kind>.self, SetFields<Kind>.self]
        )
    }
}
