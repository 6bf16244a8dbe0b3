import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostFHIR
import OutpostModel
import OutpostProtocol

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
        // The inputs are read twice (the second time per creation rank when out of it), a resource at a time (an
        // NDJSON file a line at a time; a Bundle or single resource, one file at a time): the practice is never in
        // memory at once (docs/fhir.md, "Size").
        let inputs = FHIRInputs(files: try Self.files(paths))
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
        let progressBar = ImportProgress(lines: progress, unit: "resources")
        // An import refused part way leaves no bar open before its error.
        defer { progressBar.finish() }
        var resources = 0
        let summary = try store.importFHIR(inputs, defaults: defaults, strict: strict) { done, total in
            resources = total
            progressBar.report(done: done, of: total)
        }
        for line in summary.issues.lines { Terminal.note(line) }
        func counts(_ byType: [RecordType: Int]) -> String {
            let total = byType.values.reduce(0, +)
            let parts = byType.keys.sorted().map { "\(byType[$0] ?? 0) \($0)" }
            return parts.isEmpty ? "\(total)" : "\(total) (" + parts.joined(separator: ", ") + ")"
        }
        print(
            "imported \(resources) FHIR resources: created \(counts(summary.created)), updated "
                + "\(counts(summary.updated)), unchanged \(summary.unchanged); \(summary.edits) field edits"
        )
        if summary.awaitingAssignment > 0 {
            print(
                "\(summary.awaitingAssignment) new patient(s) await assignment (no subgroup or team in the data or "
                    + "--subgroup/--team): see 'outpost panel', then 'outpost patient set ID subgroup=… primaryTeam=…'"
            )
            try ScopeNote.noteIfScoped(unplaced: summary.awaitingAssignment, in: store)
        }
        if (summary.created[.patient] ?? 0) > 0, let team = defaults.team, !team.contains("/") {
            try ScopeNote.noteIfOutside(placedIn: team, in: store)
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
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw CLIError.runtime("could not create the folder \(out); check the path and permissions")
        }
        // Each resource is written as it is made (the records are read a few hundred at a time), so the whole
        // practice is never in memory; each file is written beside its destination and moved into place once
        // the export is complete.
        var files: [String: NDJSONFile] = [:]
        let suffix = ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        defer { for file in files.values { file.discard() } }
        var failure: (any Error)?
        do {
            try store.exportFHIR(types: types.isEmpty ? nil : Set(types), since: since.flatMap(Self.millis)) {
                type,
                resource in
                do {
                    if files[type] == nil {
                        let path = (out as NSString).appendingPathComponent("\(type).ndjson")
                        files[type] = try NDJSONFile(path: path, suffix)
                    }
                    try files[type]?.append(resource.text)
                } catch {
                    failure = error
                    throw error
                }
            }
        } catch {
            throw failure ?? error
        }
        var output: [(type: String, file: String, count: Int)] = []
        for type in FHIRVocabulary.exportedTypes {
            guard let file = files[type], file.count > 0 else { continue }
            try file.finish()
            output.append((type, "\(type).ndjson", file.count))
        }
        files = [:]
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
        // FHIR holds one value per element: a field with concurrent values went out as its provisional one.
        // Of the records exported: of the types asked for (a conflict of a record older than --since may be counted).
        let open = try store.conflictEntries().filter { entry in
            types.isEmpty
                || RecordType(rawValue: entry.record.type).flatMap { FHIRVocabulary.resourceType[$0] }.map(
                    types.contains
                )
                    ?? false
        }.count
        if open > 0 {
            FileHandle.standardError.write(
                Data(
                    ("outpost: note: \(open) field\(open == 1 ? "" : "s") in conflict exported with \(open == 1 ? "its" : "their") "
                        + "provisional value only (FHIR holds one); the others are in 'outpost conflicts list'\n").utf8
                )
            )
        }
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

/// One NDJSON file of an export, written a line at a time through a buffer to a file beside its destination,
/// and moved into place by ``finish()``.
final class NDJSONFile {
    let path: String
    let temporary: String
    let handle: FileHandle
    var buffer = Data()
    private(set) var count = 0
    private var done = false

    init(path: String, _ suffix: String) throws {
        self.path = path
        temporary = path + suffix
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
            let handle = FileHandle(forWritingAtPath: temporary)
        else {
            throw CLIError.runtime("could not write \(path); check the folder is writable")
        }
        self.handle = handle
    }

    /// Adds one line (a resource).
    func append(_ line: String) throws {
        buffer.append(contentsOf: line.utf8)
        buffer.append(UInt8(ascii: "\n"))
        count += 1
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func flush() throws {
        do {
            try handle.write(contentsOf: buffer)
        } catch {
            throw CLIError.runtime("could not write \(path); check the disk and the folder")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered and moves the file into place.
    func finish() throws {
        try flush()
        try? handle.close()
        guard rename(temporary, path) == 0 else {
            throw CLIError.runtime("could not write \(path); check the folder is writable")
        }
        done = true
    }

    /// Removes the file unless ``finish()`` moved it into place.
    func discard() {
        guard !done else { return }
        try? handle.close()
        try? FileManager.default.removeItem(atPath: temporary)
        done = true
    }
}

extension FHIRInputs {
    /// The resources of `files`, a part each: an `.ndjson` file read a line at a time through a buffer, other files
    /// (a Bundle, a single resource) whole, one at a time. A file that cannot be read is an ``FHIRError``.
    init(files: [String]) {
        self.init(parts: files.map { file in Self.part(file) })
    }

    private static func part(_ file: String) -> Part {
        { body in
            guard file.hasSuffix(".ndjson") else {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw FHIRError("cannot read \(file); check the path")
                }
                var reader = FHIRReader()
                try reader.read(name: file, bytes: Array(data))
                for resource in reader.resources { try body(resource, reader.fullURLs) }
                return
            }
            guard let handle = FileHandle(forReadingAtPath: file) else {
                throw FHIRError("cannot read \(file); check the path")
            }
            defer { try? handle.close() }
            var buffer: [UInt8] = []
            var start = 0
            var line = 0
            var atEnd = false
            while true {
                if let end = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    line += 1
                    if let resource = try FHIRReader.resource(line: buffer[start..<end], file: file, number: line) {
                        try body(resource, [:])
                    }
                    start = end + 1
                    continue
                }
                if atEnd {
                    line += 1
                    if let resource = try FHIRReader.resource(line: buffer[start...], file: file, number: line) {
                        try body(resource, [:])
                    }
                    break
                }
                buffer.removeFirst(start)
                start = 0
                let chunk: Data?
                do {
                    chunk = try handle.read(upToCount: 1 << 20)
                } catch {
                    throw FHIRError("cannot read \(file); check the path")
                }
                if let chunk, !chunk.isEmpty { buffer.append(contentsOf: chunk) } else { atEnd = true }
            }
        }
    }
}
