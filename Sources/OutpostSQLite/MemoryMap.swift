package import GRDB
import GRDBSQLite
import Synchronization

/// Keeps a connection's memory map of its database file (`PRAGMA mmap_size`) as large as the file, when another
/// connection is the one that grows it.
///
/// SQLite's unix VFS maps a database file at the size it has when the connection first reads through the map,
/// and maps it again only when that connection grows the file itself (a checkpoint tells the VFS the size it
/// needs) or sees another connection's commit at the start of a read. In WAL mode a writer whose checkpoints run
/// on another connection does neither: its map stays the size the file had when the writer first read through it
/// (a page or two, for a new store), and every page it reads past that, in every write transaction, is copied out
/// of the kernel by a `pread` instead of read in place (docs/sync.md, "Thirty-second session"). ``follow(_:)``,
/// called after each of its commits, maps the file again once it has grown past the size last mapped by
/// ``slack`` bytes or an eighth, whichever is more.
package final class MemoryMapFollower: Sendable {
    /// The least growth of the file that has it mapped again: each new map costs every page read through it a
    /// fault again.
    package let slack: Int64
    /// The size of the file as last mapped, at most the connection's limit.
    private let mapped = Mutex<Int64>(0)

    package init(slack: Int64 = 8 << 20) {
        self.slack = slack
    }

    /// Takes the file as mapped at `size` bytes: the size it has when the store is opened, which the writer's map
    /// will cover once it reads through it, so that the first commit does not map it again for nothing.
    package func assumeMapped(_ size: Int64) {
        mapped.withLock { $0 = size }
    }

    /// Maps `connection`'s main database file again when it has grown enough since it was last mapped (``slack``);
    /// whether it did. To be called when no statement of the connection is running (after a commit): the VFS does
    /// not map again while a page is read through the old map, and then nothing changes until the next call.
    @discardableResult
    package func follow(_ connection: SQLiteConnection) -> Bool {
        guard let size = Self.fileSize(connection) else { return false }
        return mapped.withLock { mapped in
            let growth = max(slack, mapped / 8)
            guard size >= mapped + growth else { return false }
            // -1 reads the connection's limit without changing it; past the limit the map cannot grow.
            var limit: Int64 = -1
            guard Self.mapLimit(connection, &limit), limit > 65_536 else { return false }
            let reach = min(size, limit)
            guard reach >= mapped + growth else { return false }
            // The VFS maps the file again, to its size now, when the limit changes: lowered by 64 KiB and set back.
            // Each call hands back the limit it found, which says whether the one before took effect.
            var lower = limit - 65_536
            var back = limit
            guard Self.mapLimit(connection, &lower), Self.mapLimit(connection, &back), back == limit - 65_536 else {
                return false
            }
            mapped = reach
            return true
        }
    }

    /// Sets the VFS's map limit of `connection`'s main file to `value` (unless negative) and hands back the limit
    /// it had; whether the call succeeded.
    private static func mapLimit(_ connection: SQLiteConnection, _ value: inout Int64) -> Bool {
        sqlite3_file_control(connection, "main", SQLITE_FCNTL_MMAP_SIZE, &value) == SQLITE_OK
    }

    /// The size of `connection`'s main database file, as its VFS reports it.
    private static func fileSize(_ connection: SQLiteConnection) -> Int64? {
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard sqlite3_file_control(connection, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK,
            let file, let methods = file.pointee.pMethods, let size = methods.pointee.xFileSize
        else { return nil }
        var bytes: sqlite3_int64 = 0
        guard size(file, &bytes) == SQLITE_OK else { return nil }
        return bytes
    }
}
