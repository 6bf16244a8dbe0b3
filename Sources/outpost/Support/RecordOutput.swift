import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostCommandLine
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
            let text = single.map { $0.isNull ? "" : TablePrinter.printable($0.description) } ?? ""
            return isConflict ? text + " (!)" : text
        case .set(let elements):
            return elements.map { TablePrinter.printable($0.description) }.joined(separator: ",")
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
        printRecord(record, survivor: nil, duplicates: [])
    }

    /// Prints every field of a record, a field in conflict marked; for a patient, with what a merge reads through
    /// it: `survivor`, the patient it was merged into (it is retired by that link); `duplicates`, the patients merged
    /// into it, whose notes, set elements and contact details it lacks are shown with its own, each marked with the
    /// duplicate it is from (docs/model.md, "Duplicate merges": they stay on the duplicate and are read from it).
    static func printRecord(_ record: MaterializedRecord, survivor: String?, duplicates: [MaterializedRecord]) {
        let retired = survivor.map { " (merged into \($0))" } ?? (record.isRetired ? " (retired)" : "")
        print("\(record.type) \(record.id)\(retired)")
        // What the merge copied (or put in the inbox) is the survivor's own; the merge's bookkeeping stays apart.
        let notRead = Set(CareModel.mergedReviewFields + ["status", "mergedInto", "merges", "resolutions", "fhirIDs"])
        func from(_ id: String?) -> String { id.map { " (from merged \($0))" } ?? "" }
        for spec in CareModel.fields(of: record.type) {
            let own = record.fields[spec.name]
            let values =
                [(String?.none, own)]
                + (notRead.contains(spec.name) ? [] : duplicates.map { ($0.id, $0.fields[spec.name]) })
            switch own ?? values.lazy.compactMap(\.1).first {
            case .log?:
                var lines: [(entry: Write, from: String?)] = []
                for case (let id, .log(let entries)?) in values { lines += entries.map { ($0, id) } }
                guard !lines.isEmpty || own != nil else { continue }
                print("  \(spec.name):")
                for (entry, id) in lines.sorted(by: { ($0.entry.clock, $0.entry.id) < ($1.entry.clock, $1.entry.id) }) {
                    print(
                        "    [\(Format.clock(entry.clock)) \(entry.author)] \(TablePrinter.printable(entry.value.description))"
                            + from(id)
                    )
                }
            case .set?:
                var seen = Set<Value>()
                var shown: [String] = []
                for case (let id, .set(let elements)?) in values {
                    for element in elements where seen.insert(element).inserted {
                        shown.append(TablePrinter.printable(element.description) + from(id))
                    }
                }
                guard !shown.isEmpty || own != nil else { continue }
                print("  \(spec.name): " + shown.joined(separator: ","))
            case .single?:
                // The survivor's own value; one it lacks, the first duplicate's that has one.
                guard
                    let (id, value) = values.lazy.compactMap({ id, value in value.map { (id, $0) } })
                        .first(where: { !$0.1.isEmptySingle })
                        ?? own.map({ (String?.none, $0) })
                else { continue }
                print(
                    "  \(spec.name): \(cell(value).replacingOccurrences(of: " (!)", with: ""))" + from(id)
                        + (value.isConflict ? "   <- conflict: see 'outpost conflicts list'" : "")
                )
            case nil:
                continue
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

extension FieldValue {
    /// Whether this is a register holding no value (never written, or cleared).
    fileprivate var isEmptySingle: Bool {
        guard case .single(let value, _) = self else { return false }
        return value.map(\.isNull) ?? true
    }
}
