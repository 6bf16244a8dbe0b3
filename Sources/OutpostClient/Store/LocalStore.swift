import Foundation
import GRDB
public import Logging
public import OutpostCRDT
import OutpostModel

/// One replica's local store: the change log, the merged records, the outbox, the conflict inbox and the
/// replica's clock, in one SQLite database (WAL) through GRDB.
///
/// Every call that writes is one transaction: the changes, their effect on the merged records, the
/// outbox and the conflict inbox are written together or not at all, and are durable when the call
/// returns. For example:
///
/// ```swift
/// let store = try LocalStore.create(at: path, configuration: .init(schema: CareModel.schema))
/// let patient = RecordRef(type: "patient", id: "pat_01JD…")
/// try store.commit([.assign(patient, "phone", "555-0100")], author: "per_01JD…", site: nil)
/// ```
///
/// Errors are ``ClientError``s; SQLite's never cross this API.
public struct LocalStore: Sendable {
    /// How a store interprets its records.
    public struct Configuration: Sendable {
        /// Merge policies of every field.
        public var schema: Schema
        /// For record types that belong to another record (a task to its patient), the field that names
        /// the owner; stored beside the record so owners' records can be found quickly.
        public var ownerField: [String: String]
        /// The wall clock that stamps local changes.
        public var wallClock: any WallClock
        /// Where the store logs (identifiers only, never record contents).
        public var logger: Logger
        /// The key of an encrypted store, asked for only when needed: ``LocalStore/create(at:replicaID:configuration:)``
        /// encrypts the new store when it is set; ``LocalStore/open(at:configuration:)`` asks for it when the
        /// store is encrypted (a plain store opens without it). See docs/store.md, "Encryption at rest".
        public var key: StoreKeySource?

        /// Creates a configuration.
        public init(
            schema: Schema,
            ownerField: [String: String] = [:],
            wallClock: any WallClock = SystemWallClock(),
            logger: Logger = Logger(label: "outpost.store", factory: { _ in SwiftLogNoOpLogHandler() }),
            key: StoreKeySource? = nil
        ) {
            self.schema = schema
            self.ownerField = ownerField
            self.wallClock = wallClock
            self.logger = logger
            self.key = key
        }
    }

    let writer: DatabasePool
    /// The store's configuration.
    public let configuration: Configuration
    /// This replica's id.
    public let replicaID: ReplicaID
    /// Where the store lives on disk.
    public let path: String
    /// Encodes and decodes every blob, sealing and opening them when the store is encrypted.
    let codec: StoreCodec
    /// The records this process's latest write transactions may have changed, by the generation each committed
    /// (``WriteLog``); shared by every copy of this value.
    let writeLog = WriteLog()

    /// Creates a new store at `path` for a new replica.
    ///
    /// The store is encrypted when `configuration.key` is set: its key is asked for (and stretched) before the
    /// file is made.
    ///
    /// - Parameter replicaID: the replica's id; a random one is made when `nil`.
    /// - Throws: ``ClientError`` `storeExists` when a file is already there; `storeReadOnly` or `storage`
    ///   when the file cannot be created; the key source's error. Nothing is left behind on failure.
    public static func create(
        at path: String,
        replicaID: ReplicaID? = nil,
        configuration: Configuration
    ) throws(ClientError) -> LocalStore {
        if FileManager.default.fileExists(atPath: path) {
            throw ClientError(
                code: .storeExists,
                message: "a store already exists at \(path); use it, or choose another path with --store"
            )
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var generator = SystemRandomNumberGenerator()
        let replica = replicaID ?? ReplicaID(unchecked: "r" + SortableID.make(millis: 0, using: &generator).suffix(16))
        let (codec, keyRow) = try newCodec(configuration)
        do {
            let pool = try makePool(path: path)
            try Self.migrator.migrate(pool)
            let now = configuration.wallClock.nowMillis()
            try pool.write { db in
                try db.execute(
                    sql: "INSERT INTO replica (id, replicaID, createdAt) VALUES (1, ?, ?)",
                    arguments: [replica.rawValue, Int64(now)]
                )
                if let keyRow { try Self.insert(keyRow, db: db) }
            }
            configuration.logger.info("created store", metadata: ["replica": "\(replica)"])
            return LocalStore(writer: pool, configuration: configuration, replicaID: replica, path: path, codec: codec)
        } catch {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            throw Self.wrap(error, path: path, doing: "create the store")
        }
    }

    /// Opens an existing store, upgrading its schema when it was made by an older version.
    ///
    /// An encrypted store asks `configuration.key` for its key and checks it before anything is written.
    ///
    /// - Throws: ``ClientError`` `storeNotFound` (no file: run `outpost init`), `storeCorrupt` (not an
    ///   Outpost store or damaged), `storeTooNew` (made by a newer Outpost), `storeReadOnly`; for an encrypted
    ///   store `keyRequired` (no key source) or `wrongKey` (the key does not open it).
    public static func open(at path: String, configuration: Configuration) throws(ClientError) -> LocalStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ClientError(
                code: .storeNotFound,
                message: "no store at \(path); create one with 'outpost init', or point --store (or OUTPOST_STORE) "
                    + "at an existing store"
            )
        }
        // Opening writes to the file (WAL mode): refuse a file that is not an SQLite database at all (empty
        // or foreign) before SQLite touches it.
        // (A file this process cannot read is left to SQLite, which reports the permission problem.)
        if let file = FileHandle(forReadingAtPath: path) {
            let header = (try? file.read(upToCount: 16)) ?? nil
            try? file.close()
            guard let header, header.elementsEqual("SQLite format 3\0".utf8) else {
                throw ClientError(
                    code: .storeCorrupt,
                    message: "could not open the store: \(path) is not an Outpost store or is damaged; restore it "
                        + "from a backup or create a new one with 'outpost init'"
                )
            }
        }
        do {
            // Checked through a read-only connection first: opening a pool writes (WAL set-up), and a store this
            // version must not open (newer, foreign) is left untouched.
            let probe = try DatabaseQueue(path: path, configuration: Self.databaseConfiguration(readOnly: true))
            let (superseded, complete, replica, keyRow, stale, deferred) = try probe.read { db in
                let superseded = try Self.migrator.hasBeenSuperseded(db)
                let complete = try Self.migrator.hasCompletedMigrations(db)
                let replica =
                    try db.tableExists("replica")
                    ? String.fetchOne(db, sql: "SELECT replicaID FROM replica WHERE id = 1") : nil
                // A projection left to fill (the v6-projection migration, or a fill cut short).
                let stale =
                    try db.tableExists("projection_stale")
                    && Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM projection_stale)") == true
                // Indexes a bootstrap cut short left dropped (``deferIndexes()``).
                let deferred = try db.tableExists("setting") && Self.savedIndexes(db: db) != nil
                return (superseded, complete, replica, try Self.fetchKeyRow(db), stale, deferred)
            }
            try probe.close()
            if superseded {
                throw ClientError(
                    code: .storeTooNew,
                    message: "the store at \(path) was written by a newer version of Outpost; upgrade outpost to "
                        + "open it"
                )
            }
            // Checked before migrating, so that another program's SQLite database is never written to.
            guard let replica, let replicaID = ReplicaID(replica) else {
                throw ClientError(
                    code: .storeCorrupt,
                    message: "the store at \(path) has no replica identity; it is damaged or not an Outpost store"
                )
            }
            // The key is checked before the pool is opened: a wrong or missing key leaves the files untouched.
            let codec = try unlock(keyRow, configuration: configuration, path: path)
            let pool = try makePool(path: path)
            if deferred { try pool.write { db in try Self.restoreIndexes(db: db, path: path) } }
            if !complete { try Self.migrator.migrate(pool) }
            let store = LocalStore(
                writer: pool,
                configuration: configuration,
                replicaID: replicaID,
                path: path,
                codec: codec
            )
            // Filled once unlocked: the fill decodes the (maybe sealed) states (docs/store.md, "The projection").
            if !complete || stale { try store.fillProjectionIfStale() }
            return store
        } catch let error as ClientError {
            throw error
        } catch {
            throw Self.wrap(error, path: path, doing: "open the store")
        }
    }

    /// Opens the writable pool with full durability.
    ///
    /// GRDB sets `synchronous = NORMAL` on the writer when it enables WAL, after `prepareDatabase` has run;
    /// under NORMAL a commit can be lost to a power cut. FULL is set again here, once the pool is open.
    static func makePool(path: String) throws -> DatabasePool {
        let pool = try DatabasePool(path: path, configuration: Self.databaseConfiguration(readOnly: false))
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        return pool
    }

    /// The page size of a new store (`PRAGMA page_size`; SQLite ignores it for a file that has pages already, so a
    /// store made with SQLite's 4 KiB pages keeps them). A record row holds the record's state, 150 to 650 bytes in
    /// the reference practice, in a `WITHOUT ROWID` table whose interior pages hold whole rows too: with 16 KiB
    /// pages each page holds four times the rows, the record table's B-tree is shallower, and a bulk load fills
    /// and checkpoints a quarter as many pages. A new laptop's bootstrap went about a twentieth faster, the remote
    /// apply and the import stayed within the spread, the store 3% larger (docs/store.md, "Pages").
    static let pageSize = 16_384

    static func databaseConfiguration(readOnly: Bool) -> GRDB.Configuration {
        var config = GRDB.Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(10)
        config.label = "outpost.store"
        config.prepareDatabase { db in
            // The writable connection only (a pool's readers are read-only connections): SQLite ignores it there.
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA page_size = \(pageSize)") }
            // Full durability: a command's write survives a power cut once the command returns.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        return config
    }

    /// Maps a GRDB or SQLite error to a ``ClientError`` without exposing statement arguments.
    static func wrap(_ error: any Error, path: String, doing action: String) -> ClientError {
        if let error = error as? ClientError { return error }
        if let error = error as? CRDTError {
            return ClientError(code: .storeCorrupt, message: "could not \(action): \(error.message)", cause: error)
        }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return ClientError(
                    code: .storeCorrupt,
                    message: "could not \(action): \(path) is not an Outpost store or is damaged; restore it from "
                        + "a backup or create a new one with 'outpost init'",
                    cause: error
                )
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
                return ClientError(
                    code: .storeReadOnly,
                    message: "could not \(action): \(path) cannot be written; check the file's and its folder's "
                        + "permissions",
                    cause: error
                )
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return ClientError(
                    code: .storeBusy,
                    message: "could not \(action): another process is using \(path); try again when it is done",
                    cause: error
                )
            case .SQLITE_FULL:
                return ClientError(
                    code: .storage,
                    message: "could not \(action): the disk holding \(path) is full; free some space and retry",
                    cause: error
                )
            default:
                break
            }
            return ClientError(
                code: .storage,
                message: "could not \(action): SQLite error \(error.resultCode.rawValue) on \(path)",
                cause: error
            )
        }
        return ClientError(code: .storage, message: "could not \(action) at \(path)", cause: nil)
    }
}
