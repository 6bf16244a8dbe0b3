import OutpostCRDT
import OutpostProtocol
import OutpostTestSupport
import Testing

/// A server writes a binary snapshot page from its stored record states without decoding them
/// (``SnapshotPage/binaryEncoded(stored:checkpoint:next:layout:)``): the bytes must be those of the page of the
/// same states decoded, in every layout, and a stored state that cannot be read is refused, never written.
struct StoredPageTests {
    static func stored(_ records: [SnapshotRecord]) -> [StoredRecordState] {
        records.map { record in
            var writer = BinaryWriter()
            writer.write(record.state)
            return StoredRecordState(record: record.record, state: writer.bytes)
        }
    }

    /// Pages to write both ways: the large generated page (int and string values, long superseded lists), a slice
    /// of it, the golden pages (conflicts, sites, every value kind), one out of order, one repeating a record,
    /// and an empty one.
    static func pages() throws -> [SnapshotPage] {
        let large = BinaryWireFuzzTests.largePage().snapshot
        let golden = try BinaryCatalog.snapshot("snapshot-page.json")
        let last = try BinaryCatalog.snapshot("snapshot-page.last.json")
        return [
            large,
            SnapshotPage(records: Array(large.records.prefix(37)), checkpoint: "12", next: "12~patient~x"),
            golden, last,
            SnapshotPage(records: golden.records.reversed(), checkpoint: golden.checkpoint, next: golden.next),
            SnapshotPage(records: golden.records + golden.records.prefix(1), checkpoint: "3", next: nil),
            SnapshotPage(records: [], checkpoint: "0", next: nil),
        ]
    }

    @Test(arguments: BinaryWire.layouts)
    func aPageWrittenFromStoredStatesIsTheBytesOfThePageOfTheDecodedStates(layout: UInt8) throws {
        for page in try Self.pages() {
            let fromStored = try SnapshotPage.binaryEncoded(
                stored: Self.stored(page.records),
                checkpoint: page.checkpoint,
                next: page.next,
                layout: layout
            )
            #expect(fromStored == page.binaryEncoded(layout: layout), "\(page.records.count) records")
            #expect(try SnapshotPage(binary: fromStored) == page)
        }
    }

    /// Stored states with bytes flipped, overwritten or cut: each is either refused with a ``CRDTError`` or, when
    /// written, decodes as a state whose page is the same bytes; never a crash.
    @Test func aDamagedStoredStateIsRefusedOrWrittenAsItsDecodedStateWouldBe() throws {
        var random = SeededGenerator(seed: 20_261_205)
        let records =
            try BinaryCatalog.snapshot("snapshot-page.json").records
            + BinaryWireFuzzTests.largePage().snapshot.records.prefix(20)
        let states = Self.stored(records)
        var refused = 0
        var written = 0
        for _ in 0..<3_000 {
            var damaged = states
            let victim = Int.random(in: 0..<damaged.count, using: &random)
            var bytes = damaged[victim].state
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                let at = Int.random(in: 0..<bytes.count, using: &random)
                bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
            case 1:
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = [0x00, 0x04, 0x7F, 0x80, 0xFF]
                    .randomElement(using: &random)!
            default:
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
            }
            damaged[victim].state = bytes
            let fromStored: [UInt8]
            do {
                fromStored = try SnapshotPage.binaryEncoded(stored: damaged, checkpoint: "9", next: nil, layout: 2)
            } catch {
                refused += 1
                continue
            }
            written += 1
            let decoded = try damaged.map { try $0.decoded() }
            #expect(fromStored == SnapshotPage(records: decoded, checkpoint: "9", next: nil).binaryEncoded(layout: 2))
        }
        #expect(refused > 1_000, "most damage is refused")
        #expect(written > 0, "a flipped bit in a value still reads")
    }

    @Test func aStoredStateWithFieldsOutOfOrderOrIdsUnsortedIsRefused() throws {
        let record = RecordRef(type: "patient", id: "pat_01KKBFJZCTT8BHAW9GPEZGQKFM")
        let laptop = try #require(ReplicaID("laptop"))
        func write(_ id: UInt64, _ value: Value) -> Write {
            Write(
                id: ChangeID(replica: laptop, counter: id),
                value: value,
                clock: Timestamp(millis: 1_000 + id, counter: 0),
                author: "per_01KJYKKBT1YWAT28G7VFNAJGNS",
                site: nil
            )
        }
        // Fields "b" then "a"; a field whose live ids go down; a field whose superseded id is also live.
        var outOfOrder = BinaryWriter()
        outOfOrder.write(varint: 2)
        for name in ["b", "a"] {
            outOfOrder.write(name)
            outOfOrder.write(try #require(FieldState(live: [write(1, "x")], superseded: [])))
        }
        var unsorted = BinaryWriter()
        unsorted.write(varint: 1)
        unsorted.write("a")
        unsorted.write(varint: 2)
        for id: UInt64 in [2, 1] {
            unsorted.write(ChangeID(replica: laptop, counter: id))
            unsorted.write(Value.string("x"))
            unsorted.write(Timestamp(millis: 1, counter: 0))
            unsorted.write("per_01KJYKKBT1YWAT28G7VFNAJGNS")
            unsorted.write(optional: nil)
        }
        unsorted.write(varint: 0)
        var both = BinaryWriter()
        both.write(varint: 1)
        both.write("a")
        both.write(varint: 1)
        both.write(ChangeID(replica: laptop, counter: 1))
        both.write(Value.string("x"))
        both.write(Timestamp(millis: 1, counter: 0))
        both.write("per_01KJYKKBT1YWAT28G7VFNAJGNS")
        both.write(optional: nil)
        both.write(varint: 1)
        both.write(ChangeID(replica: laptop, counter: 1))
        for bytes in [outOfOrder.bytes, unsorted.bytes, both.bytes] {
            #expect(throws: CRDTError.self) {
                try SnapshotPage.binaryEncoded(
                    stored: [StoredRecordState(record: record, state: bytes)],
                    checkpoint: "1",
                    next: nil,
                    layout: 2
                )
            }
        }
    }
}
