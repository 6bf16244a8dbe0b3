import ArgumentParser
import OutpostCRDT
import OutpostClient
import OutpostModel

/// Parses `FIELD=VALUE`, `FIELD+=VALUE` and `FIELD-=VALUE` arguments against the field table.
///
/// Values are read by the field's kind: integers and cents as whole numbers, booleans as true/false,
/// everything else as text; an empty value (`FIELD=`) clears an optional field.
enum FieldArguments {
    struct Assignment {
        var field: FieldSpec
        var operation: Operation
        var value: Value
    }

    /// Parses arguments; with `isUpdate`, a set field must say `+=` or `-=`.
    static func parse(_ arguments: [String], type: RecordType, isUpdate: Bool = false) throws -> [Assignment] {
        try arguments.map { argument in try parse(argument, type: type, isUpdate: isUpdate) }
    }

    static func parse(_ argument: String, type: RecordType, isUpdate: Bool) throws -> Assignment {
        guard let equals = argument.firstIndex(of: "=") else {
            throw CLIError.input(
                "'\(argument)' is not FIELD=VALUE; fields of \(RecordOutput.article(type)): "
                    + CareModel.fields(of: type).map(\.name).joined(separator: ", ")
            )
        }
        var name = String(argument[..<equals])
        var operation: Operation? = nil
        if name.hasSuffix("+") {
            operation = .add
            name.removeLast()
        } else if name.hasSuffix("-") {
            operation = .remove
            name.removeLast()
        }
        let text = String(argument[argument.index(after: equals)...])
        guard let spec = CareModel.spec(type, name) else {
            throw CLIError.input(
                "\(RecordOutput.article(type)) has no field '\(name)'; its fields: "
                    + CareModel.fields(of: type).map(\.name).joined(separator: ", ")
            )
        }
        if type == .patient, name == "mergedInto" {
            // A merge moves the duplicate's records, keeps why in both patients' logs and can be undone: its own
            // commands, never a bare write of the field.
            throw CLIError.input(
                "patient.mergedInto: written by 'outpost patient merge KEEP DUPLICATE --reason …' and cleared by "
                    + "'outpost patient unmerge DUPLICATE --reason …', not set directly"
            )
        }
        if name == "resolutions" {
            // The record's audit of conflict resolutions: each entry says what was chosen for which field, written
            // with the choice by the one command that makes it.
            throw CLIError.input(
                "\(spec.path): written by 'outpost conflicts resolve ID --pick N --reason …' with the value it "
                    + "chooses, not set directly"
            )
        }
        if name == "fhirIDs", operation != .remove || !isUpdate {
            // The FHIR resources a record was imported from: the import writes them when it matches or makes the
            // record; removing one unlinks it (the next import of that resource makes a new record).
            throw CLIError.input(
                "\(spec.path): written by 'outpost fhir import' for the resources it reads; a link can be removed "
                    + "with fhirIDs-=TYPE/ID, not added by hand"
            )
        }
        let resolved: Operation
        switch spec.policy {
        case .lww, .review, .status:
            guard operation == nil else {
                throw CLIError.input("\(spec.path) holds one value; write \(name)=VALUE")
            }
            resolved = .assign
        case .set:
            if isUpdate && operation == nil {
                throw CLIError.input(
                    "\(spec.path) is a set: add with \(name)+=VALUE, remove with \(name)-=VALUE"
                )
            }
            resolved = operation ?? .add
        case .log:
            guard operation == nil || operation == .add else {
                throw CLIError.input("\(spec.path) is append-only; entries cannot be removed")
            }
            resolved = .append
        }
        return Assignment(field: spec, operation: resolved, value: try value(text, for: spec))
    }

    static func value(_ text: String, for spec: FieldSpec) throws -> Value {
        // Spaces around a value are a typing slip (`allergies+="Penicillin "` would be a second allergy).
        var trimmed = Substring(text)
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        guard !trimmed.isEmpty || text.isEmpty else {
            throw CLIError.input("\(spec.path): the value is only spaces; write \(spec.name)= to clear the field")
        }
        let text = String(trimmed)
        if text.isEmpty { return .null }
        switch spec.kind {
        case .integer, .cents:
            guard let number = Int64(text) else {
                throw CLIError.input("\(spec.path) takes a whole number (\(spec.rule)); '\(text)' is not one")
            }
            return .int(number)
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "1": return .bool(true)
            case "false", "no", "0": return .bool(false)
            default: throw CLIError.input("\(spec.path) takes true or false")
            }
        default:
            return .string(text)
        }
    }

    /// A help paragraph listing a type's fields: name, kind, policy, whether required, allowed values.
    ///
    /// Every line fits in 78 columns, so that ArgumentParser, which rewraps longer lines of a discussion
    /// at its own width, leaves the list as written; long lists of allowed values continue on indented lines.
    static func help(for type: RecordType) -> String {
        var lines = ["Fields of \(RecordOutput.article(type)) (FIELD=VALUE; sets take FIELD+=VALUE and FIELD-=VALUE):"]
        for spec in CareModel.fields(of: type) {
            var line = "  \(spec.name) — \(spec.kind.name), \(spec.policy.name)"
            if spec.isRequired { line += ", required" }
            if spec.isImmutable { line += ", immutable" }
            let allowed = spec.kind.allowedValues
            if allowed.isEmpty {
                lines.append(line)
                continue
            }
            line += ":"
            var indent = ""
            for (index, value) in allowed.enumerated() {
                let piece = value + (index < allowed.count - 1 ? "," : "")
                if line.count + 1 + piece.count > 78 {
                    lines.append(line)
                    indent = "      "
                    line = indent + piece
                } else {
                    line += " " + piece
                }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
