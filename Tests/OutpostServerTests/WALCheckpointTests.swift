import Foundation
import GRDB
import Logging
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// The SQLite store's commits do not checkpoint the write-ahead log themselves: a push that rewrote thousands of
/// record pages waited, inside its commit, while SQLite copied them into the database file. ``WALCheckpointer``
/// does it on a connection of its own after each write.
struct WALCheckpointTests {
    @Test func aCommitLeavesTheLogToTheCheckpointerWhichCopiesAllOfItIntoTheDatabase() async throws {
        let directory = try TemporaryDirectory("outpost-wal")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try ServerStore(directory: directory.path("server"), create: true, logger: logger)
        let threshold = try store.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
        #expect(threshold == 0, "the writer's connection does not checkpoint in its commits")
        // More pages in one transaction than SQLite's default threshold of 1,000.
        try store.write { db in
            try db.execute(sql: "CREATE TABLE filler (bytes BLOB NOT NULL)")
            for _ in 0..<1_200 { try db.execute(sql: "INSERT INTO filler (bytes) VALUES (zeroblob(8000))") }
        }
        let checkpoint = try await store.checkpointer.checkpoint()
        #expect(checkpoint.log > 1_200, "the transaction's pages are in the log: \(checkpoint)")
        #expect(checkpoint.checkpointed == checkpoint.log, "every page of the log is in the database file")
        let rows = try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM filler") }
        #expect(rows == 1_200)
    }
}
