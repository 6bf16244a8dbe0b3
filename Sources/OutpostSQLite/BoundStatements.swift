package import Foundation
package import GRDB
import GRDBSQLite

// Statements bound and read through SQLite's C API, for the store's and the server's hot rows; shared by the
// device's store (OutpostClient) and the server's (OutpostServer), visible to this package only.
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
    package func execute(cached sql: String, values: [DatabaseValue]) throws {
        try execute(cachedStatement(sql: sql), values: values)
    }

    /// Runs `statement` (one of this connection's cached statements, held by the caller so that a bulk write
    /// looks it up once) with `values`, as ``execute(cached:values:)`` does.
    package func execute(_ statement: Statement, values: [DatabaseValue]) throws {
        let handle = try reset(statement, count: values.count)
        defer { Self.release(handle) }
        let code = try withBound(values, handle, sql: statement) { sqlite3_step(handle) }
        guard code == SQLITE_DONE else { throw failure(code, sql: statement.sql) }
    }

    /// Runs the cached query `sql` with `values` bound as ``execute(cached:values:)`` binds them, and calls `body`
    /// with each result row, read through SQLite's C API (``BoundRow``): the loads of a remote apply (a record's
    /// row and its tail, once per record a page touches) spent about a fifth of their time in GRDB's arguments,
    /// cursors and rows. The same rules as ``execute(cached:values:)`` hold.
    package func forEachRow(cached sql: String, values: [DatabaseValue], _ body: (BoundRow) throws -> Void) throws {
        try forEachRow(cachedStatement(sql: sql), values: values, body)
    }

    /// Runs the query `statement` (one of this connection's cached statements, held by the caller) with `values`
    /// and calls `body` with each row, as ``forEachRow(cached:values:_:)`` does.
    package func forEachRow(
        _ statement: Statement,
        values: [DatabaseValue],
        _ body: (BoundRow) throws -> Void
    ) throws {
        let handle = try reset(statement, count: values.count)
        defer { Self.release(handle) }
        try withBound(values, handle, sql: statement) {
            while true {
                let code = sqlite3_step(handle)
                if code == SQLITE_DONE { return }
                guard code == SQLITE_ROW else { throw failure(code, sql: statement.sql) }
                try body(BoundRow(handle: handle))
            }
        }
    }

    /// `statement`, reset, once its parameters are known to be `count`; ``release(_:)`` resets it and clears its
    /// bindings.
    private func reset(_ statement: Statement, count: Int) throws -> SQLiteStatement {
        // GRDB makes `statement.sql` anew from SQLite's text at each read: read only for an error.
        let handle = statement.sqliteStatement
        // GRDB resets a statement before it runs it, not after: one it ran last may still be stepped.
        sqlite3_reset(handle)
        guard Int(sqlite3_bind_parameter_count(handle)) == count else {
            Self.release(handle)
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE,
                message: "wrong number of statement arguments: \(count)",
                sql: statement.sql
            )
        }
        return handle
    }

    /// Binds `values` to `handle` and returns what `body` returns, run while they are bound.
    ///
    /// A text or blob is bound where it lies (`SQLITE_STATIC`), not copied: SQLite reads its bytes while `body`
    /// steps the statement, so each is bound inside the call that lends its bytes, and `body` runs inside the last
    /// of them. SQLite's copy (`SQLITE_TRANSIENT`) allocated, copied and freed a buffer for every text and blob
    /// bound: in a bootstrap's page writes about half of the binding's time (docs/sync.md, "Thirty-fourth
    /// session"). Numbers and NULLs are bound in a loop, not each in a closure of its own (the thirty-second
    /// session's nesting, which cost more than the copy). The bindings are cleared (``release(_:)``) inside the
    /// last lending call, before the bytes can go.
    private func withBound<T>(
        _ values: [DatabaseValue],
        _ handle: SQLiteStatement,
        sql statement: Statement,
        _ body: () throws -> T
    ) throws -> T {
        try values.withUnsafeBufferPointer { values in
            try bind(values, from: 0, handle, sql: statement, body)
        }
    }

    /// Binds `values[index...]`, then runs `body` (``withBound(_:_:sql:_:)``): numbers and NULLs in a loop, each
    /// text or blob one call deeper, inside the closure that lends its bytes.
    private func bind<T>(
        _ values: UnsafeBufferPointer<DatabaseValue>,
        from start: Int,
        _ handle: SQLiteStatement,
        sql statement: Statement,
        _ body: () throws -> T
    ) throws -> T {
        var index = start
        while index < values.count {
            let position = Int32(index + 1)
            let code: Int32
            switch values[index].storage {
            case .null:
                code = sqlite3_bind_null(handle, position)
            case .int64(let number):
                code = sqlite3_bind_int64(handle, position, number)
            case .double(let number):
                code = sqlite3_bind_double(handle, position, number)
            case .string(var text):
                return try text.withUTF8 { bytes in
                    let code = sqlite3_bind_text(
                        handle,
                        position,
                        UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(
                            to: CChar.self
                        ),
                        Int32(bytes.count),
                        borrowed
                    )
                    guard code == SQLITE_OK else { throw failure(code, sql: statement.sql) }
                    return try bind(values, from: index + 1, handle, sql: statement, body)
                }
            case .blob(let data):
                return try data.withUnsafeBytes { bytes in
                    // A zero-length blob still binds as a blob, not NULL: SQLite reads no bytes from the pointer.
                    let code = sqlite3_bind_blob(
                        handle,
                        position,
                        bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                        Int32(bytes.count),
                        borrowed
                    )
                    guard code == SQLITE_OK else { throw failure(code, sql: statement.sql) }
                    return try bind(values, from: index + 1, handle, sql: statement, body)
                }
            }
            guard code == SQLITE_OK else { throw failure(code, sql: statement.sql) }
            index += 1
        }
        // Cleared before the lent bytes can go, whether `body` returns or throws: nothing SQLite runs after (a
        // reset's trace of the statement's expanded SQL) reads them.
        defer { Self.release(handle) }
        return try body()
    }

    private static func release(_ handle: SQLiteStatement) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    private func failure(_ code: Int32, sql: String) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code),
            message: sqliteConnection.map { String(cString: sqlite3_errmsg($0)) },
            sql: sql
        )
    }
}

/// SQLite reads the bound bytes where they lie (`SQLITE_STATIC`, a null destructor), while they are lent
/// (``Database/withBound(_:_:sql:_:)``).
private let borrowed: sqlite3_destructor_type? = nil

/// One result row of ``Database/forEachRow(cached:values:_:)``, valid only inside its call.
package struct BoundRow {
    let handle: SQLiteStatement

    /// Whether the column is NULL.
    package func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    /// The column as an integer (0 for NULL).
    package func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    /// The column as text; `nil` for NULL.
    package func text(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        return String(
            decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, column))),
            as: UTF8.self
        )
    }

    /// The column's bytes (a blob; empty for NULL or an empty blob).
    package func data(_ column: Int32) -> Data {
        guard let bytes = sqlite3_column_blob(handle, column) else { return Data() }
        return Data(bytes: bytes, count: Int(sqlite3_column_bytes(handle, column)))
    }

    /// The column's bytes as an array (a blob; empty for NULL or an empty blob).
    package func bytes(_ column: Int32) -> [UInt8] {
        guard let bytes = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, column))))
    }
}
