import Foundation
import GRDB
import OutpostProtocol

/// What `outpost-server backup` wrote.
public struct BackupSummary: Sendable, Hashable {
    /// The backup file.
    public var path: String
    /// Its size in bytes.
    public var bytes: Int64
    /// The practices, changes and records it holds.
    public var practices: Int
    public var changes: Int
    public var records: Int
}

/// What `outpost-server restore` did.
public struct RestoreSummary: Sendable, Hashable {
    /// The practices and changes restored.
    public var practices: Int
    public var changes: Int
    /// When the backup was taken, in milliseconds since 1970.
    public var takenAtMillis: UInt64
    /// The store's new epoch.
    public var epoch: String
}

/// A backup file, checked: a SQLite database written by `outpost-server backup`, with its header table
/// (`outpost_backup`, key and value rows).
///
/// Two kinds: a copy of a SQLite store (SQLite's online backup: the store's own tables, as they were at one
/// instant), or the tables of a PostgreSQL store read in one `REPEATABLE READ` transaction (PostgreSQL's table
/// and column names). Either restores into PostgreSQL; a SQLite store restores from a SQLite backup.
public struct BackupFile: Sendable {
    /// Where the store the backup was taken from was kept.
    public enum Kind: String, Sendable {
        case sqlite
        case postgres
    }

    /// The file.
    public let path: String
    public let kind: Kind
    /// When the backup was taken, in milliseconds since 1970.
    public let takenAtMillis: UInt64
    /// The epoch of the store it was taken from.
    public let epoch: String?
    /// The backup format's version this server writes and reads.
    static let format = "1"
    /// The header table.
    static let headerTable = "outpost_backup"

    /// Opens and checks `path`.
    ///
    /// - Throws: ``ServerError`` `invalid_parameter` (one line, no content of the file) when there is no file, it
    ///   is not a backup, it is damaged or of a newer format.
    public init(path: String) throws(ServerError) {
        func refuse(_ why: String) -> ServerError {
            ServerError.parameter("file", "\(path) \(why)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw refuse("does not exist; give the path of a file written by 'outpost-server backup'")
        }
        let header: [String: String]
        do {
            var configuration = Configuration()
            configuration.readonly = true
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            header =
                try queue.read { db -> [String: String]? in
                    guard try db.tableExists(Self.headerTable) else { return nil }
                    let problems = try String.fetchAll(db, sql: "PRAGMA quick_check")
                    guard problems == ["ok"] else { throw BackupDamage() }
                    return Dictionary(
                        try Row.fetchAll(db, sql: "SELECT key, value FROM \(Self.headerTable)").map {
                            ($0["key"] as String, $0["value"] as String)
                        },
                        uniquingKeysWith: { first, _ in first }
                    )
                } ?? [:]
        } catch is BackupDamage {
            throw refuse("is damaged (SQLite's integrity check fails); restore another backup")
        } catch {
            throw refuse(
                "is not an Outpost server backup (not a SQLite database); give a file written by "
                    + "'outpost-server backup'"
            )
        }
        guard let format = header["format"], let kindText = header["kind"] else {
            throw refuse(
                "is not an Outpost server backup (no backup header); give a file written by "
                    + "'outpost-server backup'"
            )
        }
        guard format == Self.format, let kind = Kind(rawValue: kindText) else {
            throw refuse(
                "is a backup of format \(format) (\(kindText)); this server reads format \(Self.format): "
                    + "restore it with the version of outpost-server that wrote it"
            )
        }
        self.path = path
        self.kind = kind
        self.takenAtMillis = header["takenAt"].flatMap(UInt64.init) ?? 0
        self.epoch = header["epoch"]
    }

    /// Writes the header rows into a backup being written.
    static func writeHeader(kind: Kind, epoch: String, now: UInt64, schema: String, db: Database) throws {
        try db.execute(sql: "CREATE TABLE \(headerTable) (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
        for (key, value) in [
            ("format", format), ("kind", kind.rawValue), ("takenAt", String(now)), ("epoch", epoch),
            ("schema", schema), ("serverVersion", OutpostVersion.software),
        ] {
            try db.execute(sql: "INSERT INTO \(headerTable) (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }

    /// Writes a backup through `body` into a new file beside `path`, moved to `path` once whole: a failed or
    /// interrupted backup never leaves a file that looks whole. Refuses a `path` that exists.
    static func write(
        to path: String,
        _ body: (String) async throws -> BackupSummary
    ) async throws(ServerError) -> BackupSummary {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw ServerError.parameter("out", "\(path) exists; give a new file name, or remove it first")
        }
        let partial = path + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        // Patient data: readable by its owner only.
        guard FileManager.default.createFile(atPath: partial, contents: nil, attributes: [.posixPermissions: 0o600])
        else {
            throw ServerError.storage("cannot write \(partial); check the folder exists and is writable")
        }
        do {
            var value = try await body(partial)
            value.path = path
            guard rename(partial, path) == 0 else {
                throw ServerError.storage("cannot move the finished backup to \(path) (errno \(errno))")
            }
            return value
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            if let error = error as? ServerError { throw error }
            throw ServerError.storage("cannot write the backup to \(path): \(error)")
        }
    }

    /// The practices, changes and records of a written backup, and its size.
    static func summary(
        of path: String,
        queue: DatabaseQueue,
        changeTable: String = "change"
    ) throws
        -> BackupSummary
    {
        let counts = try queue.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM practice") ?? 0,
                try changeCount(table: changeTable, db: db),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record") ?? 0
            )
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        return BackupSummary(path: path, bytes: size, practices: counts.0, changes: counts.1, records: counts.2)
    }
}

private struct BackupDamage: Error {}

extension BackupFile {
    /// The changes a store or backup holds: a SQLite store's rows hold runs of `count` changes (``ChangeRuns``); a
    /// PostgreSQL backup's, one change each.
    static func changeCount(table: String = "change", db: Database) throws -> Int {
        let runs = try db.columns(in: table).contains { $0.name == "count" }
        return try Int.fetchOne(
            db,
            sql: runs ? "SELECT COALESCE(SUM(count), 0) FROM \(table)" : "SELECT COUNT(*) FROM \(table)"
        )
            ?? 0
    }
}

extension ServerStore {
    /// The server metadata table and the store's first epoch (migration `v8-server-epoch`).
    static func createServerMeta(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE server_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
                INSERT INTO server_meta (key, value) VALUES ('epoch', ?);
                """,
            arguments: [EpochRule.makeEpoch()]
        )
    }

    static func epoch(db: Database) throws -> String {
        guard let epoch = try String.fetchOne(db, sql: "SELECT value FROM server_meta WHERE key = 'epoch'") else {
            throw ServerError.storage("the server store has no epoch; it is damaged: restore a backup")
        }
        return epoch
    }

    public func epoch() async throws(ServerError) -> String {
        try await readAsync { db in try Self.epoch(db: db) }
    }

    /// Writes a consistent copy of the store to `path` while it serves: SQLite's online backup of one read
    /// transaction (a snapshot of one instant; writers go on meanwhile), with the backup header.
    ///
    /// - Throws: ``ServerError`` when `path` exists or cannot be written.
    public func backup(to path: String, now: UInt64) async throws(ServerError) -> BackupSummary {
        let pool = pool
        return try await BackupFile.write(to: path) { partial in
            let target = try DatabaseQueue(path: partial)
            defer { try? target.close() }
            try pool.backup(to: target)
            try await target.write { db in
                // Every record's tail merged into its row in the copy: a backup restores into PostgreSQL too,
                // which keeps no tails.
                // (In transactions' worth of rows, so memory stays bounded.)
                while try Self.foldTails(limit: TailFolder.chunk, db: db) == TailFolder.chunk {}
                let schema = try String.fetchOne(db, sql: "SELECT MAX(identifier) FROM grdb_migrations") ?? ""
                try BackupFile.writeHeader(
                    kind: .sqlite,
                    epoch: try Self.epoch(db: db),
                    now: now,
                    schema: schema,
                    db: db
                )
            }
            // One self-contained file: no write-ahead log beside it.
            try await target.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            return try BackupFile.summary(of: partial, queue: target)
        }
    }

    /// Replaces the SQLite store in `directory` with the backup `file`, in a new epoch.
    ///
    /// Refused while a server runs on the directory (``ServerLock``), and over an existing store unless `force`.
    /// The backup is copied beside the store, brought to this version's schema, given a new epoch and an audit
    /// entry, then moved over the store in one rename: an interrupted restore leaves the store as it was.
    ///
    /// - Throws: ``ServerError`` `invalid_parameter` for a backup of PostgreSQL or an existing store without
    ///   `force`; `unavailable` while a server runs or when the files cannot be written.
    public static func restore(
        from file: BackupFile,
        directory: String,
        force: Bool,
        now: UInt64
    ) throws(ServerError) -> RestoreSummary {
        guard file.kind == .sqlite else {
            throw ServerError.parameter(
                "file",
                "\(file.path) is a backup of a PostgreSQL store; restore it with --database URL (a PostgreSQL "
                    + "backup does not restore into SQLite)"
            )
        }
        try makeDirectory(directory)
        let lock = try ServerLock(directory: directory, exclusive: true)
        defer { lock.release() }
        let path = (directory as NSString).appendingPathComponent("outpost-server.sqlite")
        if FileManager.default.fileExists(atPath: path) && !force {
            throw ServerError.parameter(
                "force",
                "\(directory) holds a server store already; restore over it with --force (its content is replaced "
                    + "by the backup's)"
            )
        }
        let staging = path + ".restoring"
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: staging + suffix) }
        let epoch = EpochRule.makeEpoch()
        let summary: RestoreSummary
        do {
            try FileManager.default.copyItem(atPath: file.path, toPath: staging)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: staging)
            let queue = try DatabaseQueue(path: staging)
            defer { try? queue.close() }
            try migrator.migrate(queue)
            summary = try queue.write { db in
                try db.execute(sql: "DROP TABLE \(BackupFile.headerTable)")
                try db.execute(sql: "UPDATE server_meta SET value = ? WHERE key = 'epoch'", arguments: [epoch])
                try audit(
                    "restore",
                    practice: nil,
                    subject: nil,
                    detail: "from a backup taken at \(file.takenAtMillis) ms (epoch \(file.epoch ?? "none")); "
                        + "new epoch \(epoch)",
                    now: now,
                    db: db
                )
                return RestoreSummary(
                    practices: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM practice") ?? 0,
                    changes: try BackupFile.changeCount(db: db),
                    takenAtMillis: file.takenAtMillis,
                    epoch: epoch
                )
            }
            try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            try queue.close()
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                try? FileManager.default.removeItem(atPath: staging + suffix)
            }
            if let error = error as? ServerError { throw error }
            throw ServerError.storage("cannot restore \(file.path) into \(directory): \(error)")
        }
        // The old store's log and shared memory go first: the restored file must never meet the old log.
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        guard rename(staging, path) == 0 else {
            throw ServerError.storage("cannot move the restored store to \(path) (errno \(errno))")
        }
        return summary
    }
}

/// The lock a server holds on its SQLite data directory while it serves (shared), and a restore or a migration to
/// PostgreSQL takes alone (exclusive): a restore never replaces a store under a running server, and a migration
/// never copies one that a running server still writes to (what it stored after the copy would be missing from
/// PostgreSQL, with its acknowledgement already given). An advisory `flock` on
/// `DATA/outpost-server.lock`, released when the process ends, however it ends.
public final class ServerLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock, without waiting; `action` names what the exclusive lock is taken for, in the refusal.
    ///
    /// - Throws: ``ServerError`` `unavailable` when the other side holds it.
    public init(directory: String, exclusive: Bool, action: String = "restore") throws(ServerError) {
        let path = (directory as NSString).appendingPathComponent("outpost-server.lock")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ServerError.storage("cannot open \(path) (errno \(errno)); check the data directory's permissions")
        }
        guard flock(descriptor, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 else {
            close(descriptor)
            throw ServerError.storage(
                exclusive
                    ? "a server is running on \(directory); stop it first, then \(action)"
                    : "a restore is in progress on \(directory); start the server once it has finished"
            )
        }
        self.descriptor = descriptor
    }

    /// Releases the lock (also released when the process ends).
    public func release() {
        close(descriptor)
    }
}
