import GRDB
import OutpostCRDT
import OutpostProtocol
import Synchronization

/// Reading a pull page's records ahead of its write.
///
/// A pipelined pull (docs/sync.md, "Pipelined pulls") asks for page N+1 while it writes page N. Loading the
/// records page N+1's changes touch (their states, tails and projected rows) took about as long as writing a
/// page, inside the write transaction, on the one writer. ``preload(_:)`` reads them on a reader instead, beside
/// the write of page N, and names the state it read by the store's write generation (every transaction through
/// ``write(doing:_:)``, which every write of records, tails, projected rows or conflicts uses, adds one). When page N+1 is written, ``usable(_:after:generation:)`` keeps what is still
/// as the store holds it: everything, if nothing was committed since the read; all but the records page N wrote,
/// if page N's commit is the only one in between; nothing otherwise (a local edit, another process), and those
/// records are read again inside the write, as without it.
extension LocalStore {
    /// A record as ``StoreTransaction`` loads it: its state with the tail folded in, and its projected rows.
    struct LoadedRecord: Sendable {
        let held: HeldRecord
        /// The rows the projection holds for it (``Projection/rows(of:_:)``); `nil` for a type not projected.
        let projected: [Projection.Row]?

        init(_ record: RecordRef, _ held: HeldRecord) {
            self.held = held
            projected = Projection.tables[record.type] != nil ? Projection.rows(of: record, held.state) : nil
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

    /// What one write transaction wrote: the generation it committed, and the records it may have changed
    /// (`nil`: any, as when it removed patients).
    struct WriteStamp: Sendable {
        let generation: Int64
        let records: Set<RecordRef>?
    }

    /// Reads `records` (in key order) in one read transaction beside the writer; `nil` when they could not be
    /// read (the write then reads them itself, and reports what failed).
    func preload(_ records: [RecordRef]) -> PreloadedRecords? {
        try? read(doing: "read a page's records ahead") { db in
            let generation = try Int64.fetchOne(db, sql: "SELECT generation FROM replica WHERE id = 1") ?? -1
            var loaded: [RecordRef: LoadedRecord?] = [:]
            loaded.reserveCapacity(records.count)
            for record in records.sorted() where loaded[record] == nil {
                loaded[record] = .some(try loadStateAndTail(record, db: db).map { LoadedRecord(record, $0) })
            }
            return PreloadedRecords(generation: generation, records: loaded)
        }
    }

    /// The records of `preloaded` (taken from it) a write transaction that began at `generation` may take as they
    /// were read: all when the store is still in the state they were read in; all but those `previous` wrote
    /// when its commit is the only one since; none otherwise. What it may not take is freed off the writer.
    static func usable(
        _ preloaded: PreloadedRecords,
        after previous: WriteStamp?,
        generation: Int64
    ) -> [RecordRef: LoadedRecord?] {
        var records = preloaded.take()
        if preloaded.generation == generation { return records }
        guard let previous, let written = previous.records, previous.generation == generation,
            preloaded.generation == generation - 1
        else {
            BackgroundRelease.drop(records)
            return [:]
        }
        var stale: [LoadedRecord?] = []
        for record in written { if let found = records.removeValue(forKey: record) { stale.append(found) } }
        BackgroundRelease.drop(stale)
        return records
    }
}
