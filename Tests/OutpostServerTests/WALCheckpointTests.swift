import Foundation
import GRDB
import Logging
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// The SQLite store's commits do not checkpoint the write-ahead log themselves: a push that rewrote thousands of
/// record pages waited, inside its commit, while SQLite copied them into the database file. The writer's commits
/// tell ``WALCheckpointer``, which checkpoints on a connection of its own once the log holds 1,000 pages.
struct WALCheckpointTests {
    @Test func aCommitLeavesTheLogToTheCheckpointerWhichCopiesAllOfItIntoTheDatabase() async throws {
        let directory = try TemporaryDirectory("outpost-wal")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try ServerStore(directory: directory.path("server"), create: true, logger: logger)
        // SQLite reports 0 once its automatic checkpoint is replaced by another commit hook (1,000 without).
        let automatic = try store.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
        #expect(automatic == 0, "the writer's connection does not checkpoint in its commits")
        // More pages in one transaction than the threshold.
        try store.write { db in
            try db.execute(sql: "CREATE TABLE filler (bytes BLOB NOT NULL)")
            for _ in 0..<1_200 { try db.execute(sql: "INSERT INTO filler (bytes) VALUES (zeroblob(8000))") }
        }
        let checkpoint = try await WALCheckpointer.checkpoint(store.checkpointQueue)
        #expect(checkpoint.log > 1_200, "the transaction's pages are in the log: \(checkpoint)")
        #expect(checkpoint.checkpointed == checkpoint.log, "every page of the log is in the database file")
        let rows = try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM filler") }
        #expect(rows == 1_200)
    }

    @Test func aCommitAsksForACheckpointOnceTheLogHoldsAThousandPages() {
        #expect(!WALCheckpointer.asksForCheckpoint(frames: 0))
        #expect(!WALCheckpointer.asksForCheckpoint(frames: 999), "small writes gather in the log")
        #expect(WALCheckpointer.asksForCheckpoint(frames: 1_000))
        #expect(WALCheckpointer.asksForCheckpoint(frames: 50_000))
    }
}
