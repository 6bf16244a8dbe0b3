import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostTestSupport
import Testing

/// Encryption at rest: what a stolen store reveals, and how a wrong or missing key, a tampered row and a
/// change of passphrase are handled.
struct EncryptionTests {
    /// The environment of a store locked with `passphrase` (the sandbox's key file is turned off).
    static func passphrase(_ passphrase: String) -> [String: String] {
        ["OUTPOST_KEY_FILE": "", "OUTPOST_PASSPHRASE": passphrase]
    }

    /// The fixture's patients' family and given names, birth dates and phones (only those of 6 bytes or more, so
    /// that random ciphertext cannot hold one by chance: about 2^-48 per place).
    static let needles: [String] = {
        var found: Set<String> = []
        for patient in Fixture.all("patient") {
            for field in ["familyName", "givenName", "birthDate", "phone"] {
                if let value = patient.fields[field], value.utf8.count >= 6 { found.insert(value) }
            }
        }
        return found.sorted()
    }()

    /// Every row of every table of the store at `path`, as text, table by table.
    static func rows(of path: String) throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            var rows: [String] = []
            for table in try String.fetchAll(
                db,
                sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ) {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\"") { rows.append("\(table): \(row)") }
            }
            return rows.sorted()
        }
    }

    /// The needles found in any of the store's files (the database, its WAL and shared-memory files).
    func found(in sandbox: Sandbox, _ needles: [String]) -> [String] {
        let files = sandbox.storeBytes()
        return needles.filter { needle in files.values.contains { $0.range(of: Data(needle.utf8)) != nil } }
    }

    @Test(arguments: [true, false])
    func anEncryptedStoreItsWALAndShmHoldNoNameBirthDateOrPhoneAndAPlainOneHoldsThemAll(encrypted: Bool) async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost(arguments: encrypted ? ["init"] : ["init", "--no-encrypt"])
        try await sandbox.outpost("import", Sandbox.fixture("practice-small.json"))
        let patient = try Fixture.first("patient")
        try await sandbox.outpost("patient", "set", patient.id, "phone=(406) 555-9876")
        // An edit made while the store stays open (in this process), so its WAL holds frames when it is read.
        let store = try CareStore.open(at: sandbox.store, key: Sandbox.key)
        try store.store.commit(
            [.assign(.init(type: "patient", id: patient.id), "familyName", .string("Quillfeather"))],
            author: "per_test",
            site: nil
        )
        #expect(store.store.isEncrypted == encrypted)
        let needles = Self.needles + ["(406) 555-9876", "Quillfeather"]
        #expect(needles.count > 40)
        let files = sandbox.storeBytes()
        #expect((files["-wal"]?.count ?? 0) > 0, "the WAL is scanned while it holds the last edit")
        #expect(files["-shm"] != nil)
        let seen = found(in: sandbox, needles)
        if encrypted {
            #expect(seen == [], "an encrypted store holds patient data in clear")
        } else {
            // The scan can fail: on a plain store it finds every one.
            #expect(seen == needles)
        }
        _ = store
    }

    @Test func aWrongOrMissingPassphraseIsOneLineExit1AndTouchesNothing() async throws {
        let sandbox = try Sandbox()
        try await sandbox.outpost("init", environment: Self.passphrase("right horse battery"))
        try await sandbox.outpost(
            "import",
            Sandbox.fixture("practice-small.json"),
            environment: Self.passphrase("right horse battery")
        )
        let before = sandbox.storeBytes()[""]
        for (environment, mention) in [
            (Self.passphrase("wrong horse battery"), "passphrase does not open the store"),
            (Self.passphrase(""), "is encrypted; give its passphrase"),
            (["OUTPOST_KEY_FILE": TestKeyFile.path], "locked with a passphrase, not a key file"),
        ] {
            for arguments in [
                ["patient", "list"], ["export"], ["patient", "set", try Fixture.first("patient").id, "phone=555-0100"],
            ] {
                let result = try await sandbox.run(arguments, environment: environment)
                #expect(result.status == 1, "\(arguments): \(result)")
                #expect(result.stdout.isEmpty)
                #expect(result.errorLines.count == 1, "\(arguments): \(result)")
                #expect(result.stderr.contains(mention), "\(arguments): \(result)")
                #expect(result.stderr.contains(sandbox.store), "\(arguments): \(result)")
                #expect(sandbox.storeBytes()[""] == before, "\(arguments) changed the store")
            }
        }
        await #expect(
            try sandbox.outpost("status", environment: Self.passphrase("right horse battery")).contains("pending")
        )
    }

    /// One byte of a stored blob flipped, or two records' blobs swapped: every command that reads it refuses.
    @Test(arguments: ["flip state", "flip change", "swap states"])
    func aTamperedRowIsRefusedWithOneLineAndNothingWritten(tampering: String) async throws {
        let sandbox = try await Sandbox.withPractice()
        let patients = Fixture.all("patient")
        let first = patients[0].id
        let second = patients[1].id
        let queue = try DatabaseQueue(path: sandbox.store)
        try await queue.write { db in
            switch tampering {
            case "flip state", "flip change":
                // The record row (WITHOUT ROWID: named by type and id) or the record's first change-log row.
                let (table, column, row) =
                    tampering == "flip state"
                    ? ("record", "state", "type = 'patient' AND id = ?")
                    : ("change", "payload", "seq = (SELECT min(seq) FROM change WHERE type = 'patient' AND id = ?)")
                let blob = try #require(
                    try Data.fetchOne(db, sql: "SELECT \(column) FROM \(table) WHERE \(row)", arguments: [first])
                )
                var bytes = [UInt8](blob)
                bytes[bytes.count / 2] ^= 0x01
                try db.execute(
                    sql: "UPDATE \(table) SET \(column) = ? WHERE \(row)",
                    arguments: [Data(bytes), first]
                )
            default:
                let a = try #require(
                    try Data.fetchOne(db, sql: "SELECT state FROM record WHERE id = ?", arguments: [first])
                )
                let b = try #require(
                    try Data.fetchOne(db, sql: "SELECT state FROM record WHERE id = ?", arguments: [second])
                )
                try db.execute(sql: "UPDATE record SET state = ? WHERE id = ?", arguments: [b, first])
                try db.execute(sql: "UPDATE record SET state = ? WHERE id = ?", arguments: [a, second])
            }
        }
        try queue.close()
        // Rows, not file bytes: opening the store for writing rewrites SQLite's header (change counter, schema
        // cookie) even when no row changes.
        let before = try Self.rows(of: sandbox.store)
        for arguments in [["patient", "show", first], ["export"], ["patient", "set", first, "phone=555-0100"]] {
            let result = try await sandbox.run(arguments)
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.stdout.isEmpty, "\(arguments): \(result)")
            #expect(result.errorLines.count == 1, "\(arguments): \(result)")
            #expect(result.stderr.contains("patient/\(first)"), "\(arguments): \(result)")
            #expect(result.stderr.contains("altered or damaged"), "\(arguments): \(result)")
            #expect(try Self.rows(of: sandbox.store) == before, "\(arguments) changed the store")
        }
        // Records not tampered with still read.
        let other = patients[2].id
        await #expect(try sandbox.outpost("patient", "show", other).contains(patients[2].fields["familyName"] ?? "?"))
    }

    @Test func rekeyLocksOutTheOldPassphraseAndTheNewOneOpensTheSameRecords() async throws {
        let sandbox = try Sandbox()
        let old = Self.passphrase("old horse battery")
        try await sandbox.outpost("init", environment: old)
        try await sandbox.outpost("import", Sandbox.fixture("practice-small.json"), environment: old)
        let export = try await sandbox.outpost("export", "--format", "json", environment: old)
        let oldWrapped = try await DatabaseQueue(path: sandbox.store).read { db in
            try #require(try Data.fetchOne(db, sql: "SELECT wrappedKey FROM storeKey"))
        }
        let changeRows = try await DatabaseQueue(path: sandbox.store).read { db in
            try Data.fetchAll(db, sql: "SELECT payload FROM change ORDER BY seq")
        }

        var rekey = old
        rekey["OUTPOST_NEW_PASSPHRASE"] = "new horse battery"
        await #expect(try sandbox.outpost("rekey", environment: rekey).contains("rekeyed"))

        let refused = try await sandbox.run(["export"], environment: old)
        #expect(refused.status == 1 && refused.stderr.contains("passphrase does not open"), "\(refused)")
        let new = Self.passphrase("new horse battery")
        await #expect(try sandbox.outpost("export", "--format", "json", environment: new) == export)
        // No history was rewritten, and the old wrapped key is gone from every file.
        let after = try await DatabaseQueue(path: sandbox.store).read { db in
            try Data.fetchAll(db, sql: "SELECT payload FROM change ORDER BY seq")
        }
        #expect(after == changeRows)
        for (suffix, bytes) in sandbox.storeBytes() {
            #expect(bytes.range(of: oldWrapped) == nil, "the old wrapped key is still in store\(suffix)")
        }

        // A key file in place of the passphrase: made by rekey, then the only way in.
        var toFile = new
        toFile["OUTPOST_NEW_PASSPHRASE"] = nil
        try await sandbox.outpost("rekey", "--new-key-file", sandbox.path("laptop.key"), environment: toFile)
        let attributes = try FileManager.default.attributesOfItem(atPath: sandbox.path("laptop.key"))
        #expect((attributes[.posixPermissions] as? Int ?? 0) & 0o077 == 0, "the key file is its owner's only")
        let byPassphrase = try await sandbox.run(["export"], environment: new)
        #expect(byPassphrase.status == 1 && byPassphrase.stderr.contains("locked with a key file"), "\(byPassphrase)")
        await #expect(
            try sandbox.outpost(
                "export",
                "--format",
                "json",
                "--key-file",
                sandbox.path("laptop.key"),
                environment: ["OUTPOST_KEY_FILE": ""]
            ) == export
        )
    }

    @Test func initWithoutAKeyIsRefusedAndPlainStoresNeedNoKey() async throws {
        let sandbox = try Sandbox()
        let none = ["OUTPOST_KEY_FILE": "", "OUTPOST_PASSPHRASE": ""]
        let refused = try await sandbox.run(["init"], environment: none)
        #expect(refused.status == 2 && refused.errorLines.count == 1, "\(refused)")
        #expect(refused.stderr.contains("--no-encrypt"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.store))
        try await sandbox.outpost("init", "--no-encrypt", environment: none)
        try await sandbox.outpost("import", Sandbox.fixture("practice-small.json"), environment: none)
        await #expect(try !sandbox.outpost("patient", "list", environment: none).isEmpty)
        let rekey = try await sandbox.run(["rekey"], environment: none)
        #expect(rekey.status == 1 && rekey.stderr.contains("not encrypted"), "\(rekey)")
    }
}
