import Foundation
import GRDB
import OutpostModel
import OutpostSamples
import OutpostTestSupport
import Testing

/// `outpost doctor` finds a projection that disagrees with the record states, `--rebuild` mends it, and a
/// store made before the projection gets it filled by the migration.
struct DoctorCommandTests {
    static let size = PracticeGenerator.Size(
        name: "doctor",
        patients: 12,
        teamsPerSubgroup: [1, 1, 1, 1],
        tasksPerPatient: 4,
        sites: 2
    )

    func importedPractice() async throws -> Sandbox {
        let sandbox = try Sandbox()
        let practice = sandbox.path("practice.json")
        try Data(PracticeGenerator(seed: 5, size: Self.size).generate().jsonText().utf8)
            .write(to: URL(fileURLWithPath: practice))
        try await sandbox.outpost("init", "--replica", "doctor")
        try await sandbox.outpost("import", practice)
        return sandbox
    }

    @Test func doctorReportsADamagedProjectionAndRebuildMendsIt() async throws {
        let sandbox = try await importedPractice()
        await #expect(try sandbox.outpost("doctor") == "store ok")
        let listed = try await sandbox.outpost("task", "list")
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM task_view WHERE id IN (SELECT id FROM task_view LIMIT 3)")
            try db.execute(sql: "UPDATE patient_view SET team = NULL")
        }
        try queue.close()
        let damaged = try await sandbox.run(["doctor"])
        #expect(damaged.status == 1)
        #expect(damaged.stdout.components(separatedBy: "task_view").count - 1 == 3)
        #expect(damaged.stdout.contains("patient_view"))
        #expect(damaged.stderr.contains("outpost doctor --rebuild"))
        await #expect(try sandbox.outpost("doctor", "--rebuild") == "projection rebuilt\nstore ok")
        await #expect(try sandbox.outpost("task", "list") == listed)
    }

    /// An import into a new store builds the store's indexes once at its end: the imported store has every index
    /// a new store has; one dropped by hand is reported, and `--rebuild` builds it.
    @Test func anImportedStoreHasEveryIndexAndDoctorFindsOneMissing() async throws {
        let sandbox = try await importedPractice()
        await #expect(try sandbox.outpost("doctor") == "store ok")
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            #expect(
                try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = 'bootstrap.deferredIndexes'") == nil
            )
            try db.execute(sql: "DROP INDEX task_view_team")
            try db.execute(sql: "DROP INDEX change_outbox")
        }
        try queue.close()
        let damaged = try await sandbox.run(["doctor"])
        #expect(damaged.status == 1)
        #expect(damaged.stdout.contains("an index is missing (CREATE INDEX task_view_team ON task_view"))
        #expect(damaged.stdout.contains("an index is missing (CREATE INDEX change_outbox ON change"))
        await #expect(try sandbox.outpost("doctor", "--rebuild") == "projection rebuilt\nstore ok")
    }

    @Test func aStoreFromBeforeTheProjectionIsProjectedWhenOpened() async throws {
        let sandbox = try await importedPractice()
        let listed = try await sandbox.outpost("task", "list")
        let panel = try await sandbox.outpost("panel")
        // The store as the previous version left it: no projection tables, migration v6 not applied.
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            for table in ["task_view", "task_gap", "patient_view", "patient_site", "patient_gap", "observation_view"]
                + ["encounter_view", "projection_stale"]
            {
                try db.execute(sql: "DROP TABLE \(table)")
            }
            try db.execute(
                sql: "DELETE FROM grdb_migrations WHERE identifier IN "
                    + "('v6-projection', 'v8-projection-lean', 'v10-projection-scorecard', 'v17-observation-unit')"
            )
        }
        try queue.close()
        await #expect(try sandbox.outpost("task", "list") == listed)
        await #expect(try sandbox.outpost("panel") == panel)
        await #expect(try sandbox.outpost("doctor") == "store ok")
    }

    /// A store as the version before `v10-projection-scorecard` left it (no scorecard columns, sealed rows in
    /// JSON) gets its projection rebuilt when opened: the scorecard, gaps and lists read the same from it.
    @Test func aStoreFromBeforeTheScorecardColumnsIsRebuiltWhenOpened() async throws {
        let sandbox = try await importedPractice()
        let commands = [
            ["task", "list"], ["panel"], ["gaps", "--today", "2026-06-01"], ["scorecard", "--period", "2026-Q2"],
            ["scorecard", "--period", "2026", "--by", "team"],
        ]
        var before: [String] = []
        for command in commands { before.append(try await sandbox.outpost(arguments: command)) }
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            for (table, columns) in [
                ("task_view", ["statusHistory", "referralSentOn", "resultReceivedOn"]),
                ("patient_view", ["deceasedOn", "conditions"]), ("observation_view", ["value"]),
                ("encounter_view", ["costCents"]),
            ] {
                for column in columns { try db.execute(sql: "ALTER TABLE \(table) DROP COLUMN \(column)") }
                // The sealed rows of the previous version were JSON: unreadable now, rebuilt when opened.
                try db.execute(sql: "UPDATE \(table) SET sealed = CAST('{}' AS BLOB) WHERE sealed IS NOT NULL")
            }
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v10-projection-scorecard'")
        }
        try queue.close()
        for (command, expected) in zip(commands, before) {
            await #expect(try sandbox.outpost(arguments: command) == expected, "\(command)")
        }
        await #expect(try sandbox.outpost("doctor") == "store ok")
    }

    /// A store from before `v17-observation-unit` (no unit column) gets its projection rebuilt when opened: every
    /// observation's unit is projected, and the scorecard reads the same.
    @Test func aStoreFromBeforeTheObservationUnitIsRebuiltWhenOpened() async throws {
        let sandbox = try await importedPractice()
        let scorecard = ["scorecard", "--period", "2026", "--json"]
        let before = try await sandbox.outpost(arguments: scorecard)
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            try db.execute(sql: "ALTER TABLE observation_view DROP COLUMN unit")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v17-observation-unit'")
        }
        await #expect(try sandbox.outpost(arguments: scorecard) == before)
        let (observations, withUnits) = try await queue.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM observation_view") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM observation_view WHERE unit IS NOT NULL") ?? 0
            )
        }
        try queue.close()
        #expect(observations > 0 && withUnits == observations)
        await #expect(try sandbox.outpost("doctor") == "store ok")
    }

    /// The indexes `v6-projection` made and `v8-projection-lean` drops (no query uses them).
    static let v6Indexes = [
        "task_view_patient ON task_view (patient)", "task_view_status ON task_view (status)",
        "task_gap_key ON task_gap (key)", "patient_gap_gap ON patient_gap (gap, patient)",
        "observation_view_patient ON observation_view (patient, code, effectiveAt)",
        "observation_view_code ON observation_view (code, effectiveAt)",
        "encounter_view_patient ON encounter_view (patient, occurredAt)",
        "encounter_view_kind ON encounter_view (kind, occurredAt)",
    ]

    @Test func aStoreOfTheFirstProjectionLosesTheIndexesNoQueryUsesAndListsTheSame() async throws {
        let sandbox = try await importedPractice()
        let commands = [
            ["task", "list"], ["task", "list", "--status", "completed"], ["worklist", "--today", "2026-06-01"],
            ["panel"],
            ["gaps", "--today", "2026-06-01"], ["status"],
        ]
        var before: [String] = []
        for command in commands { before.append(try await sandbox.outpost(arguments: command)) }
        // The store as the previous version left it: v6's indexes, v7 not applied.
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            for index in ["task_view_team", "task_view_assignee"] { try db.execute(sql: "DROP INDEX \(index)") }
            for index in Self.v6Indexes + [
                "task_view_team ON task_view (team, isOpen, dueDate)",
                "task_view_assignee ON task_view (assignee, isOpen, dueDate)",
            ] {
                try db.execute(sql: "CREATE INDEX \(index)")
            }
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v8-projection-lean'")
        }
        try queue.close()
        var after: [String] = []
        for command in commands { after.append(try await sandbox.outpost(arguments: command)) }
        #expect(after == before)
        await #expect(try sandbox.outpost("doctor") == "store ok")
        let reopened = try DatabaseQueue(path: sandbox.store)
        let indexes = try await reopened.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
        try reopened.close()
        for index in Self.v6Indexes { #expect(!indexes.contains("CREATE INDEX \(index)"), "\(index) is left") }
        #expect(indexes.contains("CREATE INDEX task_view_team ON task_view (team, isOpen)"))
        #expect(indexes.contains("CREATE INDEX task_view_assignee ON task_view (assignee, isOpen)"))
    }
}
