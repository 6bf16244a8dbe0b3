import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// `outpost init`: create this device's replica.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new replica (a local store) on this device; a server is optional.",
        discussion: "With --server and --token, the replica syncs with that server ('outpost sync')."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("This replica's id (default: a new random id).", valueName: "id")) var replica: String?
    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Encrypt the store (the default).",
            discussion: "The key is the key file (--key-file or $OUTPOST_KEY_FILE, made when absent), else "
                + "$OUTPOST_PASSPHRASE, else a passphrase asked twice on the terminal. --no-encrypt makes a plain store."
        )
    )
    var encrypt = true
    @OptionGroup var remoteOptions: RemoteOptions

    mutating func run() async throws {
        let remote = try remoteOptions.remote()
        let certificates = try remoteOptions.trustedCertificates()
        var replicaID: ReplicaID? = nil
        if let replica {
            guard let parsed = ReplicaID(replica) else {
                throw CLIError.input("--replica takes letters, digits, '-' and '_', at most 64 characters")
            }
            replicaID = parsed
        }
        let store = try create(replicaID: replicaID)
        print("created replica \(store.replicaID) at \(storeOptions.path)")
        if let remote {
            let session: SessionInfo?
            do {
                session = try await checkRemote(remote, trusting: certificates, store: store.store)
            } catch {
                // A refused token leaves nothing behind: the new store goes too.
                for suffix in ["", "-wal", "-shm"] {
                    try? FileManager.default.removeItem(atPath: storeOptions.path + suffix)
                }
                throw error
            }
            try store.store.setRemote(remote)
            try store.store.setTrustedCertificates(certificates)
            print("server: \(remote.url.absoluteString)" + (session.map { " (practice \($0.practice))" } ?? ""))
            print("next: 'outpost sync' brings the practice's records to this replica")
        }
        print("next: 'outpost use --person ID --site ID' signs your edits once you have a person record")
    }
}

extension Init {
    /// Creates the store, encrypted unless `--no-encrypt`; a key file this made goes again if the store is not made.
    func create(replicaID: ReplicaID?) throws -> CareStore {
        guard encrypt else {
            guard storeOptions.keyFile == nil else {
                throw CLIError.input("--key-file and --no-encrypt contradict each other; drop one of them")
            }
            return try CareStore.create(at: storeOptions.path, replicaID: replicaID)
        }
        guard !FileManager.default.fileExists(atPath: storeOptions.path) else {
            // The library's refusal, before any key file is made or passphrase asked for.
            return try CareStore.create(at: storeOptions.path, replicaID: replicaID)
        }
        let (key, madeFile) = try Passphrase.newKey(
            keyFile: storeOptions.keyFilePath,
            passphraseVariable: Passphrase.variable,
            for: storeOptions.path,
            refusal: "'outpost init' encrypts the new store and needs a key: set \(Passphrase.variable), give a key "
                + "file with --key-file, run on a terminal to be asked, or pass --no-encrypt for a plain store"
        )
        do {
            return try CareStore.create(at: storeOptions.path, replicaID: replicaID, key: { key })
        } catch {
            if let madeFile { try? FileManager.default.removeItem(atPath: madeFile) }
            throw error
        }
    }
}

/// `outpost use`: the person and site that sign this replica's edits.
struct Use: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set who signs this replica's edits and where they are made.",
        discussion: "Every change carries its author and site. Until a person is set, edits are signed replica:<id>."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("Your person id.", valueName: "person-id")) var person: String?
    @Option(help: ArgumentHelp("The site you work at.", valueName: "site-id")) var site: String?

    mutating func run() throws {
        let store = try storeOptions.open()
        if let person {
            _ = try RecordOutput.require(person, .person, in: store)
            try store.store.setSetting(CareStore.SettingKey.person, to: person)
        }
        if let site {
            _ = try RecordOutput.require(site, .site, in: store)
            try store.store.setSetting(CareStore.SettingKey.site, to: site)
        }
        print("author: \(try store.author())")
        print("site: \(try store.site() ?? "(none)")")
    }
}

/// `outpost status`
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show this replica: id, pending changes, open conflicts, records held, last sync."
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var replica: String
        var store: String
        var author: String
        var site: String?
        var pendingChanges: Int
        var refusedChanges: Int
        var openConflicts: Int
        var newConflicts: Int
        var records: [String: Int]
        var server: String?
        var lastSync: String?
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let status = try store.store.status()
        // New: detected since the last sync started (by that sync or after it).
        let since = try store.store.setting(SyncEngine.syncStartedSetting).flatMap { UInt64($0) } ?? 0
        let newConflicts = try store.store.conflicts().filter { $0.detectedAtMillis >= since }.count
        let report = Report(
            replica: status.replicaID.rawValue,
            store: storeOptions.path,
            author: try store.author(),
            site: try store.site(),
            pendingChanges: status.pendingChanges,
            refusedChanges: status.refusedChanges,
            openConflicts: status.openConflicts,
            newConflicts: newConflicts,
            records: status.recordCounts,
            server: status.serverURL,
            lastSync: status.lastSyncAtMillis.map(Format.millis)
        )
        if output.json {
            try Terminal.json(report)
            return
        }
        print("replica:         \(report.replica)")
        print("store:           \(report.store)")
        print("author:          \(report.author)\(report.site.map { " at \($0)" } ?? "")")
        print("pending changes: \(report.pendingChanges)")
        if report.refusedChanges > 0 {
            print("refused changes: \(OutboxCommand.refusedLine(report.refusedChanges))")
        }
        print(
            "open conflicts:  \(report.openConflicts)"
                + (report.openConflicts > 0
                    ? " (\(report.newConflicts) new since the last sync; 'outpost conflicts list')" : "")
        )
        print("server:          \(report.server ?? "(none: offline only)")")
        print("last sync:       \(report.lastSync ?? "never")")
        let counts = RecordType.allCases.compactMap { type in
            report.records[type.rawValue].map { "\($0) \(type)" }
        }
        print("records:         \(counts.isEmpty ? "none" : counts.joined(separator: ", "))")
    }
}

/// `outpost history RECORD`
struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every value each field of a record has had, with who, where and when."
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: ArgumentHelp("The record's id, for example pat_01JD….", valueName: "id")) var id: String
    @Option(help: ArgumentHelp("Only this field.", valueName: "field")) var field: String?

    struct Entry: Encodable {
        var change: String
        var field: String
        var operation: String
        var value: Value
        var replaces: [String]
        var clock: String
        var at: String
        var author: String
        var site: String?
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let record = try RecordOutput.require(id, nil, in: store)
        let changes = try store.store.history(of: record.ref).filter { field == nil || $0.field == field }
        let entries = changes.map { change in
            Entry(
                change: change.id.description,
                field: change.field,
                operation: change.operation.rawValue,
                value: change.value,
                replaces: change.replaces.map(\.description),
                clock: change.clock.description,
                at: Format.clock(change.clock),
                author: change.author,
                site: change.site
            )
        }
        if output.json {
            try Terminal.json(entries)
            return
        }
        Terminal.table(
            ["when", "field", "op", "value", "author", "site", "change"],
            entries.map { [$0.at, $0.field, $0.operation, $0.value.description, $0.author, $0.site ?? "", $0.change] },
            empty: "no history"
        )
    }
}

/// `outpost export`
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Write a canonical dump of every record: sorted and stable, identical on replicas with the same state."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "Output format (json).") var format = "json"
    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file"))
    var output: String?

    mutating func validate() throws {
        guard format == "json" else { throw ValidationError("--format takes json") }
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        // Written as it is read, so that the whole practice is never in memory; a file is written beside
        // its destination and moved into place once complete.
        let temporary = output.map { $0 + ".partial-\(ProcessInfo.processInfo.processIdentifier)" }
        if let temporary {
            guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
                throw CLIError.runtime("could not write \(output ?? ""); check the folder exists and is writable")
            }
        }
        guard let handle = temporary.map({ FileHandle(forWritingAtPath: $0) }) ?? FileHandle.standardOutput else {
            throw CLIError.runtime("could not write \(output ?? ""); check the folder exists and is writable")
        }
        var buffer = Data()
        do {
            try store.exportCanonicalJSON { piece in
                buffer.append(contentsOf: piece.utf8)
                if buffer.count >= 1 << 16 {
                    try handle.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try handle.write(contentsOf: buffer)
            if let temporary, let output {
                try handle.close()
                guard rename(temporary, output) == 0 else { throw CLIError.runtime("rename") }
            }
        } catch let error as ClientError {
            if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
            throw error
        } catch {
            if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
            throw CLIError.runtime("could not write \(output ?? "the export"); check the disk and the folder")
        }
    }
}
