import Foundation
import GRDB
import HTTPTypes
import Logging
import OutpostCRDT
import OutpostModel
import OutpostProtocol
import OutpostSQLite
import Synchronization

/// A practice of the umbrella store: the hard boundary of every read and write.
public struct PracticeEntry: Sendable, Hashable, Codable {
    /// The practice id (`pra_…`).
    public var id: String
    /// Its display name.
    public var name: String
    /// When it was added, in milliseconds since the Unix epoch.
    public var createdAtMillis: UInt64
}

/// The umbrella store on SQLite (GRDB, WAL): practices, tokens, devices, the changes feed, merged records
/// and open conflicts.
///
/// The feed is the `change` table's integer primary key. SQLite has one writer at a time and assigns the
/// key inside the writing transaction, so feed order is commit order and a reader can never see a later
/// change before an earlier one commits: a pull that stops at the highest key it saw skips nothing.
public final class ServerStore: Sendable {
    let pool: DatabasePool
    /// Checkpoints the write-ahead log off the request path, told by the writer's commits.
    let checkpointer: WALCheckpointer
    /// The checkpointer's own connection.
    let checkpointQueue: DatabaseQueue
    /// Merges record tails into their records in the background.
    let folder = TailFolder()
    /// The writes through ``writeAsync(_:)`` queued for SQLite's one writer or running: a whole-practice pull
    /// records itself without waiting when there are any (``recordPull(_:practice:report:now:pulledTo:from:placed:)``).
    let writesWaiting = Atomic<Int>(0)
    /// The database file.
    public let path: String
    let logger: Logger
    /// How much of the database file SQLite reads through a memory map (`PRAGMA mmap_size`).
    static let mappedBytes: Int64 = 0x7FFF_0000
    /// The page size of a new store (`PRAGMA page_size`).
    static let pageSize = 8192

    /// Creates the data directory (and its parents), readable only by this user; a failure says why in words: a
    /// file where a directory should be, or a parent this user may not write to.
    static func makeDirectory(_ directory: String) throws(ServerError) {
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            // The nearest part of the path that exists tells what is in the way.
            var existing = (directory as NSString).standardizingPath
            var isDirectory: ObjCBool = false
            while !existing.isEmpty && existing != "/"
                && !FileManager.default.fileExists(atPath: existing, isDirectory: &isDirectory)
            {
                existing = (existing as NSString).deletingLastPathComponent
            }
            if FileManager.default.fileExists(atPath: existing, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw ServerError.storage(
                    "cannot create the data directory \(directory): \(existing) is a file, not a directory; give "
                        + "another with --data"
                )
            }
            throw ServerError.storage(
                "cannot create the data directory \(directory) in \(existing.isEmpty ? "/" : existing): "
                    + (access(existing.isEmpty ? "/" : existing, W_OK) != 0
                        ? "permission denied" : "\((error as NSError).localizedDescription)")
                    + "; give a directory this user may write to with --data"
            )
        }
    }

    /// Opens the store in `directory`, creating both when `create` is true. With `foldingTails` false, record
    /// tails are merged only when ``foldTails()`` is called (tests that look at the tails themselves).
    ///
    /// - Throws: ``ServerError`` when the directory or store is missing (and `create` is false), unreadable
    ///   or of a newer schema.
    public init(directory: String, create: Bool, logger: Logger, foldingTails: Bool = true) throws(ServerError) {
        let path = (directory as NSString).appendingPathComponent("outpost-server.sqlite")
        self.path = path
        self.logger = logger
        guard !directory.isEmpty else {
            throw ServerError.storage("the data directory is empty; give one with --data DIR or $OUTPOST_DATA")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ServerError.storage("\(directory) is a file, not a directory; give a data directory with --data")
        }
        // A directory this user may not enter hides the store: said as such, not as a missing store.
        if isDirectory.boolValue, access(directory, R_OK | W_OK | X_OK) != 0 {
            throw ServerError.storage(
                "cannot use the data directory \(directory): \(String(cString: strerror(errno))); run as the user "
                    + "who owns it, or give another with --data"
            )
        }
        let exists = FileManager.default.fileExists(atPath: path)
        if !exists && !create {
            throw ServerError.storage(
                "no server store in \(directory); start 'outpost-server serve --data \(directory)' once to create it"
            )
        }
        do {
            try Self.makeDirectory(directory)
            let checkpointer = WALCheckpointer()
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            // The configuration, and with it `checkpointer`, lives as long as the pool's connections.
            configuration.prepareDatabase { db in
                // 8 KiB pages for a new store (SQLite ignores this for one that has pages already): a record row
                // holds the record's merged state, about 1 to 2 KB for a patient or task, and a row larger than a
                // quarter of a 4 KiB page spills to an overflow page of its own. With 4 KiB pages a reference
                // practice's record table took 143 MB for 54 MB of states; with 8 KiB, 70 MB (docs/sync.md).
                try db.execute(sql: "PRAGMA page_size = \(Self.pageSize)")
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                // Reads through a memory map, not a read() copy of each page that misses SQLite's small page
                // cache: a snapshot reads every state of a practice, and the copies were a fifth of the server's
                // time in a bootstrap (docs/sync.md). Writes still go through the WAL. 2 GiB less 64 KiB is the
                // most SQLite's default build maps; past it, pages are read as before.
                try db.execute(sql: "PRAGMA mmap_size = \(Self.mappedBytes)")
                // Checkpoints run on a connection of their own (``WALCheckpointer``), not inside the commit of the
                // request that took the log past SQLite's threshold: the hook replaces the automatic checkpoint.
                db.observeWALCommits(checkpointer)
            }
            if !exists {
                // The store holds patient data: only its owner may read it (SQLite gives the -wal and -shm
                // files the database file's mode).
                _ = FileManager.default.createFile(
                    atPath: path,
                    contents: nil,
                    attributes: [.posixPermissions: 0o600]
                )
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            // The writer maps at least the file as it is now, when it first reads through its map.
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
            checkpointer.writerMap.assumeMapped(Int64(size ?? 0))
            self.checkpointer = checkpointer
            checkpointQueue = try checkpointer.start(path: path, logger: logger)
        } catch let error as ServerError {
            throw error
        } catch {
            throw ServerError.storage("cannot open the server store at \(path): \(error)")
        }
        if foldingTails {
            let tail = (try? pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record_tail") }) ?? 0
            folder.start(for: self, count: tail, logger: logger)
        }
    }

    deinit {
        checkpointer.stop()
        folder.stop()
    }

    /// Closes the store's connections now, not when it is released: a restore replaces the file this store had
    /// open (``RestoreCarryOver`` reads it first), and SQLite must not meet the old file's log and locks in the new.
    public func close() {
        checkpointer.stop()
        folder.stop()
        try? checkpointQueue.close()
        try? pool.close()
    }

    /// Runs `body` in a write transaction; any failure other than a ``ServerError`` becomes an internal one.
    func write<T>(_ body: (Database) throws -> T) throws(ServerError) -> T {
        do {
            return try pool.write(body)
        } catch let error as ServerError {
            throw error
        } catch {
            logger.error("storage write failed", metadata: ["error": "\(error)"])
            throw ServerError.internalFailure()
        }
    }

    /// Runs `body` in a write transaction without blocking the calling thread while it waits for SQLite's one
    /// writer: the sync endpoints run on Swift's cooperative pool (one thread per core), which a blocked
    /// thread would take from every other request.
    func writeAsync<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ServerError) -> T {
        writesWaiting.add(1, ordering: .relaxed)
        defer { writesWaiting.subtract(1, ordering: .relaxed) }
        do {
            return try await pool.write(body)
        } catch let error as ServerError {
            throw error
        } catch {
            logger.error("storage write failed", metadata: ["error": "\(error)"])
            throw ServerError.internalFailure()
        }
    }

    /// Runs `body` in a read transaction without blocking the calling thread (see ``writeAsync(_:)``).
    func readAsync<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ServerError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as ServerError {
            throw error
        } catch {
            logger.error("storage read failed", metadata: ["error": "\(error)"])
            throw ServerError.internalFailure()
        }
    }

    /// Runs `body` in a read transaction; any failure other than a ``ServerError`` becomes an internal one.
    func read<T>(_ body: (Database) throws -> T) throws(ServerError) -> T {
        do {
            return try pool.read(body)
        } catch let error as ServerError {
            throw error
        } catch {
            logger.error("storage read failed", metadata: ["error": "\(error)"])
            throw ServerError.internalFailure()
        }
    }

    /// Makes the next change's feed position greater than `position` (SQLite's AUTOINCREMENT counter for the
    /// `change` table is a row of `sqlite_sequence`, which has no key: update the row, never add a second one).
    static func reserveFeedPosition(atLeast position: Int64, db: Database) throws {
        try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = 'change' AND seq < ?", arguments: [position])
        if try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'change'") == 0 {
            try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('change', ?)", arguments: [position])
        }
    }
}

extension ServerError {
    static func storage(_ message: String) -> ServerError {
        ServerError(.unavailable, .serviceUnavailable, message)
    }

    static func internalFailure() -> ServerError {
        ServerError(.internalError, .internalServerError, "the server failed unexpectedly; quote the request id")
    }
}
