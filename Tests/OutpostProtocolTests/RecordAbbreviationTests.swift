import OutpostCRDT
import OutpostProtocol
import Testing

/// Layout 3's records named by abbreviation (protocol/README.md, "Layout 3"): what is abbreviated, how a
/// receiver resolves it, and that a receiver never takes a record the sender did not mean.
struct RecordAbbreviationTests {
    static let replica = ReplicaID(unchecked: "laptop-rn-04")
    static let author = "per_01KJYKKBT1YWAT28G7VFNAJGNS"

    /// A push of one change to each of `records`, counters from 1.
    static func push(_ records: [RecordRef]) -> PushRequest {
        let changes = records.enumerated().map { index, record in
            Change(
                id: ChangeID(replica: replica, counter: UInt64(index + 1)),
                record: record,
                field: "phone",
                operation: .assign,
                value: .string("555-01\(index)"),
                clock: Timestamp(millis: 1_760_000_000_000 + UInt64(index), counter: 0),
                author: author
            )
        }
        return PushRequest(replica: replica, changes: changes)
    }

    /// `id` with its last random character replaced: the same abbreviation, another record.
    static func sibling(of id: String) -> String {
        String(id.dropLast()) + (id.hasSuffix("0") ? "1" : "0")
    }

    /// The ids of `records` the abbreviations of `bytes` resolve to among `held`.
    static func resolve(_ bytes: [UInt8], among held: [RecordRef]) throws -> [String?] {
        // Grouped by abbreviation first: a receiver looks each up in an index, not among every record it holds.
        let byAbbreviation = Dictionary(grouping: held) { RecordAbbreviation($0) }
        return try BinaryWire.abbreviations(in: bytes, kind: .pushRequest).map { abbreviation in
            abbreviation.resolve(among: (byAbbreviation[abbreviation] ?? []).map(\.id))
        }
    }

    let patient = RecordRef(type: "patient", id: "pat_01KKBFJZCTT8BHAW9GPEZGQKFM")
    let task = RecordRef(type: "careTask", id: "tsk_01KKBFK0AAT8BHAW9GPEZGQKFM")
    let named = RecordRef(type: "patient", id: "legacy-42")

    @Test func aRecordTheReceiverHoldsIsNamedBySixFewerRandomBytesAndReadBackWhole() throws {
        let push = Self.push([patient, task, named])
        let whole = push.binaryEncoded(layout: 3)
        let abbreviated = push.binaryEncoded(layout: 3) { $0 == patient || $0 == named }
        // Six of the patient's ten random bytes fewer, and the digest's eight more; the id that is no sortable id
        // is named in full.
        #expect(abbreviated.count - whole.count == 8 - 6)
        #expect(try BinaryWire.abbreviations(in: abbreviated, kind: .pushRequest) == [RecordAbbreviation(patient)!])
        let resolved = try Self.resolve(abbreviated, among: [patient, task])
        #expect(resolved == [patient.id])
        #expect(try PushRequest(binary: abbreviated, resolved: resolved) == push)
        #expect(try PushRequest(binary: whole) == push)
    }

    @Test func manyRecordsAbbreviatedSaveTheirSixRandomBytesGzipped() throws {
        var random = SeededGenerator(seed: 7)
        let records = (0..<2_000).map { index in
            RecordRef(
                type: "patient",
                id: "pat_" + SortableID.make(millis: 1_700_000_000_000 + UInt64(index) * 977, using: &random)
            )
        }
        let push = Self.push(records.shuffled(using: &random))
        let whole = WireCompression.compress(push.binaryEncoded(layout: 3))
        let abbreviatedBytes = push.binaryEncoded(layout: 3) { _ in true }
        let abbreviated = WireCompression.compress(abbreviatedBytes)
        // Six random bytes saved per record, which gzip cannot shrink.
        #expect(whole.count - abbreviated.count > 2_000 * 5)
        let resolved = try Self.resolve(abbreviatedBytes, among: records)
        #expect(try PushRequest(binary: abbreviatedBytes, resolved: resolved) == push)
    }

    @Test func twoRecordsOfOneTypeAndMillisecondAreNamedInFull() throws {
        let twin = RecordRef(type: "patient", id: "pat_01KKBFJZCTZZZZZZZZZZZZZZZZ")
        let push = Self.push([patient, twin, task])
        let bytes = push.binaryEncoded(layout: 3) { _ in true }
        #expect(try BinaryWire.abbreviations(in: bytes, kind: .pushRequest) == [RecordAbbreviation(task)!])
    }

    @Test func aRecordNotHeldOrHeldTwiceIsUnresolvedNotGuessed() throws {
        let push = Self.push([patient, task])
        let bytes = push.binaryEncoded(layout: 3) { _ in true }
        // Not held: nothing to resolve to.
        let missing = try Self.resolve(bytes, among: [task])
        #expect(missing.contains(nil))
        let notHeld = #expect(throws: BinaryWire.Failure.self) { try PushRequest(binary: bytes, resolved: missing) }
        #expect(notHeld?.isUnresolved == true)
        // Two held records with the patient's abbreviation: neither is taken.
        let twin = RecordRef(type: "patient", id: Self.sibling(of: patient.id))
        let twins = try Self.resolve(bytes, among: [patient, twin, task])
        #expect(twins == [nil, task.id])
        // Read without resolving at all.
        let unread = #expect(throws: BinaryWire.Failure.self) { try PushRequest(binary: bytes) }
        #expect(unread?.isUnresolved == true)
    }

    @Test func anotherRecordWithTheSameAbbreviationFailsTheDigest() throws {
        let push = Self.push([patient, task])
        let bytes = push.binaryEncoded(layout: 3) { _ in true }
        // The receiver holds another patient with the same abbreviation, not the one meant.
        let impostor = Self.sibling(of: patient.id)
        #expect(RecordAbbreviation(patient)!.matches(impostor))
        let failure = #expect(throws: BinaryWire.Failure.self) {
            try PushRequest(binary: bytes, resolved: [impostor, task.id])
        }
        #expect(failure?.isUnresolved == true)
        #expect(failure?.reason.contains("digest") == true)
        // An id that does not have the abbreviation is refused before the digest.
        let wrong = #expect(throws: BinaryWire.Failure.self) {
            try PushRequest(binary: bytes, resolved: ["pat_01KKBFJZCTT8BHAX0000000000", task.id])
        }
        #expect(wrong?.isUnresolved == true)
    }

    @Test func anAbbreviationSpansExactlyTheIdsThatHaveIt() throws {
        let abbreviation = try #require(RecordAbbreviation(patient))
        #expect(abbreviation.lowestID <= patient.id && patient.id <= abbreviation.highestID)
        #expect(abbreviation.matches(abbreviation.lowestID) && abbreviation.matches(abbreviation.highestID))
        for bound in [abbreviation.lowestID, abbreviation.highestID] {
            #expect(bound.hasPrefix("pat_01KKBFJZCTT8BHAW"))
        }
        #expect(!abbreviation.matches(task.id) && !abbreviation.matches("pat_01KKBFJZCTT8BHAX0000000000"))
        #expect(RecordAbbreviation(named) == nil)
    }

    @Test func layoutsBeforeThreeNeverAbbreviate() throws {
        let push = Self.push([patient, task])
        for layout: UInt8 in [1, 2] {
            let bytes = push.binaryEncoded(layout: layout) { _ in true }
            #expect(try BinaryWire.abbreviations(in: bytes, kind: .pushRequest).isEmpty)
            #expect(try PushRequest(binary: bytes) == push)
        }
    }
}
