import ArgumentParser
import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostSamples

/// The local store against plain SQLite, in one run: importing the reference practice, and applying
/// 10,000 remote changes. Also the store's size on disk and the process's peak memory.
struct StoreBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Import the reference practice and apply 10,000 remote changes, beside plain SQLite.",
        discussion: """
            Outpost: CareStore.importPractice (validation, CRDT merge, binary encoding, change log, outbox, \
            one transaction) of an already parsed practice into a new store; LocalStore.applyRemote of \
            10,000 changes made on another replica, in one call and in pages, and in pages into an encrypted \
            store (the first run's encrypted import). Plain SQLite: the same \
            records (one row per record, its JSON encoded beforehand) and the same 10,000 changes (one row \
            each) inserted in one transaction. Both use WAL and synchronous=FULL, like the store. For \
            reference, plain SQLite also applies the 10,000 changes in place to its imported practice: each \
            change's row appended and its record's JSON row updated by json_set, in one transaction.
            """
    )

    @Option(help: "Seed of the generated practice.")
    var seed: UInt64 = 1

    @Option(help: "Practice size: small, medium or reference.")
    var size: String = "reference"

    @Option(help: "Runs of each measurement; the best is reported.")
    var runs: Int = 3

    @Option(help: "Remote changes to apply.")
    var changes: Int = 10_000

    @Option(help: "Page size when applying remote changes in pages.")
    var page: Int = 1_000

    @Option(help: "Folder for the stores (default: a new temporary folder, removed afterwards).")
    var directory: String?

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard runs >= 1, changes >= 1, page >= 1 else {
            throw ValidationError("--runs, --changes and --page must be at least 1")
        }
    }

    func run() throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let folder = URL(
            fileURLWithPath: directory ?? NSTemporaryDirectory() + "outpost-bench-store-\(getpid())",
            isDirectory: true
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(at: folder) } }

        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let rows = try dump.records.map { record in
            (record.type, record.id, String(decoding: try encoder.encode(record), as: UTF8.self))
        }
        let fieldWrites = try dump.changes(replica: ReplicaID(unchecked: "x"), clock: .zero, author: "x").count
        print("practice: seed \(seed), size \(size), \(dump.records.count) records, \(fieldWrites) field writes")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; best of \(runs) runs")
        print(
            "peak memory before the first import (practice generated, rows encoded): "
                + Self.mebibytes(Self.peakResidentBytes())
        )
        print("")

        // (a) Import.
        var bestImport = Duration.seconds(1_000_000)
        var bestEncryptedImport = Duration.seconds(1_000_000)
        var bestPlainImport = Duration.seconds(1_000_000)
        var storeBytes = 0
        var encryptedBytes = 0
        var plainBytes = 0
        for run in 1...runs {
            let path = folder.appendingPathComponent("import-\(run).sqlite").path
            let elapsed = try measure {
                let store = try CareStore.create(at: path, replicaID: ReplicaID(unchecked: "bench"))
                try store.importPractice(dump)
            }
            storeBytes = Self.bytes(at: path)
            bestImport = min(bestImport, elapsed)

            // The same import into an encrypted store (a key file's key: the cipher's cost, without scrypt's).
            let encryptedPath = folder.appendingPathComponent("encrypted-import-\(run).sqlite").path
            let encrypted = try measure {
                let store = try CareStore.create(
                    at: encryptedPath,
                    replicaID: ReplicaID(unchecked: "bench"),
                    key: Self.benchKey
                )
                try store.importPractice(dump)
            }
            encryptedBytes = Self.bytes(at: encryptedPath)
            bestEncryptedImport = min(bestEncryptedImport, encrypted)

            let plainPath = folder.appendingPathComponent("plain-import-\(run).sqlite").path
            let plainElapsed = try measure { try Self.plainInsert(rows, at: plainPath) }
            plainBytes = Self.bytes(at: plainPath)
            bestPlainImport = min(bestPlainImport, plainElapsed)
            print(
                "import run \(run): outpost \(Self.format(elapsed)), encrypted \(Self.format(encrypted)), plain SQLite "
                    + Self.format(plainElapsed)
            )
        }
        print(
            "import into an encrypted store: \(Self.format(bestEncryptedImport)), \(Self.ratio(bestEncryptedImport, bestImport)) "
                + "of the plain store's, \(Self.ratio(bestEncryptedImport, bestPlainImport)) of plain SQLite's; size "
                + Self.mebibytes(encryptedBytes)
        )
        let unlock = try measureUnlock(folder: folder)
        print("opening an encrypted store with a passphrase (scrypt N=2^15, r=8, p=3): \(Self.format(unlock))")
        print(
            "import: outpost \(Self.format(bestImport)), plain SQLite \(Self.format(bestPlainImport)), ratio "
                + Self.ratio(bestImport, bestPlainImport) + " (target: at most 2x)"
        )
        print(
            "size on disk: outpost store \(Self.mebibytes(storeBytes)), plain SQLite \(Self.mebibytes(plainBytes)), "
                + "ratio \(String(format: "%.2fx", Double(storeBytes) / Double(max(plainBytes, 1)))) (target: at most 2x)"
        )
        print("peak memory after import: \(Self.mebibytes(Self.peakResidentBytes()))")
        print("")

        // (b) Remote changes: edits another replica made to the practice.
        let basePath = folder.appendingPathComponent("import-1.sqlite").path
        let imported = try CareStore.open(at: basePath).store.pendingChanges()  // a plain store: no key
        let remote = try Self.remoteEdits(count: changes, after: imported, practice: dump, seed: seed)
        let changeRows = try remote.map { change in
            ("\(change.record)", change.id.description, String(decoding: try encoder.encode(change), as: UTF8.self))
        }
        var bestOne = Duration.seconds(1_000_000)
        var bestPaged = Duration.seconds(1_000_000)
        var bestPlain = Duration.seconds(1_000_000)
        var bestEncrypted = Duration.seconds(1_000_000)
        var bestInPlace = Duration.seconds(1_000_000)
        // The same pages applied to the encrypted store imported above, what `outpost init` makes by default.
        let encryptedBase = folder.appendingPathComponent("encrypted-import-1.sqlite").path
        for run in 1...runs {
            let one = try measureApply(remote, pages: remote.count, from: basePath, folder: folder, name: "one-\(run)")
            let paged = try measureApply(remote, pages: page, from: basePath, folder: folder, name: "paged-\(run)")
            let encrypted = try measureApply(
                remote,
                pages: page,
                from: encryptedBase,
                folder: folder,
                name: "encrypted-\(run)",
                key: Self.benchKey
            )
            let plainPath = folder.appendingPathComponent("plain-changes-\(run).sqlite").path
            let plain = try measure { try Self.plainInsert(changeRows, at: plainPath) }
            // Plain SQLite holding the practice (its import above) and applying the same changes to it.
            let inPlacePath = folder.appendingPathComponent("plain-in-place-\(run).sqlite").path
            try FileManager.default.copyItem(
                atPath: folder.appendingPathComponent("plain-import-1.sqlite").path,
                toPath: inPlacePath
            )
            let inPlace = try measure { try Self.plainApplyInPlace(remote, rows: changeRows, at: inPlacePath) }
            bestInPlace = min(bestInPlace, inPlace)
            bestOne = min(bestOne, one)
            bestPaged = min(bestPaged, paged)
            bestEncrypted = min(bestEncrypted, encrypted)
            bestPlain = min(bestPlain, plain)
            print(
                "remote run \(run): outpost one transaction \(Self.format(one)), pages of \(page) "
                    + "\(Self.format(paged)), an encrypted store in pages of \(page) \(Self.format(encrypted)), "
                    + "plain SQLite \(Self.format(plain)), plain SQLite in place \(Self.format(inPlace))"
            )
        }
        print(
            "\(remote.count) remote changes into an encrypted store, in pages of \(page): "
                + "\(Self.format(bestEncrypted)), \(Self.ratio(bestEncrypted, bestPaged)) of the plain store's, "
                + "\(Self.ratio(bestEncrypted, bestPlain)) of plain SQLite's"
        )
        print(
            "\(remote.count) remote changes: outpost \(Self.format(bestOne)) in one transaction (ratio "
                + "\(Self.ratio(bestOne, bestPlain))), \(Self.format(bestPaged)) in pages of \(page) (ratio "
                + "\(Self.ratio(bestPaged, bestPlain))); plain SQLite \(Self.format(bestPlain)) (target: at most 2x)"
        )
        print(
            "for reference, plain SQLite applying them in place (each change's row appended and its record's JSON "
                + "row updated by json_set in the plain import): \(Self.format(bestInPlace)); outpost in one "
                + "transaction \(Self.ratio(bestOne, bestInPlace)) of it, in pages of \(page) "
                + Self.ratio(bestPaged, bestInPlace)
        )
        print("peak memory (whole run): \(Self.mebibytes(Self.peakResidentBytes()))")
        print("")

        // (c) The real `outpost import` of the same practice, from its JSON file, as a user runs it.
        let importPeak = try measureCLIImport(dump, folder: folder)
        if let importPeak {
            print(
                "outpost import (child process): \(Self.format(importPeak.elapsed)) wall, peak memory "
                    + "\(Self.mebibytes(importPeak.peakBytes)) (target: under 100 MiB)"
            )
        } else {
            print("outpost import (child process): skipped; build the outpost product beside outpost-bench")
        }
        print("")

        // The rows of issue 11's table, beside their targets and plain SQLite from this run.
        let table: [[String]] = [
            ["row", "outpost", "plain SQLite", "ratio", "target"],
            [
                "import, reference practice", Self.format(bestImport), Self.format(bestPlainImport),
                Self.ratio(bestImport, bestPlainImport), "at most 2x",
            ],
            [
                "import, reference practice, encrypted store", Self.format(bestEncryptedImport),
                Self.format(bestPlainImport), Self.ratio(bestEncryptedImport, bestPlainImport),
                "\(Self.ratio(bestEncryptedImport, bestImport)) of the plain store",
            ],
            ["open with a passphrase (scrypt)", Self.format(unlock), "", "", ""],
            [
                "\(remote.count) remote changes, one transaction", Self.format(bestOne), Self.format(bestPlain),
                Self.ratio(bestOne, bestPlain), "at most 2x",
            ],
            [
                "  plain SQLite applying them in place instead", Self.format(bestOne), Self.format(bestInPlace),
                Self.ratio(bestOne, bestInPlace), "(reference, not the target's)",
            ],
            [
                "\(remote.count) remote changes, pages of \(page)", Self.format(bestPaged), Self.format(bestPlain),
                Self.ratio(bestPaged, bestPlain), "",
            ],
            [
                "\(remote.count) remote changes, pages of \(page), encrypted store", Self.format(bestEncrypted),
                Self.format(bestPlain), Self.ratio(bestEncrypted, bestPlain),
                "\(Self.ratio(bestEncrypted, bestPaged)) of the plain store",
            ],
            [
                "store size after import", Self.mebibytes(storeBytes), Self.mebibytes(plainBytes),
                String(format: "%.2fx", Double(storeBytes) / Double(max(plainBytes, 1))), "at most 2x",
            ],
            [
                "peak memory, outpost import", importPeak.map { Self.mebibytes($0.peakBytes) } ?? "not measured", "",
                "", "under 100 MiB",
            ],
        ]
        let widths = (0..<5).map { column in table.map { $0[column].count }.max() ?? 0 }
        for row in table {
            print(
                zip(row, widths).map { cell, width in cell.padding(toLength: width, withPad: " ", startingAt: 0) }
                    .joined(separator: "  ")
            )
        }
        print("")
        print(
            "reproduce (README, \"Benchmarks\", builds it): .build-release/release/outpost-bench store --seed \(seed) "
                + "--size \(size) --runs \(runs)"
        )
    }

    /// The key of the benchmark's encrypted stores: a key file's 32 bytes (no passphrase stretching).
    static let benchKey: StoreKeySource = { () throws(ClientError) in
        try .keyFile(contents: (0..<32).map { UInt8($0) })
    }

    /// The time to open an encrypted store with a passphrase: one scrypt derivation and the key check.
    private func measureUnlock(folder: URL) throws -> Duration {
        let path = folder.appendingPathComponent("passphrase.sqlite").path
        let key: StoreKeySource = { () throws(ClientError) in try .passphrase("correct horse battery staple") }
        _ = try CareStore.create(at: path, key: key)
        return try measure { _ = try CareStore.open(at: path, key: key) }
    }

    /// Runs `outpost init` and `outpost import` of `dump` written as a file, as child processes (the `outpost`
    /// executable beside this one); returns the import's wall time and peak resident memory (its own, from
    /// `wait4`), or nil when there is no `outpost` executable.
    private func measureCLIImport(
        _ dump: PracticeDump,
        folder: URL
    ) throws -> (elapsed: Duration, peakBytes: Int)? {
        let outpost = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("outpost").path
        guard FileManager.default.isExecutableFile(atPath: outpost) else { return nil }
        let file = folder.appendingPathComponent("practice.json").path
        try Data(dump.jsonText().utf8).write(to: URL(fileURLWithPath: file))
        let store = folder.appendingPathComponent("cli-import.sqlite").path
        // Encrypted, as `outpost init` makes stores by default (with a key file: no passphrase to type).
        _ = try Self.spawn([
            outpost, "init", "--store", store, "--key-file", folder.appendingPathComponent("cli.key").path,
        ])
        let clock = ContinuousClock()
        let start = clock.now
        let peak = try Self.spawn(
            [outpost, "import", "--store", store, "--key-file", folder.appendingPathComponent("cli.key").path, file]
        )
        return (clock.now - start, peak)
    }

    /// Runs a program to its end (its output discarded); returns its peak resident memory in bytes, read
    /// from its `/proc/<pid>/status` (VmHWM, the high-water mark) every few milliseconds while it runs.
    /// (`wait4`'s `ru_maxrss` would not do: a spawned child starts out counted with this process's memory.)
    static func spawn(_ arguments: [String]) throws -> Int {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
        guard spawned == 0 else { throw ValidationError("could not run \(arguments[0]) (error \(spawned))") }
        var status: Int32 = 0
        var peak = 0
        while true {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                let kibibytes = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).prefix { $0.isNumber })
            {
                peak = max(peak, kibibytes * 1024)
            }
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            guard waited == 0 else { throw ValidationError("lost \(arguments[0])") }
            usleep(5_000)
        }
        guard status == 0 else {
            throw ValidationError("\(arguments.dropFirst().prefix(1).joined()) failed (status \(status))")
        }
        return peak
    }

    /// Copies the imported store, then times applying `changes` to the copy in pages of `pages`.
    private func measureApply(
        _ changes: [Change],
        pages: Int,
        from base: String,
        folder: URL,
        name: String,
        key: StoreKeySource? = nil
    ) throws -> Duration {
        let path = folder.appendingPathComponent("remote-\(name).sqlite").path
        try FileManager.default.copyItem(atPath: base, toPath: path)
        let store = try CareStore.open(at: path, key: key).store
        return try measure {
            var start = 0
            while start < changes.count {
                let end = min(start + pages, changes.count)
                try store.applyRemote(Array(changes[start..<end]))
                start = end
            }
        }
    }

    /// `count` edits by replica `site-b` to tasks and patients: priorities, due dates, assignees, statuses,
    /// notes, phones and care gaps, each replacing what the importing replica wrote.
    static func remoteEdits(
        count: Int,
        after imported: [Change],
        practice: PracticeDump,
        seed: UInt64
    ) throws
        -> [Change]
    {
        var document = Document(schema: CareModel.schema)
        try document.apply(imported)
        let tasks = practice.records.filter { $0.type == "task" }.map { RecordRef(type: "task", id: $0.id) }
        let patients = practice.records.filter { $0.type == "patient" }.map { RecordRef(type: "patient", id: $0.id) }
        let people = practice.records.filter { $0.type == "person" }.map(\.id)
        let startMillis = (imported.map(\.clock.millis).max() ?? 0) + 60_000
        var generator = SeededGenerator(seed: seed &+ 1)
        let replica = ReplicaID(unchecked: "site-b")
        var result: [Change] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            let choice = Int(generator.next() % 100)
            let record: RecordRef
            let field: String
            let operation: OutpostCRDT.Operation
            let value: Value
            switch choice {
            case 0..<25:
                (record, field, operation) = (pick(tasks, &generator), "priority", .assign)
                value = .string(pick(["routine", "urgent", "asap", "stat"], &generator))
            case 25..<45:
                (record, field, operation) = (pick(tasks, &generator), "dueDate", .assign)
                value = .string(PracticeGenerator.asOf.adding(days: Int(generator.next() % 90)).description)
            case 45..<60:
                (record, field, operation) = (pick(tasks, &generator), "assignee", .assign)
                value = .string(pick(people, &generator))
            case 60..<70:
                (record, field, operation) = (pick(tasks, &generator), "status", .assign)
                value = .string(pick(["in-progress", "on-hold", "ready"], &generator))
            case 70..<85:
                (record, field, operation) = (pick(tasks, &generator), "notes", .append)
                value = .string("Called; left a message (\(index)).")
            case 85..<95:
                (record, field, operation) = (pick(patients, &generator), "phone", .assign)
                value = .string("555-01\(String(format: "%02d", Int(generator.next() % 100)))")
            default:
                (record, field, operation) = (pick(patients, &generator), "careGaps", .add)
                value = .string(pick(["a1c-overdue", "flu-vaccine", "colorectal-screening"], &generator))
            }
            let change = CareModel.editChange(
                operation,
                record: record,
                field: field,
                value: value,
                current: document.field(record, field),
                id: ChangeID(replica: replica, counter: UInt64(index + 1)),
                clock: Timestamp(millis: startMillis + UInt64(index)),
                author: people[0],
                site: nil
            )
            _ = try document.apply(change)
            result.append(change)
        }
        return result
    }

    /// A seeded choice from a non-empty array.
    static func pick<Element>(_ elements: [Element], _ generator: inout SeededGenerator) -> Element {
        elements[Int(generator.next() % UInt64(elements.count))]
    }

    /// Plain SQLite's database at `path`: WAL (a pool's default) and `synchronous = FULL`, like the store.
    static func plainPool(at path: String) throws -> DatabasePool {
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        return try DatabasePool(path: path, configuration: configuration)
    }

    /// Plain SQLite: one row per item, keyed by (kind, id), its JSON text, all in one transaction.
    static func plainInsert(_ rows: [(String, String, String)], at path: String) throws {
        try plainPool(at: path).write { db in
            try db.execute(
                sql:
                    "CREATE TABLE item (kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (kind, id))"
            )
            let statement = try db.makeStatement(sql: "INSERT INTO item (kind, id, json) VALUES (?, ?, ?)")
            for (kind, id, json) in rows {
                try statement.execute(arguments: [kind, id, json])
            }
        }
    }

    /// Plain SQLite as an application that keeps its practice as JSON rows would apply remote changes, in one
    /// transaction: each change's JSON row appended to a change table, as `plainInsert` does, and its
    /// record's row updated in place by SQLite's JSON functions (an assignment sets the field; an append or an
    /// add appends the value to the field's array). Every update must find its record.
    static func plainApplyInPlace(_ changes: [Change], rows: [(String, String, String)], at path: String) throws {
        try plainPool(at: path).write { db in
            try db.execute(
                sql:
                    "CREATE TABLE change (record TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (id))"
            )
            let log = try db.makeStatement(sql: "INSERT INTO change (record, id, json) VALUES (?, ?, ?)")
            let assign = try db.makeStatement(
                sql: "UPDATE item SET json = json_set(json, ?, ?) WHERE kind = ? AND id = ?"
            )
            let append = try db.makeStatement(
                sql: """
                    UPDATE item SET json = json_set(json, ?1,
                        json_insert(coalesce(json_extract(json, ?1), json('[]')), '$[#]', ?2))
                    WHERE kind = ?3 AND id = ?4
                    """
            )
            for (change, row) in zip(changes, rows) {
                try log.execute(arguments: [row.0, row.1, row.2])
                let value: DatabaseValue =
                    switch change.value {
                    case .string(let text): text.databaseValue
                    case .int(let number): number.databaseValue
                    case .bool(let flag): flag.databaseValue
                    case .null: .null
                    }
                let arguments: StatementArguments = [
                    "$.fields.\(change.field)", value, change.record.type, change.record.id,
                ]
                try (change.operation == .assign ? assign : append).execute(arguments: arguments)
                guard db.changesCount == 1 else {
                    throw ValidationError("plain SQLite found no row for \(change.record)")
                }
            }
        }
    }

    private func measure(_ body: () throws -> Void) throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        try body()
        return clock.now - start
    }

    /// The size of a database and its WAL file.
    static func bytes(at path: String) -> Int {
        ["", "-wal"].reduce(0) { total, suffix in
            total + ((try? FileManager.default.attributesOfItem(atPath: path + suffix))?[.size] as? Int ?? 0)
        }
    }

    /// The process's peak resident set size (getrusage; Linux reports kibibytes).
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return usage.ru_maxrss
        #endif
    }

    /// The CPU this process has used, user and system, in seconds (getrusage).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func format(_ duration: Duration) -> String {
        let millis = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return "\(Int(millis.rounded())) ms"
    }

    static func ratio(_ lhs: Duration, _ rhs: Duration) -> String {
        let seconds = { (duration: Duration) in
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        return String(format: "%.2fx", seconds(lhs) / max(seconds(rhs), 1e-9))
    }

    static func mebibytes(_ bytes: Int) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}
