import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostFHIR
import OutpostModel

/// `outpost fhir import|export`: FHIR R4 in and out (docs/fhir.md).
struct FHIRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fhir",
        abstract: "Import FHIR R4 resources, Bundles and Bulk Data NDJSON; export Bulk Data NDJSON.",
        subcommands: [FHIRImport.self, FHIRExport.self]
    )
}

struct FHIRImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import FHIR R4 JSON resources, Bundles and NDJSON files or folders in one transaction.",
        discussion: """
            Resources imported before (known by their kept FHIR ids) are updated with ordinary edits that sync; \
            importing the same data again changes nothing. What is not kept is counted by element path on stderr; \
            --strict refuses the import instead. On any error nothing is written. New patients that neither the \
            data nor --subgroup/--team place are created awaiting assignment, listed by 'outpost panel'.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("FHIR JSON files (.json, .ndjson) or folders of them.", valueName: "path"))
    var paths: [String]
    @Option(
        help: ArgumentHelp(
            "Subgroup for new patients and care teams the data places in none: id, key, or a reference into the "
                + "input such as Group/g1."
        )
    )
    var subgroup: String?
    @Option(
        help: ArgumentHelp(
            "Team for new patients the data places in none: id, or a reference into the input such as CareTeam/t1.",
            valueName: "team"
        )
    )
    var team: String?
    @Option(help: ArgumentHelp("Role for new staff no PractitionerRole gives a role Outpost models."))
    var role: String?
    @Flag(help: "Refuse the import when anything would not be kept (unknown elements, codes, references).")
    var strict = false
    @Flag(help: "Print progress lines on stderr even when it is not a terminal.")
    var progress = false

    mutating func validate() throws {
        try RecordOutput.validateAllowed(role, field: "role", of: .person, option: "--role")
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        // Each input is read and mapped in turn, so only one input's JSON is in memory at a time.
        var mapper = FHIRMapper()
        for file in try Self.files(paths) {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIError.input("cannot read \(file); check the path")
            }
            do {
                var reader = FHIRReader()
                try reader.read(name: file, bytes: Array(data))
                try mapper.map(reader)
            } catch {
                throw CLIError.input(error.message)
            }
        }
        var defaults = FHIRDefaults(role: role)
        if let subgroup, subgroup.contains("/") {
            defaults.subgroup = subgroup
        } else if let subgroup {
            let matching = try store.records(.subgroup).filter { $0.id == subgroup || $0.string("key") == subgroup }
            guard let found = matching.first else {
                throw CLIError.input(
                    "--subgroup: no subgroup with id or key '\(subgroup)'; see 'outpost subgroup list'"
                )
            }
            defaults.subgroup = found.id
        }
        if let team, team.contains("/") {
            defaults.team = team
        } else if let team {
            guard try store.record(RecordRef(type: RecordType.team.rawValue, id: team)) != nil else {
                throw CLIError.input("--team: no team with id \(team); see 'outpost team list'")
            }
            defaults.team = team
        }
        var progressBar = ImportProgress(lines: progress)
        let summary = try store.importFHIR(mapper, defaults: defaults, strict: strict) { done, total in
            progressBar.report(done: done, of: total)
        }
        for line in summary.issues.lines { Terminal.note(line) }
        func counts(_ byType: [RecordType: Int]) -> String {
            let total = byType.values.reduce(0, +)
            let parts = byType.keys.sorted().map { "\(byType[$0] ?? 0) \($0)" }
            return parts.isEmpty ? "\(total)" : "\(total) (" + parts.joined(separator: ", ") + ")"
        }
        print(
            "imported \(mapper.resourceCount) FHIR resources: created \(counts(summary.created)), updated "
                + "\(counts(summary.updated)), unchanged \(summary.unchanged); \(summary.edits) field edits"
        )
        if summary.awaitingAssignment > 0 {
            print(
                "\(summary.awaitingAssignment) new patient(s) await assignment (no subgroup or team in the data or "
                    + "--subgroup/--team): see 'outpost panel', then 'outpost patient set ID subgroup=… primaryTeam=…'"
            )
        }
    }

    /// The files named: files as given, folders' `.json` and `.ndjson` files sorted by name.
    static func files(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CLIError.input("no file or folder at \(path); check the path")
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files += names.filter { $0.hasSuffix(".json") || $0.hasSuffix(".ndjson") }
                .filter { $0 != "manifest.json" }.sorted().map { (path as NSString).appendingPathComponent($0) }
        }
        return files
    }
}

struct FHIRExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write Bulk Data NDJSON, one file per resource type, and a manifest like $export's.",
        discussion: "Files: DIR/Patient.ndjson and so on, and DIR/manifest.json listing them with their counts."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(name: .customLong("type"), help: ArgumentHelp("Only this resource type (repeatable).", valueName: "T"))
    var types: [String] = []
    @Option(help: ArgumentHelp("Only records written on or after this UTC date or date-time.", valueName: "date"))
    var since: String?
    @Option(help: ArgumentHelp("The folder to write (created if missing).", valueName: "dir")) var out: String

    mutating func validate() throws {
        for type in types where !FHIRVocabulary.exportedTypes.contains(type) {
            throw ValidationError(
                "--type: '\(type)' is not a type Outpost exports (\(FHIRVocabulary.exportedTypes.joined(separator: ", ")))"
            )
        }
        if let since, Self.millis(since) == nil {
            throw ValidationError("--since takes a date YYYY-MM-DD or a UTC date-time YYYY-MM-DDTHH:MM:SSZ")
        }
    }

    static func millis(_ text: String) -> UInt64? {
        if let date = CalendarDate(text) { return date.millis }
        if let parsed = CalendarDate.parseDateTime(text), parsed.millis >= 0 { return UInt64(parsed.millis) }
        return nil
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let resources = try store.exportFHIR(
            types: types.isEmpty ? nil : Set(types),
            since: since.flatMap(Self.millis)
        )
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw CLIError.runtime("could not create the folder \(out); check the path and permissions")
        }
        var output: [(type: String, file: String, count: Int)] = []
        for type in FHIRVocabulary.exportedTypes {
            guard let list = resources[type], !list.isEmpty else { continue }
            let file = "\(type).ndjson"
            try write(list.map(\.text).joined(separator: "\n") + "\n", to: file)
            output.append((type, file, list.count))
        }
        var request = "outpost fhir export"
        for type in types { request += " --type \(type)" }
        if let since { request += " --since \(since)" }
        let manifest = FHIRExporter.manifest(
            transactionTime: SystemWallClock().nowMillis(),
            request: request,
            output: output
        )
        try write(manifest.text + "\n", to: "manifest.json")
        print("exported \(output.reduce(0) { $0 + $1.count }) resources to \(out)")
    }

    private func write(_ text: String, to name: String) throws {
        let path = (out as NSString).appendingPathComponent(name)
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CLIError.runtime("could not write \(path); check the folder is writable")
        }
    }
}
