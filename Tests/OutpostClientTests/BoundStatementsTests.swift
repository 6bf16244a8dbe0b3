import Foundation
import GRDB
import OutpostSQLite
import Testing

@testable import OutpostClient

/// `Database.execute(cached:values:)`, the bound insert of bulk loads (a snapshot's records and their projected
/// rows, an import's): every kind of value reads back as it was bound, a statement GRDB ran just before is
/// reused, and a failure throws GRDB's error, leaves the statement usable and rolls its transaction back.
/// `Database.forEachRow(cached:values:_:)`, the bound query of a remote apply's loads: rows read as GRDB reads
/// them, in order, none when nothing matches, and a statement stepped part way is reset for the next run.
struct BoundStatementsTests {
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

    /// Texts and blobs are bound where they lie, each inside the call that lends its bytes (SQLite reads them as the
    /// statement steps): rows that mix them with numbers and NULLs, in every size a Swift value keeps its bytes in
    /// (inline in the value, in its own storage, larger than a 16 KiB page), read back whole, and a query's text and
    /// blob parameters find their row. That SQLite never reads them after they are gone is checked by running these
    /// tests under AddressSanitizer (`swift test --sanitize=address`), as the thirty-fourth session did: a read of
    /// freed bytes usually still finds them intact.
    @Test func rowsMixingTextsBlobsAndNumbersReadBackWhole() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in try db.execute(sql: "CREATE TABLE w (a PRIMARY KEY, b, c, d, e, f, g, h)") }
        let insert = "INSERT INTO w (a, b, c, d, e, f, g, h) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        let texts = ["", "short", "fifteen bytes!!", "sixteen bytes!!!", "Zoë 🙂 " + String(repeating: "é", count: 40)]
        let blobs = [Data(), Data([7]), Data(0..<14), Data(0..<15), Data((0..<70_000).map { UInt8($0 % 251) })]
        var rows: [[DatabaseValue]] = []
        for (index, text) in texts.enumerated() {
            let large = String(repeating: text.isEmpty ? "x" : text, count: 20_000 / max(1, text.utf8.count))
            rows.append([
                index.databaseValue, text.databaseValue, (index * 1_000).databaseValue, large.databaseValue, .null,
                blobs[index].databaseValue, blobs[(index + 1) % blobs.count].databaseValue,
                (Double(index) / 4).databaseValue,
            ])
        }
        try queue.write { db in
            for row in rows { try db.execute(cached: insert, values: row) }
        }
        let read = try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM w ORDER BY a").map { row in
                (0..<8).map { row[$0] as DatabaseValue }
            }
        }
        #expect(read == rows)
        try queue.read { db in
            for row in rows {
                var found: [Int64] = []
                try db.forEachRow(
                    cached: "SELECT a FROM w WHERE b = ? AND d = ? AND f = ?",
                    values: [row[1], row[3], row[5]]
                ) {
                    found.append($0.int64(0))
                }
                #expect(found == [Int64.fromDatabaseValue(row[0])])
            }
        }
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

    @Test func aBoundQueryReadsRowsAsGRDBReadsThem() throws {
        let queue = try database()
        let rows: [(Int, DatabaseValue)] = [
            (1, "Zoë, 🙂".databaseValue), (2, .null), (3, Data([0, 1, 255]).databaseValue), (4, 42.databaseValue),
            (5, Data().databaseValue),
        ]
        try queue.write { db in
            for (key, value) in rows { try db.execute(cached: Self.insert, values: [key.databaseValue, value]) }
        }
        let query = "SELECT a, b FROM t WHERE a >= ? ORDER BY a"
        try queue.read { db in
            var read: [(key: Int64, text: String?, data: Data, isNull: Bool)] = []
            try db.forEachRow(cached: query, values: [2.databaseValue]) { row in
                read.append((row.int64(0), row.text(1), row.data(1), row.isNull(1)))
            }
            #expect(read.map(\.key) == [2, 3, 4, 5])
            #expect(read.map(\.isNull) == [true, false, false, false])
            #expect(read[0].text == nil && read[0].data.isEmpty)
            #expect(read[1].data == Data([0, 1, 255]))
            #expect(read[2].text == "42")
            #expect(read[3].data.isEmpty && !read[3].isNull)
            var first: String?
            try db.forEachRow(cached: query, values: [1.databaseValue]) { row in first = first ?? row.text(1) }
            #expect(first == "Zoë, 🙂")
            var none = 0
            try db.forEachRow(cached: query, values: [6.databaseValue]) { _ in none += 1 }
            #expect(none == 0)
            // Stopped part way by a throw, then run again from the start, by GRDB and bound.
            #expect(throws: CancellationError.self) {
                try db.forEachRow(cached: query, values: [1.databaseValue]) { _ in throw CancellationError() }
            }
            #expect(try Int64.fetchAll(db.cachedStatement(sql: query), arguments: [4]) == [4, 5])
            var again: [Int64] = []
            try db.forEachRow(cached: query, values: [3.databaseValue]) { row in again.append(row.int64(0)) }
            #expect(again == [3, 4, 5])
            #expect(throws: DatabaseError.self) { try db.forEachRow(cached: query, values: []) { _ in } }
        }
    }
}
