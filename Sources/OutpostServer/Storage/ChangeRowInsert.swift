import Foundation
import GRDB
import OutpostSQLite

/// The insert of a push's change rows (each a run of one record's changes, ``ChangeRuns``), bound through
/// SQLite's C API on GRDB's cached statement (``GRDB/Database/execute(_:values:)``, OutpostSQLite).
///
/// A first push stores a whole practice, 659,244 rows for the reference practice, inside the one writer; GRDB's
/// `execute(arguments:)` made each row's arguments an array of existentials and checked and bound them through
/// generic closures: about two-fifths of the time the writer spent on these rows was that, not SQLite
/// (docs/sync.md, "Measured"). Here each value is bound as what it is and the statement stepped once. The
/// statement is still GRDB's (prepared once per connection, looked up once per push, reset after each row), and
/// inside GRDB's transaction: a failure throws GRDB's `DatabaseError` and rolls the push back as before.
struct ChangeRowInsert {
    static let sql = """
        INSERT INTO change (seq, count, practice, replica, counter, type, id, owner, payload, creates)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    private let db: Database
    private let statement: Statement

    init(db: Database) throws {
        self.db = db
        statement = try db.cachedStatement(sql: Self.sql)
    }

    /// Inserts one change row: `count` changes whose last takes the feed position `seq`.
    func insert(
        seq: Int64,
        count: Int,
        practice: String,
        replica: String,
        counter: Int64,
        type: String,
        id: String,
        owner: String?,
        payload: [UInt8],
        creates: Bool
    ) throws {
        try db.execute(
            statement,
            values: [
                seq.databaseValue, count.databaseValue, practice.databaseValue, replica.databaseValue,
                counter.databaseValue, type.databaseValue, id.databaseValue, owner.databaseValue,
                Data(payload).databaseValue, creates.databaseValue,
            ]
        )
    }
}
