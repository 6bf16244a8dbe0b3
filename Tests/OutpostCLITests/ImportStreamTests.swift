import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostTestSupport
import Testing

/// `outpost import` reads the practice file as a stream (header, then one record at a time): the result is
/// the same as importing the decoded dump, whatever the order of the file's members, and a file that is cut
/// short, has trailing bytes or a malformed record is refused with nothing written.
struct ImportStreamTests {
    /// The small fixture, decoded whole and imported in this process: what the streamed import must match.
    static func expectedExport(of file: String) throws -> String {
        let path = TestScratch.folder("store").appendingPathComponent("store.sqlite").path
        let store = try CareStore.create(at: path)
        let bytes = try #require(FileManager.default.contents(atPath: file))
        try store.importPractice(try PracticeDump.decode(bytes))
        return try normalized(store.exportCanonicalJSON(), replica: store.store.replicaID.rawValue)
    }

    /// An export without what differs between two imports of the same file: the importing replica's id (in
    /// change ids and authors) and the wall-clock time stamped into its log entries.
    static func normalized(_ export: String, replica: String) throws -> String {
        let text = export.replacingOccurrences(of: replica, with: "R")
        let pattern = try NSRegularExpression(pattern: #""clock":"[0-9]+\."#)
        return pattern.stringByReplacingMatches(
            in: text,
            range: NSRange(location: 0, length: (text as NSString).length),
            withTemplate: #""clock":"T."#
        )
    }

    @Test func streamedImportEqualsTheDecodedDumpWhateverTheMemberOrder() async throws {
        let fixture = Sandbox.fixture("practice-small.json")
        let expected = try Self.expectedExport(of: fixture)
        let text = try String(contentsOfFile: fixture, encoding: .utf8)
        let dump = try PracticeDump.decode(Array(text.utf8))
        // The records first, the header after them, with extra white space: still one practice file.
        let records = try #require(text.range(of: "\"records\":"))
        let header = text[text.index(after: text.startIndex)..<records.lowerBound]
            .trimmingCharacters(in: .whitespacesAndNewlines).dropLast()
        let body = text[records.lowerBound...].trimmingCharacters(in: .whitespacesAndNewlines).dropLast()
        let reordered = " {\n " + body + " ,\n\t" + header + " }\n\n"
        // Every field write, as the progress total counts it (read from the file without decoding records).
        var edits = 0
        for record in dump.records {
            for field in record.fields.values {
                switch field {
                case .value(let value): edits += value.isNull ? 0 : 1
                case .list(let values): edits += values.count
                }
            }
        }
        for (name, contents) in [("as-is.json", text), ("reordered.json", reordered)] {
            let sandbox = try Sandbox()
            try await sandbox.outpost("init")
            let file = sandbox.path(name)
            try contents.write(toFile: file, atomically: true, encoding: .utf8)
            let result = try await sandbox.run(["import", file, "--progress"])
            #expect(result.status == 0 && result.output == "imported \(dump.records.count) records from \(file)")
            #expect(result.errorLines.last == "importing: 100% (\(edits)/\(edits) fields)", "\(result)")
            let replica = try CareStore.open(at: sandbox.store, key: Sandbox.key).store.replicaID.rawValue
            await #expect(try Self.normalized(sandbox.export(), replica: replica) == expected, "\(name)")
        }
    }

    @Test func damagedFilesAreRefusedWithNothingWritten() async throws {
        let text = try String(contentsOfFile: Sandbox.fixture("practice-small.json"), encoding: .utf8)
        let site = try #require(text.range(of: "{\"type\":\"site\""))
        let cases: [(String, String, [String])] = [
            ("cut.json", String(text.prefix(text.count * 2 / 3)), ["not valid JSON"]),
            ("trailing.json", text + "{}", ["not valid JSON"]),
            (
                "no-records.json",
                "{\"format\":\"outpost-practice\",\"version\":1,\"practice\":{\"id\":\"pra_1\",\"name\":\"x\"}}",
                ["dump"]
            ),
            (
                "bad-record.json", text.replacingCharacters(in: site, with: "{\"type\":[\"site\"]"),
                ["dump.records[", "shape"]
            ),
            (
                "bad-header.json", text.replacingOccurrences(of: "\"version\":1", with: "\"version\":\"1\""),
                ["dump.version"]
            ),
        ]
        for (name, contents, mentions) in cases {
            let sandbox = try Sandbox()
            try await sandbox.outpost("init")
            let file = sandbox.path(name)
            try contents.write(toFile: file, atomically: true, encoding: .utf8)
            try await sandbox.expectRefused(["import", file], mentioning: mentions)
            await #expect(try sandbox.pendingChanges() == 0, "\(name)")
        }
    }

    /// An `outpost export` file is another format: import names it and says what to do, and writes nothing.
    @Test func anExportIsNamedAsSuchAndNotImported() async throws {
        let source = try await Sandbox.withPractice()
        let exported = source.path("export.json")
        try await source.outpost("export", "-o", exported)
        let sandbox = try Sandbox()
        try await sandbox.outpost("init")
        try await sandbox.expectRefused(
            ["import", exported],
            mentioning: ["is an 'outpost export' (format outpost-export)", "'outpost fhir export'"]
        )
        await #expect(try sandbox.pendingChanges() == 0)
    }
}
