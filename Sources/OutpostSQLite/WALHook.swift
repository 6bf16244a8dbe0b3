package import GRDB
import GRDBSQLite

/// What a connection's commits tell: how many frames the write-ahead log holds after each.
package protocol WALCommitObserver: AnyObject, Sendable {
    /// Called inside SQLite's commit, once the transaction is over, on the committing connection's thread, with
    /// the connection: keep it short.
    func committed(frames: Int, connection: SQLiteConnection)
}

extension Database {
    /// Calls `observer` after each commit of this connection with the log's frame count
    /// (`sqlite3_wal_hook`). It replaces SQLite's automatic checkpoint on this connection, which is itself such a
    /// hook. `observer` is held unretained: the caller keeps it alive as long as the connection.
    package func observeWALCommits(_ observer: some WALCommitObserver) {
        let context = Unmanaged.passUnretained(observer as AnyObject).toOpaque()
        sqlite3_wal_hook(
            sqliteConnection,
            { context, connection, _, frames in
                guard let context, let connection else { return SQLITE_OK }
                let object = Unmanaged<AnyObject>.fromOpaque(context).takeUnretainedValue()
                (object as? any WALCommitObserver)?.committed(frames: Int(frames), connection: connection)
                return SQLITE_OK
            },
            context
        )
    }
}
