import OutpostCRDT

/// A change as the server stores it: the CRDT core's binary change encoding, one change of one record. Equal
/// changes are equal bytes, so a duplicate push is found by comparing bytes.
enum StoredChange {
    static func encode(_ change: Change) -> [UInt8] {
        encode([change], of: change.record)
    }

    /// Changes of one record as one stored run (``ChangeRuns``): the core's encoding of a record's changes.
    static func encode(_ changes: [Change], of record: RecordRef) -> [UInt8] {
        var writer = BinaryWriter(capacity: 96 * changes.count)
        writer.write(changes: changes, of: record)
        return writer.bytes
    }

    /// Reads a stored change; `nil` when the bytes are not one (a damaged store).
    static func decode(_ bytes: [UInt8]) -> Change? {
        guard let changes = decodeRun(bytes), changes.count == 1 else { return nil }
        return changes[0]
    }

    /// Reads a stored row's changes (one or a run); `nil` when the bytes are not a run of changes (a damaged
    /// store).
    static func decodeRun(_ bytes: [UInt8]) -> [Change]? {
        var reader = BinaryReader(bytes)
        guard let changes = try? reader.readChanges(), !changes.isEmpty, reader.isAtEnd else { return nil }
        return changes
    }
}

/// How the SQLite backend groups a push's changes into change rows, and where each change of a row sits in the
/// feed.
///
/// A first push of the reference practice is 659,244 changes of 66,448 records, ten or so per record and in a
/// row: a table row per change is three b-tree entries each (the row, the practice's feed index, the replica's
/// counters), and inserting them was most of the SQL time of the push (docs/sync.md, "Measured"). A row holds a
/// *run* instead: adjacent accepted changes of one record, from one replica, with consecutive counters and one
/// owner, at most ``maxLength`` of them. The run's changes take consecutive feed positions and the row is keyed
/// by the last (`seq`), with the run's `count`; the row's `counter` is its first change's. Every protocol
/// position stays what it was: a pull page may end inside a row, and its checkpoint is the position of the last
/// change it sent.
enum ChangeRuns {
    /// The most changes one row holds. A change is found by its counter among the rows whose first counter is at
    /// most this much below it (``counterReach``).
    static let maxLength = 64

    /// How far below a counter the row holding it may start.
    static var counterReach: Int64 { Int64(maxLength - 1) }

    /// The runs of `accepted`, in order, as index ranges.
    static func runs(of accepted: [PushPlan.Accepted]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var start = 0
        for index in accepted.indices.dropFirst() {
            let first = accepted[start]
            let previous = accepted[index - 1].change
            let change = accepted[index].change
            let continues =
                index - start < maxLength && change.record == first.change.record
                && change.id.replica == previous.id.replica && change.id.counter == previous.id.counter &+ 1
                && accepted[index].owner == first.owner
            if !continues {
                runs.append(start..<index)
                start = index
            }
        }
        if !accepted.isEmpty { runs.append(start..<accepted.count) }
        return runs
    }

    /// The feed position of the change at `offset` in a row whose last change is at `seq` and which holds `count`
    /// changes.
    static func position(of offset: Int, inRowAt seq: Int64, count: Int) -> Int64 {
        seq - Int64(count - 1 - offset)
    }
}
