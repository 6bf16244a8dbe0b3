import Foundation
import GRDB
import OutpostCRDT
import OutpostTestSupport
import Testing

/// A missing, damaged, newer or read-only store: one line on stderr naming the path and the fix, exit 1,
/// and not a byte written.
struct StoreFaultTests {
    /// Commands that read, commands that write and the import, tried against every faulty store.
    static let commands: [[String]] = [
        ["status"], ["patient", "list"], ["export", "--format", "json"], ["worklist"],
        ["site", "add", "name=Northside", "kind=clinic"],
        ["patient", "set", "pat_01JWMCKG1754K9T2F6C8TTXJQ1", "phone=555-0100"],
        ["task", "done", "tsk_01JWMCKG1ECF4WACSXH7JJKGXJ"],
        ["use", "--site", "sit_01JWMCKG021VKCN0WEWEXE0EQM"],
        ["import", Sandbox.fixture("practice-small.json")],
    ]

    private func expectFault(
        _ sandbox: Sandbox,
        mentioning mentions: [String],
        user: uid_t? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let before = sandbox.storeBytes()[""]
        for arguments in Self.commands {
            let result = try await sandbox.run(arguments, user: user)
            let command = "outpost " + arguments.joined(separator: " ")
            #expect(result.status == 1, "\(command): \(result)", sourceLocation: sourceLocation)
            #expect(result.stdout.isEmpty, "\(command): \(result)", sourceLocation: sourceLocation)
            #expect(result.errorLines.count == 1, "\(command): \(result)", sourceLocation: sourceLocation)
            #expect(result.stderr.hasPrefix("outpost: "), "\(command): \(result)", sourceLocation: sourceLocation)
            for mention in mentions {
                #expect(
                    result.stderr.contains(mention),
                    "\(command): no '\(mention)' in \(result)",
                    sourceLocation: sourceLocation
                )
            }
            #expect(
                sandbox.storeBytes()[""] == before,
                "\(command) changed the store file",
                sourceLocation: sourceLocation
            )
        }
    }

    @Test func aMissingStoreIsReportedAndNotCreated() async throws {
        let sandbox = try Sandbox()
        try await expectFault(sandbox, mentioning: ["no store at \(sandbox.store)", "outpost init"])
        #expect(sandbox.storeBytes().isEmpty)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: sandbox.directory.path).filter { !$0.hasPrefix(".") }
                == []
        )
    }

    @Test(arguments: [0, 100, 4096, 70_000])
    func aFileOfGarbageIsReportedAsDamaged(length: Int) async throws {
        let sandbox = try Sandbox()
        var generator = SeededGenerator(seed: UInt64(length) + 1)
        let garbage = Data((0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
        try garbage.write(to: URL(fileURLWithPath: sandbox.store))
        if length == 0 {
            // An empty file is what SQLite makes of a new database: it has no replica identity.
            try await expectFault(sandbox, mentioning: [sandbox.store, "not an Outpost store"])
        } else {
            try await expectFault(sandbox, mentioning: [sandbox.store, "not an Outpost store or is damaged"])
        }
    }

    @Test func aStoreWhosePagesAreDamagedIsReported() async throws {
        let sandbox = try await Sandbox.withPractice()
        var bytes = try #require(sandbox.storeBytes()[""])
        // Keep the header (the first page) so SQLite opens the file; overwrite every later page's start.
        var index = 4096
        while index + 64 < bytes.count {
            for offset in 0..<64 { bytes[index + offset] = 0xA5 }
            index += 4096
        }
        try bytes.write(to: URL(fileURLWithPath: sandbox.store))
        let before = sandbox.storeBytes()[""]
        for arguments in [
            ["patient", "list"], ["export"], ["patient", "set", try Fixture.first("patient").id, "phone=555-0100"],
        ] {
            let result = try await sandbox.run(arguments)
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.errorLines.count == 1, "\(arguments): \(result)")
            #expect(result.stderr.contains("damaged"), "\(arguments): \(result)")
            #expect(sandbox.storeBytes()[""] == before)
        }
    }

    @Test func aStoreOfANewerSchemaIsNotOpened() async throws {
        let sandbox = try await Sandbox.withPractice()
        // A later Outpost would have registered a migration this one does not know.
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-future')")
        }
        try queue.close()
        try await expectFault(sandbox, mentioning: [sandbox.store, "newer version of Outpost"])
    }

    @Test func aReadOnlyStoreIsReportedAndUnchanged() async throws {
        let sandbox = try await Sandbox.withPractice()
        // The store and its folder become read-only. Root ignores file modes, so as root the commands run
        // as the unprivileged user `nobody` (through setpriv), for whom the modes hold: the outcome a user
        // gets whose store sits on a read-only volume or belongs to someone else.
        let isRoot = getuid() == 0
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: sandbox.store)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: sandbox.directory.path)
        defer {
            try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: sandbox.directory.path)
        }
        // Runs as `nobody` (65534), who must be able to reach the executable.
        let user: uid_t? = isRoot ? 65534 : nil
        if isRoot {
            let probe = try await sandbox.run(["--version"], user: user)
            try #require(probe.status == 0, "cannot run outpost as nobody: \(probe)")
        }
        try await expectFault(sandbox, mentioning: [sandbox.store, "cannot be written", "permissions"], user: user)
    }
}
