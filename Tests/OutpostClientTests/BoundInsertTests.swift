import Foundation
import GRDB
import Testing

@testable import OutpostClient

/// `Database.execute(cached:values:)`, the bound insert of bulk loads (a snapshot's records and their projected
/// rows, an import's): every kind of value reads back as it was bound, a statement GRDB ran just before is
/// reused, and a failure throws GRDB's error, leaves the statement usable and rolls its transaction back.
struct BoundInsertTests {
    static let insert = "INSERT INTO t (a, b) VALUES (?, ?)"

    func database() throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try queue.write { db in try db.execute(sql: "CREATE TABLE t (a PRIMARY KEY, b)") }
        return queue
    }

    @Test func everyKindOfValueReadsBackAsBound() throws {
        let queue = try database()
        let values: [DatabaseValue] = [
            .null, 0.databaseValue, Int64.min.databaseValue, Int64.max.databaseValue, 2.5.databaseValue,
            "".databaseValue, "Zoë, 🙂".databaseValue, Data().databaseValue,
            Data([0, 1, 255]).databaseValue,
        ]
        try queue.write { db in
            for (index, value) in values.enumerated() {
                try db.execute(cached: Self.insert, values: [index.databaseValue, value])
            }
        }
        let read = try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT b FROM t ORDER BY a").map { $0[0] as DatabaseValue }
        }
        #expect(read == values)
        // An empty blob stays a blob, not NULL.
        #expect(try queue.read { db in try String.fetchOne(db, sql: "SELECT typeof(b) FROM t WHERE a = 7") } == "blob")
        // A text is bound by its length: a NUL inside it does not cut it short.
        let text = "before \u{0} after"
        try queue.write { db in try db.execute(cached: Self.insert, values: [100.databaseValue, text.databaseValue]) }
        let length = try queue.read { db in
            try Int.fetchOne(db, sql: "SELECT length(CAST(b AS BLOB)) FROM t WHERE a = 100")
        }
        #expect(length == text.utf8.count)
    }

    @Test func aStatementGRDBRanJustBeforeIsReused() throws {
        let queue = try database()
        try queue.write { db in
            try db.cachedStatement(sql: Self.insert).execute(arguments: [1, "by GRDB"])
            try db.execute(cached: Self.insert, values: [2.databaseValue, "bound".databaseValue])
            try db.cachedStatement(sql: Self.insert).execute(arguments: [3, "by GRDB again"])
        }
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") } == 3)
    }

    @Test func aFailureThrowsRollsBackAndLeavesTheStatementUsable() throws {
        let queue = try database()
        #expect(throws: DatabaseError.self) {
            try queue.write { db in
                try db.execute(cached: Self.insert, values: [1.databaseValue, "first".databaseValue])
                try db.execute(cached: Self.insert, values: [1.databaseValue, "same key".databaseValue])
            }
        }
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") } == 0)
        #expect(throws: DatabaseError.self) {
            try queue.write { db in try db.execute(cached: Self.insert, values: [1.databaseValue]) }
        }
        try queue.write { db in try db.execute(cached: Self.insert, values: [1.databaseValue, "after".databaseValue]) }
        #expect(try queue.read { db in try String.fetchOne(db, sql: "SELECT b FROM t WHERE a = 1") } == "after")
    }
}
