package import GRDB
import GRDBSQLite
import Synchronization

/// Keeps a connection's memory map of its database file (`PRAGMA mmap_size`) as large as the file, when another
/// connection is the one that grows it.
///
/// SQLite's unix VFS maps a database file at the size it has when the connection first reads through the map,
/// and maps it again only when that connection writes the file itself (a checkpoint, which tells the VFS the size
/// it needs) or sees another connection's commit at the start of a read. In WAL mode a writer whose checkpoints
/// run on another connection never does either: its map stays the size the file had when it opened (a page, for a
/// new store), and every page it reads past that, in every write transaction, is copied out of the kernel by a
/// `pread` instead of read in place (docs/sync.md, "Thirty-second session"). ``follow(_:)``, called after each of
/// its commits, maps the file again once it has grown by ``slack`` bytes past the size last mapped.
package final class MemoryMapFollower: Sendable {
    /// The most the connection maps (its `PRAGMA mmap_size`).
    package let limit: Int64
    /// How far the file may grow past the size last mapped before it is mapped again: each new map costs the
    /// pages touched through it a fault again.
    package let slack: Int64
    /// The file's size when it was last mapped again.
    private let mapped = Mutex<Int64>(0)

    package init(limit: Int64, slack: Int64 = 8 << 20) {
        self.limit = limit
        self.slack = slack
    }

    /// Maps `connection`'s main database file again when it has grown by ``slack`` bytes or more since it was last
    /// mapped so; whether it asked for that. To be called when no statement of the connection is running (after a
    /// commit): the VFS does not map again while a page is read through the old map.
    @discardableResult
    package func follow(_ connection: SQLiteConnection) -> Bool {
        guard let size = Self.fileSize(connection) else { return false }
        return mapped.withLock { mapped in
            guard size >= mapped + slack else { return false }
            // The VFS maps the file again, to its size now, when the connection's limit changes: the limit goes
            // from the one set to a page below it and back, one change per call. -1 reads it without changing it.
            var current: Int64 = -1
            guard sqlite3_file_control(connection, "main", SQLITE_FCNTL_MMAP_SIZE, &current) == SQLITE_OK else {
                return false
            }
            var next = current == limit ? limit - 65_536 : limit
            guard sqlite3_file_control(connection, "main", SQLITE_FCNTL_MMAP_SIZE, &next) == SQLITE_OK else {
                return false
            }
            mapped = size
            return true
        }
    }

    /// The size of `connection`'s main database file, as its VFS reports it.
    static func fileSize(_ connection: SQLiteConnection) -> Int64? {
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard sqlite3_file_control(connection, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK,
            let file, let methods = file.pointee.pMethods, let size = methods.pointee.xFileSize
        else { return nil }
        var bytes: sqlite3_int64 = 0
        guard size(file, &bytes) == SQLITE_OK else { return nil }
        return bytes
    }
}
