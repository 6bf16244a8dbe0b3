import Foundation
import GRDB
import OutpostSQLite
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// The SQLite store's commits do not checkpoint the write-ahead log themselves: a push that rewrote thousands of
/// record pages waited, inside its commit, while SQLite copied them into the database file. The writer's commits
/// tell ``WALCheckpointer``, which checkpoints on a connection of its own once the log holds 1,000 pages.
struct WALCheckpointTests {
    @Test func aCommitLeavesTheLogToTheCheckpointerWhichCopiesAllOfItIntoTheDatabase() async throws {
        let directory = try TemporaryDirectory("outpost-wal")
        let store = try ServerStore.quiet(directory.path("server"))
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

    /// The checkpoints grow the database file on their own connection, and SQLite maps a file again only for the
    /// connection that grows it (or one that sees another's commit when a read begins): the writer's map stayed the
    /// size the file had when the writer first read through it, and its reads past that went through `pread`. After
    /// a commit that finds the file grown past the slack, the writer maps it whole again, each time it grows so
    /// (Linux: read from `/proc/self/maps`).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/maps")))
    func theWritersMapFollowsTheFileTheCheckpointsGrow() async throws {
        let directory = try TemporaryDirectory("outpost-wal-map")
        let store = try ServerStore.quiet(directory.path("server"), foldingTails: false)
        try store.write { db in
            try db.execute(sql: "CREATE TABLE filler (bytes BLOB NOT NULL)")
            try db.execute(sql: "INSERT INTO filler (bytes) VALUES (zeroblob(100))")
        }
        // The log copied and emptied (SQLite waiting for the locks a background checkpoint may hold): the writer
        // reads the table's page from the file, through its map, which is made then, at the file's small size.
        let busy = try await store.checkpointQueue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA busy_timeout = 10000")
            defer { try? db.execute(sql: "PRAGMA busy_timeout = 0") }
            return try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")?[0] as Int?
        }
        #expect(busy == 0, "the log was emptied")
        #expect(try store.write { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM filler") } == 1)
        let small = try Self.largestMap(of: store.path)
        let slack = store.checkpointer.writerMap.slack
        #expect(small > 0 && small < slack)
        var mapped = small
        // Twice: more than the slack copied into the file by the checkpointer's connection, then a commit.
        for round in 1...2 {
            try store.write { db in
                for _ in 0..<1_200 { try db.execute(sql: "INSERT INTO filler (bytes) VALUES (zeroblob(8000))") }
            }
            _ = try await WALCheckpointer.checkpoint(store.checkpointQueue)
            let grown = try #require(try FileManager.default.attributesOfItem(atPath: store.path)[.size] as? Int)
            #expect(Int64(grown) >= mapped + slack, "round \(round)")
            // The next commit of the writer finds the file grown and maps it whole. (The big commit itself may
            // have, if the checkpoint it asked for in the background ran first.)
            try store.write { db in try db.execute(sql: "INSERT INTO filler (bytes) VALUES (zeroblob(100))") }
            mapped = try Self.largestMap(of: store.path)
            #expect(mapped >= Int64(grown), "round \(round)")
        }
        // A file that has not grown by the slack since is not mapped again (outside a transaction, as after a
        // commit).
        let again = try await store.pool.writeWithoutTransaction { db in
            db.sqliteConnection.map { store.checkpointer.writerMap.follow($0) }
        }
        #expect(again == false)
    }

    /// The size of the largest memory map of the file at `path` (its links resolved, as the kernel names it) in
    /// this process. `/proc/self/maps` is read line by line to its end: it reports no size, and a test process
    /// running the whole suite maps far more than one read returns (`String(contentsOfFile:)` read it cut short in
    /// CI, and the file's line was missing).
    static func largestMap(of path: String) throws -> Int64 {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let maps = fopen("/proc/self/maps", "r") else { throw CocoaError(.fileReadUnknown) }
        defer { fclose(maps) }
        var largest: Int64 = 0
        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        while getline(&buffer, &capacity, maps) >= 0, let buffer {
            let line = String(cString: buffer).trimmingCharacters(in: .newlines)
            guard line.hasSuffix(" " + resolved) else { continue }
            let bounds = line.prefix { $0 != " " }.split(separator: "-").compactMap { Int64($0, radix: 16) }
            if bounds.count == 2 { largest = max(largest, bounds[1] - bounds[0]) }
        }
        return largest
    }

    @Test func aCommitAsksForACheckpointOnceTheLogHoldsAThousandPages() {
        #expect(!WALCheckpointer.asksForCheckpoint(frames: 0))
        #expect(!WALCheckpointer.asksForCheckpoint(frames: 999), "small writes gather in the log")
        #expect(WALCheckpointer.asksForCheckpoint(frames: 1_000))
        #expect(WALCheckpointer.asksForCheckpoint(frames: 50_000))
    }
}
