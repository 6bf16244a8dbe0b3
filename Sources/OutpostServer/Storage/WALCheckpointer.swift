import GRDB
import Logging

/// Copies the store's write-ahead log back into the database file after writes, on a connection of its own, so
/// that no request waits for it.
///
/// SQLite's default runs that copy (a checkpoint) inside the commit that takes the log past 1,000 pages. A push of
/// edits to records all over a practice rewrites thousands of record pages, and its request then also waited
/// while every one of them was written a second time, into the database file (about 100 ms of a 10,000-edit
/// push, docs/sync.md). The store turns that off (`PRAGMA wal_autocheckpoint = 0`) and calls ``wrote()`` after
/// each write transaction; this runs `PRAGMA wal_checkpoint(PASSIVE)`, which waits for no reader or writer, on a
/// task of its own. Signals that arrive while it works are folded into one more checkpoint.
final class WALCheckpointer: Sendable {
    private let signals: AsyncStream<Void>.Continuation
    private let queue: DatabaseQueue

    /// Opens the checkpointing connection to the store at `path` (already created and migrated).
    init(path: String, logger: Logger) throws {
        var configuration = Configuration()
        configuration.label = "outpost.checkpoint"
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        let (stream, signals) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.signals = signals
        self.queue = queue
        Task.detached(priority: .utility) {
            for await _ in stream {
                do {
                    _ = try await Self.checkpoint(queue)
                } catch {
                    // The next write signals again; SQLite's log stays correct meanwhile, only longer.
                    logger.warning("write-ahead log checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
            try? queue.close()
        }
    }

    /// Checkpoints now, as the task does when signalled: the log's frames and how many of them are in the database
    /// file afterwards.
    func checkpoint() async throws -> (log: Int, checkpointed: Int) { try await Self.checkpoint(queue) }

    private static func checkpoint(_ queue: DatabaseQueue) async throws -> (log: Int, checkpointed: Int) {
        try await queue.writeWithoutTransaction { db in
            let row = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
            return (row?[1] ?? 0, row?[2] ?? 0)
        }
    }

    /// Asks for a checkpoint: a write transaction committed.
    func wrote() { signals.yield() }

    /// Ends the checkpointing task after the checkpoint it may be running.
    func stop() { signals.finish() }
}
