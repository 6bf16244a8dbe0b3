import Foundation
import GRDB
import GRDBSQLite

extension Database {
    /// Runs the cached statement `sql` once, with `values` bound through SQLite's C API.
    ///
    /// GRDB's `execute(arguments:)` takes arguments as optional existentials and binds them through generic
    /// closures: in a bootstrap, where each of a practice's records inserts its record row and its projected rows,
    /// making and binding those arguments took about a seventh of the device's processor time (docs/sync.md,
    /// "Measured"). Here each value is bound as what it is. The statement is still GRDB's (prepared once per
    /// connection, reset after the row), run inside GRDB's transaction, and a failure throws GRDB's
    /// `DatabaseError`, as `execute(arguments:)` would. GRDB binds its arguments again whenever it runs a statement
    /// with arguments, so both may run the same cached statement (never GRDB's `execute()` without arguments: it
    /// would reuse bindings this clears). For the store's own rows only: a statement run so is not seen by GRDB's
    /// transaction observers, and the store registers none.
    func execute(cached sql: String, values: [DatabaseValue]) throws {
        let statement = try cachedStatement(sql: sql)
        let handle = statement.sqliteStatement
        // GRDB resets a statement before it runs it, not after: one it ran last may still be stepped.
        sqlite3_reset(handle)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        guard Int(sqlite3_bind_parameter_count(handle)) == values.count else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE,
                message: "wrong number of statement arguments: \(values.count)",
                sql: sql
            )
        }
        var code = SQLITE_OK
        for (offset, value) in values.enumerated() where code == SQLITE_OK {
            let index = Int32(offset + 1)
            switch value.storage {
            case .null:
                code = sqlite3_bind_null(handle, index)
            case .int64(let number):
                code = sqlite3_bind_int64(handle, index, number)
            case .double(let number):
                code = sqlite3_bind_double(handle, index, number)
            case .string(let text):
                code = Self.bind(text, at: index, handle)
            case .blob(let data):
                code = data.withUnsafeBytes { bytes in
                    // A zero-length blob still binds as a blob, not NULL: SQLite reads no bytes from the pointer.
                    sqlite3_bind_blob(
                        handle,
                        index,
                        bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                        Int32(bytes.count),
                        transient
                    )
                }
            }
        }
        if code == SQLITE_OK { code = sqlite3_step(handle) }
        guard code == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code),
                message: sqliteConnection.map { String(cString: sqlite3_errmsg($0)) },
                sql: sql
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
