import Foundation
import OutpostCRDT
import OutpostClient
import OutpostFHIR
import OutpostModel
import OutpostSamples
import OutpostTestSupport
import Testing

/// FHIR import and export of a generated practice read and written a resource at a time (docs/fhir.md,
/// "Size"): the same files and the same records as holding everything in memory, references across files in
/// any order, across the import's pages, and nothing written when a late line is malformed.
struct FHIRStreamingTests {
    static let size = PracticeGenerator.Size(
        name: "fhir-stream",
        patients: 12,
        teamsPerSubgroup: [1, 1, 1, 1],
        tasksPerPatient: 4,
        sites: 2
    )

    /// A sandbox whose store holds the generated practice, imported with `outpost import`.
    static func practice() async throws -> Sandbox {
        let sandbox = try Sandbox()
        let practice = sandbox.path("practice.json")
        try Data(PracticeGenerator(seed: 9, size: size).generate().jsonText().utf8)
            .write(to: URL(fileURLWithPath: practice))
        try await sandbox.outpost("init", "--replica", "fhir-stream")
        try await sandbox.outpost("import", practice)
        return sandbox
    }

    /// The export as it was made before it streamed, kept here as the reference: every record of a type read
    /// at once, every resource held, each type's file written whole.
    static func referenceExport(_ store: CareStore) throws -> [String: String] {
        var out: [String: [JSON]] = [:]
        for type in RecordType.allCases.sorted() {
            for (id, state) in try store.store.records(ofType: type.rawValue, owner: nil) {
                let lastUpdated = state.fields.values.flatMap(\.live).map(\.clock.millis).max()
                let record = MaterializedRecord(type: type, id: id, state: state)
                for resource in FHIRExporter.resources(of: record, lastUpdated: lastUpdated) {
                    out[resource.type, default: []].append(resource.json)
                }
            }
        }
        return out.mapValues { $0.map(\.text).joined(separator: "\n") + "\n" }
    }

    /// The resources of an export folder's NDJSON files, the files taken in `order` (by resource type).
    static func inputs(_ folder: String, order: [String]) throws -> (FHIRInputs, count: Int) {
        var resources: [(FHIRResource, [String: String])] = []
        for type in order {
            var reader = FHIRReader()
            let path = folder + "/\(type).ndjson"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            try reader.read(name: "\(type).ndjson", bytes: Array(data))
            resources += reader.resources.map { ($0, reader.fullURLs) }
        }
        let all = resources
        return (FHIRInputs { body in for (resource, urls) in all { try body(resource, urls) } }, all.count)
    }

    /// Every record's fields, log entries reduced to their values (their clocks and authors differ between
    /// stores), by type and id.
    static func contents(_ store: CareStore) throws -> [String: [String: FieldValue]] {
        var out: [String: [String: FieldValue]] = [:]
        for type in RecordType.allCases {
            for record in try store.records(type) {
                out["\(type)/\(record.id)"] = record.fields.mapValues { field in
                    guard case .log = field else { return field }
                    return .set(field.values)
                }
            }
        }
        return out
    }

    @Test func theStreamedExportIsByteForByteTheExportHeldInMemory() async throws {
        let sandbox = try await Self.practice()
        let out = sandbox.path("export")
        try await sandbox.outpost("fhir", "export", "--out", out)
        let store = try CareStore.open(at: sandbox.store, key: Sandbox.key)
        let reference = try Self.referenceExport(store)
        let written = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".ndjson") }
        #expect(Set(written) == Set(reference.keys.map { "\($0).ndjson" }))
        #expect(reference.count >= 8)
        for (type, text) in reference {
            let file = try String(contentsOfFile: out + "/\(type).ndjson", encoding: .utf8)
            #expect(file == text, "\(type).ndjson differs from the in-memory export")
        }
        #expect(!written.contains { $0.contains(".partial") })
    }

    @Test func filesInReverseOrderImportAcrossPagesToTheSameRecords() async throws {
        let sandbox = try await Self.practice()
        let out = sandbox.path("export")
        try await sandbox.outpost("fhir", "export", "--out", out)
        let source = try CareStore.open(at: sandbox.store, key: Sandbox.key)
        // Observations, tasks and encounters first: every reference names a resource of a later file.
        let (inputs, count) = try Self.inputs(out, order: FHIRVocabulary.exportedTypes.reversed())
        let copy = try CareStore.create(at: sandbox.path("copy.sqlite"), replicaID: ReplicaID("copy"))
        var reported: [Int] = []
        let summary = try copy.importFHIR(inputs, strict: true, pageSize: 20) { done, total in
            #expect(total == count)
            reported.append(done)
        }
        #expect(reported.count > 5 && reported.last == count && reported == reported.sorted(), "\(reported)")
        #expect(summary.issues.isEmpty && summary.updated.isEmpty && summary.unchanged == 0)
        #expect(try Self.contents(copy) == Self.contents(source))

        // Again, in input order, into the copy: everything is found, nothing changes.
        let (again, _) = try Self.inputs(out, order: FHIRVocabulary.exportedTypes)
        let pending = try copy.store.pendingCount()
        let second = try copy.importFHIR(again, pageSize: 7)
        #expect(second.created.isEmpty && second.updated.isEmpty && second.edits == 0)
        #expect(second.unchanged == summary.created.values.reduce(0, +))
        #expect(try copy.store.pendingCount() == pending)
    }

    @Test func aMalformedLineLateInTheLastFileWritesNothing() async throws {
        let sandbox = try await Self.practice()
        let out = sandbox.path("export")
        try await sandbox.outpost("fhir", "export", "--out", out)
        // The last file read (the folder's files sorted by name) ends with a line cut off.
        let last = try #require(
            try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".ndjson") }.sorted().last
        )
        let text = try String(contentsOfFile: out + "/" + last, encoding: .utf8)
        let lines = text.split(separator: "\n")
        try Data((text + lines[0].prefix(40) + "\n").utf8).write(to: URL(fileURLWithPath: out + "/" + last))
        let copy = try Sandbox()
        try await copy.outpost("init", "--replica", "copy")
        let before = try copy.snapshot()
        _ = try await copy.expectRefused(
            ["fhir", "import", out],
            mentioning: ["\(last):\(lines.count + 1)", "invalid JSON", "cut off"]
        )
        #expect(try copy.snapshot().export == before.export)
        #expect(try copy.snapshot().pending == before.pending)
    }

    @Test func theImportReportsProgressByResource() async throws {
        let sandbox = try await Self.practice()
        let out = sandbox.path("export")
        try await sandbox.outpost("fhir", "export", "--out", out)
        let resources = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".ndjson") }
            .reduce(0) { count, name in
                count + (try String(contentsOfFile: out + "/" + name, encoding: .utf8)).split(separator: "\n").count
            }
        let copy = try Sandbox()
        try await copy.outpost("init", "--replica", "copy")
        let result = try await copy.run(["fhir", "import", out, "--progress"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("imported \(resources) FHIR resources"), "\(result)")
        #expect(result.errorLines.last == "importing: 100% (\(resources)/\(resources) resources)", "\(result)")
    }
}
