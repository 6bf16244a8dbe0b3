import Foundation
import GRDB
import HTTPTypes
import Logging
import Metrics
import OutpostCRDT
import OutpostProtocol
import OutpostSQLite
import Synchronization

/// A record's accepted changes not yet merged into its stored state (SQLite backend; migration
/// `v13-record-tails`).
///
/// A push of edits spread over a practice used to rewrite each touched record's row: one 8 KiB page of the record
/// table per edit, written to the log and again by the checkpoint (about 14 kB per edit; a fifth of a 10,000-edit
/// push's time, docs/sync.md). A push that only adds changes to a record the practice holds, its owner unchanged,
/// now appends them to the record's tail instead: a row of `record_tail`, keyed by the record and the feed
/// position of the run's last change, holding the same bytes as the change row (a run, ``StoredChange``). The
/// table is small, so its pages are few and a push writes each of them once.
///
/// Every reader of a state folds the record's tail into it (``ServerStore/mergedState(_:practice:ref:db:)``,
/// the snapshot walk beside its records), and a write of the whole state (a new owner) deletes it. The
/// ``TailFolder`` merges tails into their records in the background, a record's page written once for all of its
/// edits, when no push has written one for a while or when the tail grows past ``TailFolder/cap`` rows. A
/// CRDT merge does not depend on order, so a state folded at any time is the state the pushes made.
extension ServerStore {
    /// The payloads of `ref`'s tail, oldest first.
    static func tailPayloads(practice: String, ref: RecordRef, db: Database) throws -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        try db.forEachRow(
            try db.cachedStatement(
                sql: "SELECT payload FROM record_tail WHERE practice = ? AND type = ? AND id = ? ORDER BY seq"
            ),
            values: [practice.databaseValue, ref.type.databaseValue, ref.id.databaseValue]
        ) { row in payloads.append(row.bytes(0)) }
        return payloads
    }

    /// Merges tail payloads (runs of changes) into `state`: only the changes to `fields`, when given.
    static func fold(_ payloads: [[UInt8]], into state: inout RecordState, fields: Set<String>? = nil) throws {
        for payload in payloads {
            guard let changes = StoredChange.decodeRun(payload) else {
                throw ServerError(.internalError, .internalServerError, "a stored change could not be read")
            }
            for change in changes where fields?.contains(change.field) ?? true { state.apply(change) }
        }
    }

    /// The state stored as `bytes`, with the tail `payloads` merged in; only its `fields`, when given.
    static func merged(_ bytes: [UInt8], payloads: [[UInt8]], fields: Set<String>? = nil) throws -> RecordState {
        var reader = BinaryReader(bytes)
        var state = try fields.map { try reader.readRecordState(fields: $0) } ?? reader.readRecordState()
        try fold(payloads, into: &state, fields: fields)
        return state
    }

    /// Stored states, each with its tail merged in (only its `fields`, when given), decoded on two threads (a
    /// state's decoding does not touch the store).
    static func decodeStates(
        _ stored: [(state: [UInt8], tail: [[UInt8]], fields: Set<String>?)]
    ) throws -> [RecordState] {
        try stored.concurrentMap { try merged($0.state, payloads: $0.tail, fields: $0.fields) }
    }

    /// `ref`'s state as stored in `bytes`, with its tail merged in.
    static func mergedState(_ bytes: [UInt8], practice: String, ref: RecordRef, db: Database) throws -> RecordState {
        try merged(bytes, payloads: try tailPayloads(practice: practice, ref: ref, db: db))
    }

    /// The stored bytes of a state with `payloads` merged in (the bytes themselves without any).
    static func mergedBytes(_ bytes: [UInt8], payloads: [[UInt8]]) throws -> [UInt8] {
        guard !payloads.isEmpty else { return bytes }
        let state = try merged(bytes, payloads: payloads)
        var writer = BinaryWriter(capacity: bytes.count + 256)
        writer.write(state)
        return writer.bytes
    }

    /// Merges up to `limit` tail rows (whole records' tails, in key order) into their records; returns how many
    /// rows it merged (0 when the tail is empty). When it merged fewer than `limit`, `remaining` is told how many
    /// rows the tail still holds (those pushes added meanwhile), counted in the same transaction.
    static func foldTails(limit: Int, db: Database, remaining: ((Int) -> Void)? = nil) throws -> Int {
        var groups: [(practice: String, ref: RecordRef, last: Int64, payloads: [[UInt8]])] = []
        try db.forEachRow(
            try db.cachedStatement(
                sql: "SELECT practice, type, id, seq, payload FROM record_tail ORDER BY practice, type, id, seq LIMIT ?"
            ),
            values: [Int64(limit).databaseValue]
        ) { row in
            let practice = row.text(0) ?? ""
            let ref = RecordRef(type: row.text(1) ?? "", id: row.text(2) ?? "")
            if let last = groups.last, last.practice == practice, last.ref == ref {
                groups[groups.count - 1].last = row.int64(3)
                groups[groups.count - 1].payloads.append(row.bytes(4))
            } else {
                groups.append((practice, ref, row.int64(3), [row.bytes(4)]))
            }
        }
        let load = try db.cachedStatement(sql: "SELECT state FROM record WHERE practice = ? AND type = ? AND id = ?")
        for group in groups {
            let key = [group.practice.databaseValue, group.ref.type.databaseValue, group.ref.id.databaseValue]
            var stored: [UInt8]?
            try db.forEachRow(load, values: key) { row in stored = row.bytes(0) }
            if let stored {
                try db.cachedStatement(sql: "UPDATE record SET state = ? WHERE practice = ? AND type = ? AND id = ?")
                    .execute(arguments: [
                        Data(try mergedBytes(stored, payloads: group.payloads)), group.practice, group.ref.type,
                        group.ref.id,
                    ])
            }
            // Only the rows merged: a record's tail cut by the limit keeps its later rows for the next fold.
            try db.cachedStatement(
                sql: "DELETE FROM record_tail WHERE practice = ? AND type = ? AND id = ? AND seq <= ?"
            ).execute(arguments: [group.practice, group.ref.type, group.ref.id, group.last])
        }
        let folded = groups.reduce(0) { $0 + $1.payloads.count }
        if folded < limit, let remaining {
            remaining(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record_tail") ?? 0)
        }
        return folded
    }

    /// Merges every record's tail into its record now, in transactions of ``TailFolder/chunk`` rows; returns how
    /// many rows it merged. The last transaction counts what is left (rows another process merged or deleted, or a
    /// push added meanwhile), so the background folder's count does not drift.
    @discardableResult
    public func foldTails() async throws(ServerError) -> Int {
        var total = 0
        let folder = folder
        while true {
            let folded = try await writeAsync { db in
                try Self.foldTails(limit: TailFolder.chunk, db: db) { folder.recount($0) }
            }
            if folded == TailFolder.chunk { folder.folded(folded) }
            total += folded
            if folded < TailFolder.chunk { return total }
        }
    }

    /// How many tail rows the store holds.
    public func tailCount() async throws(ServerError) -> Int {
        try await readAsync { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record_tail") ?? 0 }
    }
}

/// Merges record tails into their records in the background (``ServerStore/foldTails()``): once no push has added
/// to the tail for ``quiet`` (a burst of syncs is over), or at once when the tail holds ``cap`` rows or more, so
/// that readers never fold more than that.
final class TailFolder: Sendable {
    /// The rows one fold transaction merges: short enough that a push waits little for the writer.
    static let chunk = 2_000
    /// The tail rows from which a push writes a record's merged state whole instead of adding to its tail: a
    /// record edited push after push while the server never rests for ``quiet`` would have every push read and fold
    /// a longer tail.
    static let longest = 32
    /// The tail's size from which a fold starts without waiting for a quiet moment.
    static let cap = 100_000
    /// How long no push must have added to the tail before a fold starts.
    static let quiet: Duration = .seconds(1)

    private let rows = Atomic<Int>(0)
    private let pushes = Atomic<Int>(0)
    private let signals = BackgroundSignal()

    /// A push added `count` rows to the tail.
    func added(_ count: Int) {
        guard count > 0 else { return }
        Self.gauge.record(rows.add(count, ordering: .relaxed).newValue)
        pushes.add(1, ordering: .relaxed)
        signals.signal()
    }

    /// A fold, or a push writing records whole, merged `count` rows.
    func folded(_ count: Int) {
        guard count > 0 else { return }
        Self.gauge.record(max(0, rows.subtract(count, ordering: .relaxed).newValue))
    }

    /// The tail holds `count` rows, as counted in a fold's transaction.
    func recount(_ count: Int) {
        rows.store(count, ordering: .relaxed)
        Self.gauge.record(count)
    }

    /// The tail rows not yet merged (`/metrics`), for operators and the benchmark.
    private static let gauge = Gauge(label: "outpost_record_tail_rows")

    /// Starts folding for `store`, whose tail holds `count` rows now, until ``stop()``.
    func start(for store: ServerStore, count: Int, logger: Logger) {
        rows.store(count, ordering: .relaxed)
        Self.gauge.record(count)
        if count > 0 { signals.signal() }
        signals.start { [weak store] in
            do {
                // Wait while pushes keep adding (each pass sees whether one came), unless the tail is full.
                while self.rows.load(ordering: .relaxed) < Self.cap {
                    let seen = self.pushes.load(ordering: .relaxed)
                    try await Task.sleep(for: Self.quiet)
                    if self.pushes.load(ordering: .relaxed) == seen { break }
                }
                try await store?.foldTails()
            } catch is CancellationError {
                // Stopped: the store is closing.
            } catch {
                // The next push signals again; readers fold the tail meanwhile.
                logger.warning("merging record tails failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Ends the folding task; a fold it is running ends after its transaction.
    func stop() { signals.stop(cancelling: true) }
}
