import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// Shared pieces of the record commands.
enum RecordOutput {
    /// A cell for `field` of `record`: the value, set elements joined, `!` marking a conflict.
    static func cell(_ record: MaterializedRecord, _ field: String) -> String {
        record.fields[field].map(cell) ?? ""
    }

    /// A field's cell (``cell(_:_:)``).
    static func cell(_ value: FieldValue) -> String {
        switch value {
        case .single(let single, let isConflict):
            let text = single.map { $0.isNull ? "" : $0.description } ?? ""
            return isConflict ? text + " (!)" : text
        case .set(let elements):
            return elements.map(\.description).joined(separator: ",")
        case .log(let entries):
            return "\(entries.count) entries"
        }
    }

    /// Prints records as a JSON array of their canonical JSON (``MaterializedRecord/canonicalJSON()``), one a line:
    /// what every list's `--json` gives.
    static func printJSON(_ records: [MaterializedRecord]) {
        print("[" + records.map { $0.canonicalJSON() }.joined(separator: ",\n") + "]")
    }

    static func printList(_ records: [MaterializedRecord], columns: [String], json: Bool) throws {
        if json {
            printJSON(records)
            return
        }
        // A set shows how many elements it holds: a team's member ids would not fit on one line.
        Terminal.table(
            ["id"] + columns,
            records.map { record in
                var cells = [record.id]
                cells.reserveCapacity(columns.count + 1)
                for column in columns {
                    switch record.fields[column] {
                    case .set(let elements): cells.append(String(elements.count))
                    case let value?: cells.append(cell(value))
                    case nil: cells.append("")
                    }
                }
                return cells
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
