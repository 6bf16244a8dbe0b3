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

/// Shared pieces of the record commands.
enum RecordOutput {
    /// A cell for `field` of `record`: the value, set elements joined, `!` marking a conflict.
    static func cell(_ record: MaterializedRecord, _ field: String) -> String {
        guard let value = record.fields[field] else { return "" }
        switch value {
        case .single(let single, let isConflict):
            return (single.map { $0.isNull ? "" : $0.description } ?? "") + (isConflict ? " (!)" : "")
        case .set(let elements):
            return elements.map(\.description).joined(separator: ",")
        case .log(let entries):
            return "\(entries.count) entries"
        }
    }

    static func printList(_ records: [MaterializedRecord], columns: [String], json: Bool) throws {
        if json {
            print("[" + records.map { $0.canonicalJSON() }.joined(separator: ",\n") + "]")
            return
        }
        // A set shows how many elements it holds: a team's member ids would not fit on one line.
        Terminal.table(
            ["id"] + columns,
            records.map { record in
                [record.id]
                    + columns.map { column in
                        if case .set(let elements) = record.fields[column] { return String(elements.count) }
                        return cell(record, column)
                    }
            }
        )
    }

    static func printRecord(_ record: MaterializedRecord, json: Bool) {
        if json {
            print(record.canonicalJSON())
            return
        }
        print("\(record.type) \(record.id)\(record.isRetired ? " (retired)" : "")")
        for spec in CareModel.fields(of: record.type) {
            guard let value = record.fields[spec.name] else { continue }
            switch value {
            case .log(let entries):
                print("  \(spec.name):")
                for entry in entries {
                    print("    [\(Format.clock(entry.clock)) \(entry.author)] \(entry.value)")
                }
            default:
                let isConflict = value.isConflict
                print(
                    "  \(spec.name): \(cell(record, spec.name).replacingOccurrences(of: " (!)", with: ""))"
                        + (isConflict ? "   <- conflict: see 'outpost conflicts list'" : "")
                )
            }
        }
    }

    /// The type's name with its indefinite article: `a patient`, `an encounter`.
    static func article(_ type: RecordType) -> String {
        ("aeiou".contains(type.rawValue.first ?? "x") ? "an " : "a ") + type.rawValue
    }

    /// Refuses an option's value that is not one of a field's allowed values (a usage error, exit 2).
    static func validateAllowed(_ value: String?, field: String, of type: RecordType, option: String) throws {
        guard let value, let spec = CareModel.spec(type, field), !spec.kind.allowedValues.contains(value) else {
            return
        }
        throw ValidationError("\(option) must be one of " + spec.kind.allowedValues.joined(separator: ", "))
    }

    /// Requires every given filter id to name a record of its type on this replica, so that a mistyped id
    /// is reported rather than silently matching nothing.
    static func requireFilters(_ filters: [(String?, RecordType)], in store: CareStore) throws {
        for case (let id?, let type) in filters { _ = try require(id, type, in: store) }
    }

    /// Looks up a record by id, inferring its type from the id's prefix when `type` is nil.
    static func require(_ id: String, _ type: RecordType?, in store: CareStore) throws -> MaterializedRecord {
        guard let inferred = type ?? RecordType(idPrefixOf: id), inferred.isValidID(id) || type == nil else {
            throw CLIError.input(
                "'\(id)' is not a \(type.map(\.rawValue) ?? "record") id; ids look like "
                    + "\((type ?? .patient).idPrefix)_01JD4V6Z8Q3N6W2K1C0R5T7Y9B"
            )
        }
        guard let record = try store.record(RecordRef(type: inferred.rawValue, id: id)) else {
            throw CLIError.input("no \(inferred) with id \(id) on this replica; see 'outpost \(inferred) list'")
        }
        return record
    }
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
    }
}

struct ListRecords<Kind: CLIRecordKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "list", abstract: "List \(Kind.type) records.")
    }

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Flag(name: .long, help: "Include retired records.") var all = false

    mutating func run() throws {
        let store = try storeOptions.open()
        let records = try store.records(Kind.type).filter { all || !$0.isRetired }
        try RecordOutput.printList(records, columns: Kind.columns, json: output.json)
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
        RecordOutput.printRecord(try RecordOutput.require(id, Kind.type, in: store), json: output.json)
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
