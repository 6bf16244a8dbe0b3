import Foundation
import GRDB
import GRDBSQLite

/// The insert of a push's change rows (each a run of one record's changes, ``ChangeRuns``), bound through
/// SQLite's C API on GRDB's cached statement.
///
/// A first push stores a whole practice, 659,244 rows for the reference practice, inside the one writer; GRDB's
/// `execute(arguments:)` made each row's arguments an array of existentials and checked and bound them through
/// generic closures: about two-fifths of the time the writer spent on these rows was that, not SQLite
/// (docs/sync.md, "Measured"). Here each value is bound as what it is and the statement stepped once. The
/// statement is still GRDB's (prepared once per connection, reset after each row), and inside GRDB's
/// transaction: a failure throws GRDB's `DatabaseError` and rolls the push back as before.
struct ChangeRowInsert {
    static let sql = """
        INSERT INTO change (seq, count, practice, replica, counter, type, id, owner, payload)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    private let statement: Statement
    private let connection: SQLiteConnection?

    init(db: Database) throws {
        statement = try db.cachedStatement(sql: Self.sql)
        connection = db.sqliteConnection
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
        payload: [UInt8]
    ) throws {
        let handle = statement.sqliteStatement
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        var code = sqlite3_bind_int64(handle, 1, seq)
        if code == SQLITE_OK { code = sqlite3_bind_int64(handle, 2, Int64(count)) }
        if code == SQLITE_OK { code = Self.bind(practice, at: 3, handle) }
        if code == SQLITE_OK { code = Self.bind(replica, at: 4, handle) }
        if code == SQLITE_OK { code = sqlite3_bind_int64(handle, 5, counter) }
        if code == SQLITE_OK { code = Self.bind(type, at: 6, handle) }
        if code == SQLITE_OK { code = Self.bind(id, at: 7, handle) }
        if code == SQLITE_OK { code = owner.map { Self.bind($0, at: 8, handle) } ?? sqlite3_bind_null(handle, 8) }
        if code == SQLITE_OK {
            code = payload.withUnsafeBytes { bytes in
                // A zero-length blob still binds as a blob, not NULL: SQLite reads no bytes from the pointer.
                sqlite3_bind_blob(
                    handle,
                    9,
                    bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                    Int32(bytes.count),
                    transient
                )
            }
        }
        if code == SQLITE_OK { code = sqlite3_step(handle) }
        guard code == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code),
                message: connection.map { String(cString: sqlite3_errmsg($0)) },
                sql: Self.sql
            )
        }
    }

    private static func bind(_ text: String, at index: Int32, _ handle: SQLiteStatement) -> Int32 {
        var text = text
        return text.withUTF8 { bytes in
            sqlite3_bind_text(
                handle,
                index,
                UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(
                    to: CChar.self
                ),
                Int32(bytes.count),
                transient
            )
        }
    }
}

/// SQLite copies the bound bytes (`SQLITE_TRANSIENT`): the Swift buffers they come from live only for the call.
private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
