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
}

extension InvalidBinary {
    static let valid = Craft.push()

    static let all: [InvalidBinary] = [
        InvalidBinary(
            file: "push.bad-magic.bin",
            why: "does not start with OPB1",
            bytes: Array("OPB2".utf8) + valid.dropFirst(4)
        ),
        InvalidBinary(
            file: "push.version-2.bin",
            why: "layout version 2",
            bytes: Array(valid[0..<4]) + [2] + valid.dropFirst(5)
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
    ]
}

struct InvalidBinaryTests {
    @Test func theHandBuiltPushIsValid() throws {
        let push = try PushRequest(binary: InvalidBinary.valid)
        #expect(push.changes.count == 1)
        #expect(push.changes[0].id.description == "laptop-rn-04/1")
        #expect(push.changes[0].value == "x")
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
            var bytes = BinaryWire.magic + [BinaryWire.version, kind]
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
}
