import GRDB
import Logging
import OutpostSQLite

/// Copies the store's write-ahead log back into the database file on a connection of its own, so that no
/// request waits for it.
///
/// SQLite's default runs that copy (a checkpoint) inside the commit that takes the log past 1,000 pages. A push of
/// edits to records all over a practice rewrites thousands of record pages, and its request then also waited
/// while every one of them was written a second time, into the database file (about 100 ms of a 10,000-edit
/// push, docs/sync.md). The store's connections observe their commits instead (``WALCommitObserver``, SQLite's
/// `sqlite3_wal_hook`, which replaces the automatic checkpoint): a commit that leaves the log at ``threshold``
/// pages or more (SQLite's own default) signals this, which runs `PRAGMA wal_checkpoint(PASSIVE)`, waiting for no
/// reader or writer, on a task of its own (``BackgroundSignal``: signals that arrive while it works make one more
/// checkpoint, not a queue); small writes gather in the log until it reaches the threshold, as with SQLite's
/// default.
///
/// A checkpoint is also what grows the database file, and SQLite maps a file again for the connection that grows
/// it: after each commit, the writer's map follows the file (``MemoryMapFollower``), or its reads past the size
/// the file had when the writer first read through its map would be copied out of the kernel, not read in place.
final class WALCheckpointer: WALCommitObserver {
    /// The log's size, in pages, from which a commit asks for a checkpoint.
    static let threshold = 1_000

    private let signals = BackgroundSignal()
    /// The writer's map of the database file, kept as large as the file.
    let writerMap = MemoryMapFollower()

    func committed(frames: Int, connection: SQLiteConnection) {
        if Self.asksForCheckpoint(frames: frames) { signals.signal() }
        writerMap.follow(connection)
    }

    /// Whether a commit that leaves `frames` pages in the log asks for a checkpoint.
    static func asksForCheckpoint(frames: Int) -> Bool { frames >= threshold }

    /// Opens the checkpointing connection to the store at `path` (created and migrated) and checkpoints on each
    /// signal, until ``stop()``. Returns the connection, for ``checkpoint(_:)``.
    func start(path: String, logger: Logger) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.label = "outpost.checkpoint"
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        signals.start {
            do {
                _ = try await Self.checkpoint(queue)
            } catch {
                // The next large commit signals again; SQLite's log stays correct meanwhile, only longer.
                logger.warning("write-ahead log checkpoint failed", metadata: ["error": "\(error)"])
            }
        } end: {
            try? queue.close()
        }
        return queue
    }

    /// Checkpoints now on `queue`, as the task does when signalled: the log's frames and how many of them are in
    /// the database file afterwards.
    static func checkpoint(_ queue: DatabaseQueue) async throws -> (log: Int, checkpointed: Int) {
        try await queue.writeWithoutTransaction { db in
            let row = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
            return (row?[1] ?? 0, row?[2] ?? 0)
        }
    }

    /// Ends the checkpointing task after the checkpoint it may be running.
    func stop() { signals.stop() }
}
