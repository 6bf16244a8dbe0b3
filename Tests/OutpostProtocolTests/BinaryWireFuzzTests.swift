import Foundation
import OutpostCRDT
import OutpostProtocol
import Testing

/// A binary push a server must refuse with `400 malformed_request`; written to `protocol/golden/binary/invalid/`.
struct InvalidBinary: Sendable, CustomStringConvertible {
    let file: String
    let why: String
    let bytes: [UInt8]

    var description: String { file }
}

/// Builds binary messages by hand, to say exactly which byte is wrong.
struct Craft {
    var writer = BinaryWriter()

    init(kind: UInt8 = 1, version: UInt8 = 1) {
        for byte in BinaryWire.magic { writer.write(byte: byte) }
        writer.write(byte: version)
        writer.write(byte: kind)
    }

    func varint(_ value: UInt64) -> Craft {
        var copy = self
        copy.writer.write(varint: value)
        return copy
    }

    func strings(_ texts: [String]) -> Craft {
        var copy = self
        copy.writer.write(varint: UInt64(texts.count))
        for text in texts { copy.writer.write(text) }
        return copy
    }

    func raw(_ bytes: [UInt8]) -> Craft {
        var copy = self
        for byte in bytes { copy.writer.write(byte: byte) }
        return copy
    }

    var bytes: [UInt8] { writer.bytes }

    static let replica = "laptop-rn-04"
    static let table = [
        replica, "patient", "pat_01KKBFJZCTT8BHAW9GPEZGQKFM", "phone", "per_01KJYKKBT1YWAT28G7VFNAJGNS",
    ]

    /// A push of one change with the given counter code, operation-and-value byte and clock counter.
    static func push(counters: [UInt64] = [2], tag: UInt8 = 0x04, clockCounter: UInt64 = 0) -> [UInt8] {
        var craft = Craft()
        craft = craft.strings(table)
        craft = craft.varint(1).varint(1).varint(2)  // one record: patient / pat_…
        craft = craft.varint(0)  // replica: string 0
        craft = craft.varint(UInt64(counters.count))
        for counter in counters {
            craft = craft.varint(0).varint(3)  // record 0, field phone
            craft = craft.varint(0).varint(counter)  // id: replica 0, counter (zigzag delta)
            craft = craft.raw([tag]).varint(1).raw([0x78])  // value: inline "x"
            craft = craft.varint(0)  // replaces: none
            craft = craft.varint(2).varint(clockCounter)  // clock: ms +1, c
            craft = craft.varint(4).varint(0)  // author, no site
        }
        return craft.bytes
    }

    /// The varint bytes of `value`.
    static func varint(_ value: UInt64) -> [UInt8] {
        var writer = BinaryWriter()
        writer.write(varint: value)
        return writer.bytes
    }

    /// Layout 2's table, in the order the reference encoder makes it: the replica, the record's type, the field,
    /// the author, the record id's prefix.
    static let table2 = [replica, "patient", "phone", "per_01KJYKKBT1YWAT28G7VFNAJGNS", "pat_"]
    /// The bits of `pat_01KKBFJZCTT8BHAW9GPEZGQKFM`: its time (zigzag from 0) and ten random bytes.
    static let patientTime = Zigzag.encode(SortableID.millis(of: "01KKBFJZCTT8BHAW9GPEZGQKFM")!, from: 0)
    static let patientRandom: [UInt8] = [0xD2, 0x17, 0x15, 0x71, 0x30, 0xB3, 0xBF, 0x0B, 0xCD, 0xF4]

    /// A message of layout 2's table and one sortable record of the patient's time, written in `form` (the
    /// type is string 1) and followed by `bits`, then nothing: a record table cut short somewhere in its bits.
    static func oneRecord(version: UInt8, form: UInt8, bits: [UInt8]) -> [UInt8] {
        Craft(version: version).strings(table2).varint(1).raw([1, form]).varint(patientTime).raw(bits).bytes
    }

    /// A layout 2 push of one change to `pat_01KKBFJZCTT8BHAW9GPEZGQKFM`: `records` is its record table after
    /// the count, `recordColumn` its record column, `extra` bytes at the end of the field column.
    static func push2(
        records: [[UInt8]]? = nil,
        recordColumn: [UInt8] = [0],
        extra: [UInt8] = [],
        columnLength: UInt64? = nil
    ) -> [UInt8] {
        var craft = Craft(version: 2).strings(table2)
        let table = records ?? [[1, 5] + varint(patientTime) + patientRandom]
        craft = craft.varint(UInt64(table.count))
        for record in table { craft = craft.raw(record) }
        craft = craft.varint(0).varint(1)  // replica: string 0; one change
        let columns: [[UInt8]] = [
            recordColumn,
            [2] + extra,  // field phone
            [0, 2],  // id: replica 0, counter +1
            [0x04, 1, 0x78],  // assign, inline "x"
            [0],  // replaces: none
            [2, 0],  // clock: ms +1, c 0
            [3, 0],  // author, no site
        ]
        for (index, column) in columns.enumerated() {
            craft = craft.varint(index == 1 ? columnLength ?? UInt64(column.count) : UInt64(column.count)).raw(column)
        }
        return craft.bytes
    }
}

extension InvalidBinary {
    static let valid = Craft.push()
    static let valid2 = Craft.push2()

    static let all: [InvalidBinary] = [
        InvalidBinary(
            file: "push.bad-magic.bin",
            why: "does not start with OPB1",
            bytes: Array("OPB2".utf8) + valid.dropFirst(4)
        ),
        InvalidBinary(
            file: "push.layout-unknown.bin",
            why: "a layout one past the newest this version knows",
            bytes: Array(valid[0..<4]) + [BinaryWire.latestLayout + 1] + valid.dropFirst(5)
        ),
        InvalidBinary(
            file: "push.kind-pull.bin",
            why: "the kind byte says pull page",
            bytes: Array(valid[0..<5]) + [2] + valid.dropFirst(6)
        ),
        InvalidBinary(file: "push.truncated.bin", why: "the last byte is missing", bytes: Array(valid.dropLast())),
        InvalidBinary(file: "push.trailing-byte.bin", why: "a byte after the message", bytes: valid + [0]),
        InvalidBinary(file: "push.empty.bin", why: "no bytes at all", bytes: []),
        InvalidBinary(
            file: "push.string-count-huge.bin",
            why: "a string table count of 2^62, far more than the bytes left",
            bytes: { Craft().varint(1 << 62).bytes }()
        ),
        InvalidBinary(
            file: "push.string-length-huge.bin",
            why: "a string length of 2^40",
            bytes: { Craft().varint(1).varint(1 << 40).raw([0x41]).bytes }()
        ),
        InvalidBinary(
            file: "push.number-too-long.bin",
            why: "a varint of eleven bytes",
            bytes: { Craft().raw([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).bytes }()
        ),
        InvalidBinary(
            file: "push.string-not-utf8.bin",
            why: "a table string that is not UTF-8",
            bytes: { Craft().varint(1).varint(1).raw([0xFF]).varint(0).varint(0).varint(0).bytes }()
        ),
        InvalidBinary(
            file: "push.string-repeated.bin",
            why: "one string twice in the string table",
            bytes: { Craft().strings([Craft.replica, Craft.replica]).varint(0).varint(0).varint(0).bytes }()
        ),
        InvalidBinary(
            file: "push.record-repeated.bin",
            why: "one record (patient / pat_…) twice in the record table",
            bytes: {
                Craft().strings(Craft.table).varint(2).varint(1).varint(2).varint(1).varint(2).varint(0).varint(0).bytes
            }()
        ),
        InvalidBinary(
            file: "push.index-outside-table.bin",
            why: "the replica is string 5 of a table of 1",
            bytes: { Craft().strings([Craft.replica]).varint(0).varint(5).varint(0).bytes }()
        ),
        InvalidBinary(
            file: "push.replica-bad-characters.bin",
            why: "the push's replica id has a space",
            bytes: { Craft().strings(["laptop 4"]).varint(0).varint(0).varint(0).bytes }()
        ),
        InvalidBinary(file: "push.counter-zero.bin", why: "a change counter of 0", bytes: Craft.push(counters: [0])),
        InvalidBinary(
            file: "push.counters-decreasing.bin",
            why: "counter 2, then counter 1 (zigzag delta -1)",
            bytes: Craft.push(counters: [4, 1])
        ),
        InvalidBinary(
            file: "push.counter-repeated.bin",
            why: "counter 2 twice (zigzag delta 0)",
            bytes: Craft.push(counters: [4, 0])
        ),
        InvalidBinary(file: "push.unknown-operation.bin", why: "operation code 5", bytes: Craft.push(tag: 0x54)),
        InvalidBinary(file: "push.unknown-value-tag.bin", why: "value tag 9", bytes: Craft.push(tag: 0x09)),
        InvalidBinary(
            file: "push.clock-counter-overflow.bin",
            why: "a clock counter of 2^32",
            bytes: Craft.push(clockCounter: 1 << 32)
        ),
        InvalidBinary(
            file: "push.layout2.column-cut-short.bin",
            why: "layout 2: the field column says 200 bytes, more than the message has left",
            bytes: Craft.push2(columnLength: 200)
        ),
        InvalidBinary(
            file: "push.layout2.column-bytes-left.bin",
            why: "layout 2: a byte left in the field column after its one change",
            bytes: Craft.push2(extra: [2])
        ),
        InvalidBinary(
            file: "push.layout2.record-outside-table.bin",
            why: "layout 2: the change's record is record 1 (zigzag +1) of a table of 1",
            bytes: Craft.push2(recordColumn: [2])
        ),
        InvalidBinary(
            file: "push.layout2.id-prefix-outside-table.bin",
            why: "layout 2: a sortable id whose prefix is string 7 of a table of 5",
            bytes: Craft.push2(records: [[1, 8, 2] + Craft.patientRandom])
        ),
        InvalidBinary(
            file: "push.layout2.id-time-too-large.bin",
            why: "layout 2: a sortable id whose time is 2^48",
            bytes: Craft.push2(records: [[1, 5] + Craft.varint(Zigzag.encode(1 << 48, from: 0)) + Craft.patientRandom])
        ),
        InvalidBinary(
            file: "push.layout2.id-bits-cut-short.bin",
            why: "layout 2: a sortable id with nine of its ten random bytes",
            bytes: Craft.oneRecord(version: 2, form: 5, bits: Array(Craft.patientRandom.prefix(9)))
        ),
        InvalidBinary(
            file: "push.layout2.record-repeated.bin",
            why: "layout 2: one record twice, as bits and as a string",
            bytes: {
                Craft(version: 2).strings(Craft.table + ["pat_"]).varint(2)
                    .varint(1).varint(0).varint(2).varint(1).varint(6)
                    .varint(Craft.patientTime).raw(Craft.patientRandom)
                    .varint(0).varint(0).bytes
            }()
        ),
        InvalidBinary(
            file: "push.layout3.abbreviation-cut-short.bin",
            why: "layout 3: a record named by abbreviation (form 10: prefix 4) with three of its four random bytes",
            bytes: Craft.oneRecord(version: 3, form: 10, bits: Array(Craft.patientRandom.prefix(3)))
        ),
        InvalidBinary(
            file: "push.layout3.digest-cut-short.bin",
            why: "layout 3: a record named by abbreviation, then seven of the digest's eight bytes",
            bytes: Craft.oneRecord(
                version: 3,
                form: 10,
                bits: Array(Craft.patientRandom.prefix(4)) + [UInt8](repeating: 0xA5, count: 7)
            )
        ),
    ]
}

struct InvalidBinaryTests {
    @Test func theHandBuiltPushesAreValid() throws {
        for bytes in [InvalidBinary.valid, InvalidBinary.valid2] {
            let push = try PushRequest(binary: bytes)
            #expect(push.changes.count == 1)
            #expect(push.changes[0].id.description == "laptop-rn-04/1")
            #expect(push.changes[0].record == RecordRef(type: "patient", id: "pat_01KKBFJZCTT8BHAW9GPEZGQKFM"))
            #expect(push.changes[0].value == "x")
            #expect(push.changes[0].author == "per_01KJYKKBT1YWAT28G7VFNAJGNS")
        }
        #expect(try PushRequest(binary: InvalidBinary.valid2).binaryEncoded(layout: 2) == InvalidBinary.valid2)
    }

    @Test(arguments: InvalidBinary.all)
    func everyInvalidExampleIsRefusedAndItsFileIsCurrent(_ example: InvalidBinary) throws {
        #expect(throws: BinaryWire.Failure.self) { try PushRequest(binary: example.bytes) }
        let file = try ProtocolFiles.read(example.file, in: BinaryCatalog.invalidDirectory)
        #expect([UInt8](file) == example.bytes, "run OUTPOST_WRITE_GOLDENS=1 swift test --filter BinaryWireTests")
    }

    @Test func theIndexListsEveryInvalidFile() throws {
        let data = try ProtocolFiles.read("index.json", in: BinaryCatalog.invalidDirectory)
        let entries = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: String]])
        let files = try FileManager.default.contentsOfDirectory(atPath: BinaryCatalog.invalidDirectory.path)
            .filter { $0.hasSuffix(".bin") }
        #expect(Set(entries.compactMap { $0["file"] }) == Set(files))
        #expect(Set(files) == Set(InvalidBinary.all.map(\.file)))
    }

    @Test func aHugeCountIsRefusedBeforeAnythingIsAllocated() {
        let craft = Craft(kind: 2)
        // No strings, no records, then a change count of 2^60 with three bytes left.
        let bytes = craft.varint(0).varint(0).varint(1 << 60).raw([0, 0, 0]).bytes
        #expect(throws: BinaryWire.Failure.self) { try PullResponse(binary: bytes) }
    }
}

/// Seeded fuzzing of the binary decoders: random bytes and mutated goldens never crash or hang, and whatever
/// decodes re-encodes to the same value. Bounded: a few thousand cases, each at most a few kilobytes.
struct BinaryWireFuzzTests {
    static let seed: UInt64 = 0x0B1_2025

    static var goldens: [[UInt8]] { BinaryCatalog.all.map { $0.encode() } }

    @Test func everyTruncationOfEveryGoldenIsRefused() {
        for bytes in Self.goldens {
            for length in 0..<bytes.count {
                #expect(decodeEveryKind(Array(bytes[0..<length])) == 0, "a truncation to \(length) bytes decoded")
            }
        }
    }

    @Test func bitFlipsAndOverwrittenBytesNeverCrash() {
        var random = SeededGenerator(seed: Self.seed)
        var decoded = 0
        for bytes in Self.goldens where bytes.count > 6 {
            for _ in 0..<300 {
                var mutated = bytes
                let flips = Int.random(in: 1...3, using: &random)
                for _ in 0..<flips {
                    let at = Int.random(in: 0..<mutated.count, using: &random)
                    mutated[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
                }
                decoded += decodeEveryKind(mutated)
            }
            for _ in 0..<150 {
                var mutated = bytes
                let at = Int.random(in: 6..<mutated.count, using: &random)
                mutated[at] = [0x00, 0x7F, 0x80, 0xFF].randomElement(using: &random)!
                decoded += decodeEveryKind(mutated)
            }
        }
        // Some mutations land in values and still decode; most do not.
        #expect(decoded < Self.goldens.count * 450)
    }

    @Test func lengthAndCountFieldsSetHugeAreRefused() {
        var random = SeededGenerator(seed: Self.seed &+ 1)
        for bytes in Self.goldens where bytes.count > 6 {
            for _ in 0..<150 {
                // Replace one byte with a ten-byte varint near 2^63: a count, a length or an index set huge.
                let at = Int.random(in: 6..<bytes.count, using: &random)
                let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]
                var mutated = Array(bytes[0..<at]) + huge + bytes[(at + 1)...]
                decodeEveryKind(mutated)
                mutated = Array(bytes[0..<at]) + [0xFF, 0xFF, 0xFF, 0x7F] + bytes[(at + 1)...]
                decodeEveryKind(mutated)
            }
        }
    }

    @Test func randomBytesAfterAValidHeaderNeverCrash() {
        var random = SeededGenerator(seed: Self.seed &+ 2)
        for round in 0..<3_000 {
            let kind = UInt8(round % 3 + 1)
            let length = Int.random(in: 0...96, using: &random)
            var bytes = BinaryWire.magic + [UInt8(round % 2 + 1), kind]
            for _ in 0..<length { bytes.append(UInt8.random(in: 0...255, using: &random)) }
            decodeEveryKind(bytes)
            // And with no header at all.
            decodeEveryKind(Array(bytes.dropFirst(6)))
        }
    }

    /// A pull page of 5,000 changes to 500 patients from three replicas, and the snapshot of those records.
    static func largePage() -> (pull: PullResponse, snapshot: SnapshotPage) {
        var random = SeededGenerator(seed: 42)
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        func ulid(_ prefix: String) -> String {
            prefix + "_0" + String((0..<25).map { _ in alphabet.randomElement(using: &random)! })
        }
        let patients = (0..<500).map { _ in RecordRef(type: "patient", id: ulid("pat")) }
        let authors = (0..<6).map { _ in ulid("per") }
        let sites = (0..<2).map { _ in ulid("sit") }
        let replicas = ["laptop-rn-04", "school-clinic-01", "clinic-desk-02"].map { ReplicaID(unchecked: $0) }
        let fields = ["phone", "riskTier", "preferredLanguage", "careGaps", "notes", "birthDate", "sites", "status"]
        var counters = [UInt64](repeating: 0, count: replicas.count)
        var millis: UInt64 = 1_795_437_000_000
        var states: [RecordRef: RecordState] = [:]
        var changes: [Change] = []
        for _ in 0..<5_000 {
            let replica = Int.random(in: 0..<replicas.count, using: &random)
            counters[replica] += 1
            millis += UInt64.random(in: 0...4_000, using: &random)
            let record = patients.randomElement(using: &random)!
            let field = fields.randomElement(using: &random)!
            let value: Value =
                switch field {
                case "phone": .string("(406) 555-\(Int.random(in: 1_000...9_999, using: &random))")
                case "riskTier": .string(["low", "medium", "high"].randomElement(using: &random)!)
                case "preferredLanguage": .string(["en", "es", "fr"].randomElement(using: &random)!)
                case "notes": .string("Visit note \(Int.random(in: 1...99_999, using: &random)); follow up in clinic.")
                case "sites": .string(sites.randomElement(using: &random)!)
                case "birthDate":
                    .string(
                        "19\(Int.random(in: 30...99, using: &random))-0\(Int.random(in: 1...9, using: &random))-1\(Int.random(in: 0...9, using: &random))"
                    )
                case "status": .string("active")
                default: .int(Int64.random(in: 0...500, using: &random))
                }
            let change = Change(
                id: ChangeID(replica: replicas[replica], counter: counters[replica]),
                record: record,
                field: field,
                operation: .assign,
                value: value,
                replaces: states[record, default: RecordState()][field].liveIDs,
                clock: Timestamp(millis: millis, counter: 0),
                author: authors.randomElement(using: &random)!,
                site: sites.randomElement(using: &random)
            )
            states[record, default: RecordState()].apply(change)
            changes.append(change)
        }
        let records = states.keys.sorted().map { SnapshotRecord(record: $0, state: states[$0]!) }
        return (
            PullResponse(changes: changes, checkpoint: "5000", hasMore: true),
            SnapshotPage(records: records, checkpoint: "5000", next: nil)
        )
    }

    @Test func aLargePullPageAndItsSnapshotAreSeveralTimesSmallerInBinary() throws {
        let (pull, snapshot) = Self.largePage()
        let pullJSON = try Wire.makeEncoder().encode(pull)
        let pullBinary = pull.binaryEncoded()
        #expect(try PullResponse(binary: pullBinary) == pull)
        #expect(pullBinary.count * 4 < pullJSON.count, "binary \(pullBinary.count) bytes, JSON \(pullJSON.count)")
        let snapshotJSON = try Wire.makeEncoder().encode(snapshot)
        let snapshotBinary = snapshot.binaryEncoded()
        #expect(try SnapshotPage(binary: snapshotBinary) == snapshot)
        #expect(
            snapshotBinary.count * 4 < snapshotJSON.count,
            "binary \(snapshotBinary.count) bytes, JSON \(snapshotJSON.count)"
        )
    }

    @Test func layoutTwoIsSmallerThanLayoutOneGzippedAndReadsTheSame() throws {
        let (pull, snapshot) = Self.largePage()
        let pulls = BinaryWire.layouts.map { pull.binaryEncoded(layout: $0) }
        let snapshots = BinaryWire.layouts.map { snapshot.binaryEncoded(layout: $0) }
        for bytes in pulls { #expect(try PullResponse(binary: bytes) == pull) }
        for bytes in snapshots { #expect(try SnapshotPage(binary: bytes) == snapshot) }
        // The page's changes column by column and its 500 record ids as bits: at least a tenth fewer bytes on the
        // wire (gzip) for the pull page, fewer for its snapshot.
        let pullSizes = pulls.map { WireCompression.compress($0).count }
        #expect(pullSizes[1] * 10 < pullSizes[0] * 9, "\(pullSizes)")
        let snapshotSizes = snapshots.map { WireCompression.compress($0).count }
        #expect(snapshotSizes[1] < snapshotSizes[0], "\(snapshotSizes)")
    }
}
