import Foundation
import GRDB
import OutpostModel
import OutpostSamples
import OutpostTestSupport
import Testing

/// In an encrypted store the projection holds no projected value in clear but record ids (statuses, kinds,
/// codes, gap keys, risk tiers, dates and the booleans derived from them are tokens or sealed), and every
/// list reads the same as on a plain store made the same way (docs/store.md, "Encryption at rest").
struct ProjectionEncryptionTests {
    static let tables = [
        "task_view", "task_gap", "patient_view", "patient_site", "patient_gap", "observation_view", "encounter_view",
    ]
    /// The projection's columns that hold record ids (in clear in every store).
    static let identifiers: Set<String> = [
        "id", "patient", "team", "assignee", "subgroup", "mergedInto", "site", "task",
    ]

    /// A store made from the same practice, with the same edits and a merge: encrypted or plain.
    func practice(encrypted: Bool) async throws -> Sandbox {
        let sandbox = try Sandbox()
        let practice = sandbox.path("practice.json")
        try Data(PracticeGenerator(seed: 7, size: DoctorCommandTests.size).generate().jsonText().utf8)
            .write(to: URL(fileURLWithPath: practice))
        try await sandbox.outpost(arguments: ["init", "--replica", "projection"] + (encrypted ? [] : ["--no-encrypt"]))
        try await sandbox.outpost("import", practice)
        return sandbox
    }

    /// Every row of the projected tables: column name → value.
    func projected(_ sandbox: Sandbox) throws -> [(table: String, columns: [(String, DatabaseValue)])] {
        let queue = try DatabaseQueue(path: sandbox.store)
        defer { try? queue.close() }
        return try queue.read { db in
            var rows: [(table: String, columns: [(String, DatabaseValue)])] = []
            for table in Self.tables {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \(table)") {
                    rows.append((table, row.columnNames.map { ($0, row[$0] as DatabaseValue) }))
                }
            }
            return rows
        }
    }

    @Test func anEncryptedProjectionHoldsNoPlainValueButIdsAndListsReadTheSame() async throws {
        let plain = try await practice(encrypted: false)
        let sealed = try await practice(encrypted: true)
        let plainRows = try projected(plain)
        var ids = Set<String>()
        var values = Set<String>()
        for (_, columns) in plainRows {
            for (name, value) in columns {
                guard let text = String.fromDatabaseValue(value) else { continue }
                if Self.identifiers.contains(name) { ids.insert(text) } else { values.insert(text) }
            }
        }
        // The scan can fail: the plain store holds statuses, kinds, codes, gap keys and dates in clear.
        #expect(values.contains("requested"))
        #expect(values.contains { CalendarDate($0) != nil })
        #expect(values.contains { $0.contains("T") && $0.hasSuffix("Z") })
        #expect(values.count > 10)
        let needles = values.filter { $0.utf8.count >= 4 }.map { Data($0.utf8) }
        let sealedRows = try projected(sealed)
        #expect(sealedRows.count == plainRows.count)
        for (table, columns) in sealedRows {
            for (name, value) in columns {
                switch value.storage {
                case .null:
                    continue
                case .string(let text):
                    #expect(Self.identifiers.contains(name) && ids.contains(text), "\(table).\(name) holds text")
                    #expect(!values.contains(text) || ids.contains(text), "\(table).\(name) holds a projected value")
                case .blob(let bytes):
                    #expect(!Self.identifiers.contains(name))
                    #expect(!needles.contains { bytes.range(of: $0) != nil }, "\(table).\(name) holds a value")
                case .int64, .double:
                    Issue.record("\(table).\(name) holds a number in clear")
                }
            }
        }
        // A merge and a few edits, the same on both; then every list reads the same.
        let patients = try #require(
            plainRows.filter { $0.table == "patient_view" }.compactMap { row in
                row.columns.first { $0.0 == "id" }.flatMap { String.fromDatabaseValue($0.1) }
            }.sorted() as [String]?
        )
        let tasks = plainRows.filter { $0.table == "task_view" }
        func first(_ column: String) -> String? {
            tasks.lazy.compactMap { row in
                row.columns.first { $0.0 == column }.flatMap { String.fromDatabaseValue($0.1) }
            }
            .first
        }
        let team = try #require(first("team"))
        let person = try #require(first("assignee"))
        for sandbox in [plain, sealed] {
            try await sandbox.outpost("patient", "merge", patients[0], patients[1], "--reason", "registered twice")
            try await sandbox.outpost("patient", "set", patients[2], "riskTier=high")
        }
        #expect(try await sealed.outpost("doctor") == "store ok")
        for command in [
            ["task", "list"], ["task", "list", "--team", team], ["task", "list", "--status", "requested"],
            ["task", "list", "--assignee", person], ["task", "list", "--patient", patients[0]],
            ["worklist", "--team", team, "--today", "2026-06-01"],
            ["worklist", "--person", person, "--today", "2026-06-01"],
            ["patient", "list"], ["patient", "list", "--risk", "high"], ["patient", "list", "--all"], ["panel"],
            ["gaps", "--today", "2026-06-01"], ["scorecard", "--period", "2026-Q2"],
            ["scorecard", "--period", "2026", "--by", "site"],
        ] {
            let expected = try await plain.outpost(arguments: command)
            #expect(try await sealed.outpost(arguments: command) == expected, "\(command)")
        }
    }
}
