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
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v6-projection'")
        }
        try queue.close()
        await #expect(try sandbox.outpost("task", "list") == listed)
        await #expect(try sandbox.outpost("panel") == panel)
        await #expect(try sandbox.outpost("doctor") == "store ok")
    }
}
