import GRDB
import OutpostCRDT
import OutpostProtocol
import Synchronization

/// Reading a pull page's records ahead of its write.
///
/// A pipelined pull (docs/sync.md, "Pipelined pulls") asks for page N+1 while it writes page N. Loading the
/// records page N+1's changes touch (their states, tails and projected rows) took about as long as writing a
/// page, inside the write transaction, on the one writer. ``preload(_:unprojected:)`` reads them on a reader
/// instead, beside the write of page N, and names the state it read by the store's write generation (every
/// transaction through ``write(doing:_:)``, which every write of records, tails, projected rows or conflicts uses,
/// adds one). When page N+1 is written, ``usable(_:generation:written:)`` keeps what is still as the store holds
/// it: the records that no write committed since the read may have changed, as this process's ``WriteLog`` says
/// (page N's records; none for the push's acknowledgements); nothing when a write in between may have changed any
/// (a clinician's edit, another process, a page that removed patients), and those records are read again inside
/// the write, as without it.
extension LocalStore {
    /// A record as ``StoreTransaction`` loads it: its state with the tail folded in, and its projected rows.
    struct LoadedRecord: Sendable {
        let held: HeldRecord
        /// The rows the projection holds for it (``Projection/rows(of:_:)``); `nil` for a type not projected, and
        /// when not `projecting` (the writes to come leave its rows as they are: ``Projection/unprojected(by:)``).
        let projected: [Projection.Row]?

        init(_ record: RecordRef, _ held: HeldRecord, projecting: Bool = true) {
            self.held = held
            projected =
                projecting && Projection.tables[record.type] != nil ? Projection.rows(of: record, held.state) : nil
        }
    }

    /// Records read on a reader, and the write generation of the state they were read in.
    ///
    /// Handed to the write that takes them (``take()``): the states are then held by the write transaction
    /// alone, so that applying a change to one mutates it in place instead of copying its fields, and what the
    /// transaction leaves is freed with what it held (``StoreTransaction/releaseHeldAside()``).
    final class PreloadedRecords: Sendable {
        let generation: Int64
        /// Each record read: as loaded, or `nil` when the store did not hold it; empty once taken.
        private let records: Mutex<[RecordRef: LoadedRecord?]>

        init(generation: Int64, records: [RecordRef: LoadedRecord?]) {
            self.generation = generation
            self.records = Mutex(records)
        }

        /// The records read, handed over once: the box is empty afterwards.
        func take() -> [RecordRef: LoadedRecord?] {
            records.withLock { held in
                defer { held = [:] }
                return held
            }
        }
    }

    /// Reads `records` (in key order) in one read transaction beside the writer, without the projected rows of
    /// those `unprojected` (``Projection/unprojected(by:)``); `nil` when they could not be read (the write then
    /// reads them itself, and reports what failed).
    func preload(_ records: [RecordRef], unprojected: Set<RecordRef> = []) -> PreloadedRecords? {
        try? read(doing: "read a page's records ahead") { db in
            let generation = try Int64.fetchOne(db, sql: "SELECT generation FROM replica WHERE id = 1") ?? -1
            var loaded: [RecordRef: LoadedRecord?] = [:]
            loaded.reserveCapacity(records.count)
            for record in records.sorted() where loaded[record] == nil {
                loaded[record] = .some(
                    try loadStateAndTail(record, db: db).map {
                        LoadedRecord(record, $0, projecting: !unprojected.contains(record))
                    }
                )
            }
            return PreloadedRecords(generation: generation, records: loaded)
        }
    }

    /// The records of `preloaded` (taken from it) a write transaction that began at `generation` may take as they
    /// were read: those no write committed since the read may have changed, as `written` (``WriteLog``) says for
    /// each generation; none when a generation in between is missing from it or may have changed any record (a
    /// write of another process, a clinician's edit, a page that removed patients). What it may not take is freed
    /// off the writer.
    static func usable(
        _ preloaded: PreloadedRecords,
        generation: Int64,
        written: [Int64: [RecordRef]?]
    ) -> [RecordRef: LoadedRecord?] {
        var records = preloaded.take()
        var stale: [LoadedRecord?] = []
        if preloaded.generation < generation {
            for committed in (preloaded.generation + 1)...generation {
                guard let entry = written[committed], let touched = entry else {
                    BackgroundRelease.drop(records)
                    BackgroundRelease.drop(stale)
                    return [:]
                }
                for record in touched { if let found = records.removeValue(forKey: record) { stale.append(found) } }
            }
        } else if preloaded.generation > generation {
            BackgroundRelease.drop(records)
            return [:]
        }
        BackgroundRelease.drop(stale)
        return records
    }
}

/// The records each of a store's latest write transactions in this process may have changed, by the generation
/// it committed (``LocalStore/write(doing:_:)``); `nil` for a write that may have changed any. A generation not
/// here was committed by another process, or long ago: a read made before it is not used.
final class WriteLog: Sendable {
    /// How many generations are kept: a pull page is read ahead of a few writes at most (page N's, a push's
    /// answers beside it), and a page's entry names up to its thousands of records.
    static let kept: Int64 = 16

    private let entries = Mutex<[Int64: [RecordRef]?]>([:])

    /// Notes what the write that committed `generation` may have changed (a list, not a set: the writer makes it
    /// for every page, and a read ahead looks each up once in its own table).
    func record(_ generation: Int64, _ records: [RecordRef]?) {
        entries.withLock { entries in
            entries[generation] = .some(records)
            if entries.count > Self.kept { entries = entries.filter { $0.key > generation - Self.kept } }
        }
    }

    /// The entries of the generations after `after` up to `upTo`.
    func entries(after: Int64, upTo: Int64) -> [Int64: [RecordRef]?] {
        guard after < upTo, upTo - after <= Self.kept else { return [:] }
        return entries.withLock { entries in entries.filter { $0.key > after && $0.key <= upTo } }
    }
}
