import ArgumentParser
import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostSamples

/// The everyday reads of issue 17 on the reference practice: each `outpost` command run as a process (wall
/// time and peak memory), beside the same question asked of plain SQLite on an indexed table in this process.
struct ReadsBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reads",
        abstract: "Worklists, lists, panel, gaps, scorecard, export and status on the reference practice: time and "
            + "peak memory of the outpost commands as processes, beside plain SQLite on indexed tables.",
        discussion: """
            Needs the `outpost` executable beside this one (build both in release). Imports the generated \
            practice into a new store, then runs each command --runs times and reports the best time and the \
            highest peak memory. Plain SQLite: the same records as one row each (columns for the filtered \
            fields, indexed, and the record's JSON), the same question answered in this process.
            """
    )

    @Option(help: "Seed of the generated practice.") var seed: UInt64 = 1
    @Option(help: "Practice size: small, medium or reference.") var size: String = "reference"
    @Option(help: "Runs of each command; the best time is reported.") var runs: Int = 3
    @Flag(help: "An encrypted store (a key file), as `outpost init` makes by default; plain otherwise.")
    var encrypted = false

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let outpost = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("outpost").path
        guard FileManager.default.isExecutableFile(atPath: outpost) else {
            throw ValidationError("no outpost executable beside outpost-bench: build it (same configuration)")
        }
        let folder = URL(fileURLWithPath: NSTemporaryDirectory() + "outpost-bench-reads-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("store.sqlite").path
        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        var keyOptions: [String] = []
        if encrypted {
            let keyFile = folder.appendingPathComponent("store.key").path
            _ = try StoreKey.makeKeyFile(at: keyFile)
            keyOptions = ["--key-file", keyFile]
            let key: StoreKeySource = { () throws(ClientError) in try StoreKey.keyFile(at: keyFile) }
            try CareStore.create(at: store, key: key).importPractice(dump)
        } else {
            try CareStore.create(at: store).importPractice(dump)
        }
        let plain = folder.appendingPathComponent("plain.sqlite").path
        try Self.makePlain(dump, at: plain)

        func first(_ type: String, _ field: String) -> String {
            var counts: [String: Int] = [:]
            for record in dump.records where record.type == type {
                if case .some(.value(.string(let value))) = record.fields[field] { counts[value, default: 0] += 1 }
            }
            return counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key ?? ""
        }
        let team = first("task", "team")
        let person = first("task", "assignee")
        let patient = dump.records.first { $0.type == "patient" }?.id ?? ""
        let today = "2026-06-01"
        let open = "status NOT IN ('completed', 'cancelled', 'failed', 'entered-in-error')"
        let worklistOrder =
            "ORDER BY dueDate < '\(today)' DESC, CASE priority WHEN 'stat' THEN 0 WHEN 'asap' THEN 1 "
            + "WHEN 'urgent' THEN 2 WHEN 'routine' THEN 3 ELSE 4 END, dueDate IS NULL, dueDate, id"
        let cases: [(command: [String], sql: String, target: String)] = [
            (
                ["worklist", "--team", team, "--today", today],
                "SELECT json FROM task WHERE team = ? AND \(open) \(worklistOrder)", "100 ms, 50 MiB"
            ),
            (
                ["worklist", "--person", person, "--today", today],
                "SELECT json FROM task WHERE assignee = ? AND \(open) \(worklistOrder)", "100 ms, 50 MiB"
            ),
            (["task", "list", "--team", team], "SELECT json FROM task WHERE team = ? ORDER BY id", "100 ms, 50 MiB"),
            (
                ["task", "list", "--patient", patient], "SELECT json FROM task WHERE patient = ? ORDER BY id",
                "100 ms, 50 MiB"
            ),
            (
                ["patient", "list", "--team", team],
                "SELECT json FROM patient WHERE team = ? AND status = 'active' ORDER BY id", "100 ms, 50 MiB"
            ),
            (
                ["panel"],
                "SELECT team, subgroup, riskTier, count(*) FROM patient WHERE status = 'active' GROUP BY 1, 2, 3",
                "500 ms"
            ),
            (
                ["gaps", "--today", today],
                "SELECT p.id, max(o.effectiveAt) FROM patient p LEFT JOIN observation o ON o.patient = p.id "
                    + "AND o.code = '4548-4' WHERE p.status = 'active' GROUP BY p.id", "500 ms"
            ),
            (
                ["scorecard", "--period", "2026-Q2"],
                "SELECT p.subgroup, count(DISTINCT p.id), count(e.id) FROM patient p LEFT JOIN encounter e "
                    + "ON e.patient = p.id AND e.occurredAt BETWEEN '2026-04-01' AND '2026-07-01' GROUP BY 1",
                "500 ms"
            ),
            (["export", "--format", "json"], "SELECT json FROM item ORDER BY kind, id", "1 s"),
            (["status"], "SELECT kind, count(*) FROM item GROUP BY kind", "100 ms, 50 MiB"),
            (["patient", "show", patient], "SELECT json FROM patient WHERE id = ?", "100 ms, 50 MiB"),
        ]
        let queue = try DatabaseQueue(path: plain)
        print(
            "outpost-bench reads: \(practiceSize) practice (seed \(seed)), \(encrypted ? "encrypted" : "plain") store, "
                + "best of \(runs); \(ProcessInfo.processInfo.activeProcessorCount) cores"
        )
        print("| command | outpost (process) | peak memory | plain SQLite (same query, in process) | target |")
        print("|---|---|---|---|---|")
        for entry in cases {
            var best = Double.infinity
            var peak = 0
            for _ in 0..<runs {
                let started = DispatchTime.now()
                let bytes = try StoreBenchmark.spawn([outpost] + entry.command + ["--store", store] + keyOptions)
                best = min(best, Self.millis(since: started))
                peak = max(peak, bytes)
            }
            var plainBest = Double.infinity
            for _ in 0..<runs {
                let started = DispatchTime.now()
                // The one argument of the query: the id the command filters on.
                let value = entry.command.first { [team, person, patient].contains($0) } ?? ""
                try queue.read { db in
                    let rows = try Row.fetchCursor(
                        db,
                        sql: entry.sql,
                        arguments: entry.sql.contains("?") ? [value] : []
                    )
                    while try rows.next() != nil {}
                }
                plainBest = min(plainBest, Self.millis(since: started))
            }
            print(
                "| `outpost \(Self.label(entry.command, team: team, person: person, patient: patient))` | "
                    + String(format: "%.0f ms", best) + " | \(StoreBenchmark.mebibytes(peak)) | "
                    + String(format: "%.1f ms", plainBest) + " | \(entry.target) |"
            )
        }
    }

    /// The command with its ids replaced by their roles, as the README's table shows it.
    static func label(_ command: [String], team: String, person: String, patient: String) -> String {
        command.map { $0 == team ? "T" : $0 == person ? "P" : $0 == patient ? "PAT" : $0 }.joined(separator: " ")
    }

    /// Plain SQLite: one row per record, the filtered fields as indexed columns and the record's JSON.
    static func makePlain(_ dump: PracticeDump, at path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE item (kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (kind, id));
                    CREATE TABLE task (id TEXT PRIMARY KEY, patient TEXT, team TEXT, assignee TEXT, status TEXT,
                        priority TEXT, dueDate TEXT, kind TEXT, json TEXT);
                    CREATE INDEX task_team ON task (team, status);
                    CREATE INDEX task_assignee ON task (assignee, status);
                    CREATE INDEX task_patient ON task (patient);
                    CREATE TABLE patient (id TEXT PRIMARY KEY, team TEXT, subgroup TEXT, riskTier TEXT, status TEXT,
                        json TEXT);
                    CREATE INDEX patient_team ON patient (team);
                    CREATE TABLE observation (id TEXT PRIMARY KEY, patient TEXT, code TEXT, effectiveAt TEXT);
                    CREATE INDEX observation_patient ON observation (patient, code, effectiveAt);
                    CREATE TABLE encounter (id TEXT PRIMARY KEY, patient TEXT, kind TEXT, occurredAt TEXT);
                    CREATE INDEX encounter_patient ON encounter (patient, occurredAt);
                    """
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            for record in dump.records {
                let json = String(decoding: try encoder.encode(record), as: UTF8.self)
                func string(_ field: String) -> String? {
                    if case .some(.value(.string(let value))) = record.fields[field] { return value }
                    return nil
                }
                try db.execute(
                    sql: "INSERT INTO item (kind, id, json) VALUES (?, ?, ?)",
                    arguments: [record.type, record.id, json]
                )
                switch record.type {
                case "task":
                    try db.execute(
                        sql: "INSERT INTO task VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        arguments: [
                            record.id, string("patient"), string("team"), string("assignee"), string("status"),
                            string("priority"), string("dueDate"), string("kind"), json,
                        ]
                    )
                case "patient":
                    try db.execute(
                        sql: "INSERT INTO patient VALUES (?, ?, ?, ?, ?, ?)",
                        arguments: [
                            record.id, string("primaryTeam"), string("subgroup"), string("riskTier"),
                            string("status"), json,
                        ]
                    )
                case "observation":
                    try db.execute(
                        sql: "INSERT INTO observation VALUES (?, ?, ?, ?)",
                        arguments: [record.id, string("patient"), string("code"), string("effectiveAt")]
                    )
                case "encounter":
                    try db.execute(
                        sql: "INSERT INTO encounter VALUES (?, ?, ?, ?)",
                        arguments: [record.id, string("patient"), string("kind"), string("occurredAt")]
                    )
                default:
                    break
                }
            }
        }
        try queue.close()
    }

    static func millis(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000
    }
}
