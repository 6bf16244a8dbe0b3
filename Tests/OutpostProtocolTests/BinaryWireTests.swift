import Foundation
import OutpostCRDT
import OutpostProtocol
import Testing

/// One binary golden: a file in `protocol/golden/binary/` and its value, in one layout.
struct BinaryGolden: Sendable, CustomStringConvertible {
    let name: String
    let layout: UInt8
    /// Decodes the bytes as the golden's type; whether they give the value.
    let decodes: @Sendable ([UInt8]) throws -> Bool
    /// The value's binary form.
    let encode: @Sendable () -> [UInt8]
    /// The JSON golden of the same value, when there is one.
    let json: String?

    var description: String { name }

    /// The golden in each of `layouts`: `name` in layout 1, `name` with `.layoutN` before `.bin` in layout N.
    static func make<Message: BinaryWireMessage & Hashable>(
        _ name: String,
        _ value: Message,
        json: String?,
        layouts: ClosedRange<UInt8> = BinaryWire.layouts
    )
        -> [BinaryGolden]
    {
        layouts.map { layout in
            BinaryGolden(
                name: layout == 1 ? name : name.replacingOccurrences(of: ".bin", with: ".layout\(layout).bin"),
                layout: layout,
                decodes: { try Message(binary: $0) == value },
                encode: { value.binaryEncoded(layout: layout) },
                json: json
            )
        }
    }

    /// A layout-3 golden naming every record with a sortable id by abbreviation, read back with the ids of
    /// `records` (what a receiver holding them resolves the abbreviations to).
    static func abbreviated<Message: BinaryWireMessage & Hashable>(
        _ name: String,
        _ value: Message,
        records: [RecordRef]
    ) -> BinaryGolden {
        BinaryGolden(
            name: name,
            layout: 3,
            decodes: { bytes in
                let abbreviations = try BinaryWire.abbreviations(in: bytes, kind: Message.binaryKind)
                let resolved = abbreviations.map { abbreviation in
                    abbreviation.resolve(among: Set(records.filter { $0.type == abbreviation.type }.map(\.id)))
                }
                return try Message(binary: bytes, resolved: resolved) == value
            },
            encode: { value.binaryEncoded(layout: 3) { _ in true } },
            json: nil
        )
    }
}

/// The binary goldens: every JSON golden of a push, pull or snapshot, and a scoped pull page.
enum BinaryCatalog {
    static let scopedPull = PullResponse(
        changes: [GoldenCatalog.pushedChanges[1], GoldenCatalog.pushedChanges[2]],
        checkpoint: "1841",
        hasMore: false,
        records: [
            SnapshotRecord(record: GoldenCatalog.observation, state: GoldenCatalog.observationState),
            SnapshotRecord(record: GoldenCatalog.patient, state: GoldenCatalog.patientState),
        ],
        removed: [GoldenCatalog.otherPatient.id]
    )

    static let all: [BinaryGolden] =
        Array(
            [
                BinaryGolden.make(
                    "push-request.bin",
                    PushRequest(replica: GoldenCatalog.laptop, changes: GoldenCatalog.pushedChanges),
                    json: "push-request.json"
                ),
                BinaryGolden.make(
                    "push-request.empty.bin",
                    PushRequest(replica: GoldenCatalog.laptop, changes: []),
                    json: "push-request.empty.json"
                ),
                BinaryGolden.make("pull-response.bin", try! pulled("pull-response.json"), json: "pull-response.json"),
                BinaryGolden.make(
                    "pull-response.caught-up.bin",
                    try! pulled("pull-response.caught-up.json"),
                    json: "pull-response.caught-up.json"
                ),
                BinaryGolden.make("pull-response.scoped.bin", scopedPull, json: nil),
                BinaryGolden.make("snapshot-page.bin", try! snapshot("snapshot-page.json"), json: "snapshot-page.json"),
                BinaryGolden.make(
                    "snapshot-page.last.bin",
                    try! snapshot("snapshot-page.last.json"),
                    json: "snapshot-page.last.json"
                ),
                // `removed` on a snapshot page is written from layout 4 on.
                BinaryGolden.make(
                    "snapshot-page.removing.bin",
                    GoldenCatalog.removingSnapshot,
                    json: "snapshot-page.removing.json",
                    layouts: 4...BinaryWire.latestLayout
                ),
                // `leftScope` on a pull or snapshot page is written from layout 5 on.
                BinaryGolden.make(
                    "pull-response.leaving.bin",
                    GoldenCatalog.leavingPull,
                    json: "pull-response.leaving.json",
                    layouts: 5...BinaryWire.latestLayout
                ),
                BinaryGolden.make(
                    "snapshot-page.leaving.bin",
                    GoldenCatalog.leavingSnapshot,
                    json: "snapshot-page.leaving.json",
                    layouts: 5...BinaryWire.latestLayout
                ),
            ].joined()
        )
        + [
            BinaryGolden.abbreviated(
                "push-request.abbreviated.layout3.bin",
                PushRequest(replica: GoldenCatalog.laptop, changes: GoldenCatalog.pushedChanges),
                records: GoldenCatalog.pushedChanges.map(\.record)
            ),
            BinaryGolden.abbreviated(
                "pull-response.scoped.abbreviated.layout3.bin",
                scopedPull,
                records: scopedPull.changes.map(\.record) + scopedPull.records.map(\.record)
            ),
        ]

    static func pulled(_ name: String) throws -> PullResponse {
        try Wire.makeDecoder().decode(PullResponse.self, from: ProtocolFiles.read(name, in: ProtocolFiles.golden))
    }

    static func snapshot(_ name: String) throws -> SnapshotPage {
        try Wire.makeDecoder().decode(SnapshotPage.self, from: ProtocolFiles.read(name, in: ProtocolFiles.golden))
    }

    /// Every record the goldens name: what a fuzzed message's abbreviations are resolved among.
    static let knownRecords: [RecordRef] = Array(
        Set(
            GoldenCatalog.pushedChanges.map(\.record) + scopedPull.changes.map(\.record)
                + scopedPull.records.map(\.record) + (try! snapshot("snapshot-page.json")).records.map(\.record)
        )
    )
    .sorted()

    static let directory = ProtocolFiles.golden.appendingPathComponent("binary")
    static let invalidDirectory = directory.appendingPathComponent("invalid")
}

/// Decodes `bytes` as each of the three binary messages; for each that decodes, re-encoding gives a message
/// that decodes to the same value. A message naming records by abbreviation is read with them resolved among
/// the goldens' records (``BinaryCatalog/knownRecords``) and re-encoded abbreviating those of them it holds. Returns how many kinds
/// decoded.
@discardableResult
func decodeEveryKind(_ bytes: [UInt8]) -> Int {
    decodes(bytes, as: PushRequest.self) + decodes(bytes, as: PullResponse.self)
        + decodes(bytes, as: SnapshotPage.self)
}

/// 1 when `bytes` decode as a `Message` (``decodeEveryKind(_:)``), 0 otherwise.
private func decodes<Message: BinaryWireMessage & Equatable>(_ bytes: [UInt8], as _: Message.Type) -> Int {
    guard let abbreviations = try? BinaryWire.abbreviations(in: bytes, kind: Message.binaryKind) else { return 0 }
    let resolved = abbreviations.map { abbreviation in
        abbreviation.resolve(among: BinaryCatalog.knownRecords.filter { $0.type == abbreviation.type }.map(\.id))
    }
    guard let message = try? Message(binary: bytes, resolved: resolved) else { return 0 }
    #expect((try? Message(binary: message.binaryEncoded())) == message)
    let abbreviated = message.binaryEncoded(layout: BinaryWire.latestLayout) { BinaryCatalog.knownRecords.contains($0) }
    let again = (try? BinaryWire.abbreviations(in: abbreviated, kind: Message.binaryKind))?.map { abbreviation in
        abbreviation.resolve(among: BinaryCatalog.knownRecords.filter { $0.type == abbreviation.type }.map(\.id))
    }
    if let again, !again.contains(nil) {
        #expect((try? Message(binary: abbreviated, resolved: again)) == message)
    }
    return 1
}

struct BinaryWireTests {
    @Test(arguments: ["push-request.json", "push-request.empty.json"])
    func everyJSONPushGoldenRoundTripsThroughBinary(_ name: String) throws {
        let push = try Wire.decodeRequest(PushRequest.self, from: ProtocolFiles.read(name, in: ProtocolFiles.golden))
        #expect(try PushRequest(binary: push.binaryEncoded()) == push)
    }

    @Test(arguments: ["pull-response.json", "pull-response.caught-up.json", "pull-response.leaving.json"])
    func everyJSONPullGoldenRoundTripsThroughBinary(_ name: String) throws {
        let page = try BinaryCatalog.pulled(name)
        #expect(try PullResponse(binary: page.binaryEncoded()) == page)
    }

    @Test(
        arguments: [
            "snapshot-page.json", "snapshot-page.last.json", "snapshot-page.removing.json",
            "snapshot-page.leaving.json",
        ]
    )
    func everyJSONSnapshotGoldenRoundTripsThroughBinary(_ name: String) throws {
        let page = try BinaryCatalog.snapshot(name)
        #expect(try SnapshotPage(binary: page.binaryEncoded()) == page)
    }

    /// A snapshot page's `removed` is written from layout 4 on: a page for a reader of an older layout carries
    /// none, and is otherwise the same page; a layout-4 page cut before its `removed` is refused.
    @Test func aSnapshotPageNamesItsRemovedPatientsFromLayoutFourOn() throws {
        let page = try BinaryCatalog.snapshot("snapshot-page.removing.json")
        try #require(!page.removed.isEmpty)
        var without = page
        without.removed = []
        for layout in BinaryWire.layouts {
            let decoded = try SnapshotPage(binary: page.binaryEncoded(layout: layout))
            #expect(decoded == (layout >= 4 ? page : without), "layout \(layout)")
        }
        let four = page.binaryEncoded(layout: 4)
        let older = without.binaryEncoded(layout: 4)
        #expect(throws: BinaryWire.Failure.self) { try SnapshotPage(binary: Array(older.dropLast())) }
        #expect(four.count > older.count)
    }

    /// A pull or snapshot page's `leftScope` is written from layout 5 on: a page for a reader of an older layout
    /// carries none (so that reader keeps nothing of what it removes), and is otherwise the same page; a layout-5
    /// page cut before its `leftScope` is refused.
    @Test func aPageNamesItsLeaversFromLayoutFiveOn() throws {
        let pull = GoldenCatalog.leavingPull
        let snapshot = GoldenCatalog.leavingSnapshot
        try #require(!pull.leftScope.isEmpty && !snapshot.leftScope.isEmpty)
        var pullWithout = pull
        pullWithout.leftScope = []
        var snapshotWithout = snapshot
        snapshotWithout.leftScope = []
        for layout in BinaryWire.layouts {
            #expect(try PullResponse(binary: pull.binaryEncoded(layout: layout)) == (layout >= 5 ? pull : pullWithout))
            if layout >= 4 {
                #expect(
                    try SnapshotPage(binary: snapshot.binaryEncoded(layout: layout))
                        == (layout >= 5 ? snapshot : snapshotWithout),
                    "layout \(layout)"
                )
            }
        }
        for (five, older) in [
            (pull.binaryEncoded(layout: 5), pullWithout.binaryEncoded(layout: 4)),
            (snapshot.binaryEncoded(layout: 5), snapshotWithout.binaryEncoded(layout: 4)),
        ] {
            #expect(five.count > older.count)
        }
        let cut = Array(pullWithout.binaryEncoded(layout: 5).dropLast())
        #expect(throws: BinaryWire.Failure.self) { try PullResponse(binary: cut) }
        let snapshotCut = Array(snapshotWithout.binaryEncoded(layout: 5).dropLast())
        #expect(throws: BinaryWire.Failure.self) { try SnapshotPage(binary: snapshotCut) }
    }

    /// A page whose records are sorted by type then id is written without looking each record up; one out of
    /// that order, or holding a record twice, is written through the record table's look-up, and both decode to
    /// what was encoded, in either layout. (The sorted golden pages are re-encoded byte for byte by
    /// `binaryGoldenDecodesToItsValueAndReEncodesByteForByte`.)
    @Test(arguments: BinaryWire.layouts)
    func aSnapshotPageOfAnyOrderOrWithARepeatedRecordRoundTrips(layout: UInt8) throws {
        let sorted = try BinaryCatalog.snapshot("snapshot-page.json")
        try #require(sorted.records.count > 1)
        for records in [sorted.records, sorted.records.reversed(), sorted.records + [sorted.records[0]]] {
            let page = SnapshotPage(records: records, checkpoint: sorted.checkpoint, next: sorted.next)
            #expect(try SnapshotPage(binary: page.binaryEncoded(layout: layout)) == page)
        }
    }

    /// The reference encoder's rule (protocol/README.md, "Layout"): a string value is a table index when the
    /// message holds it twice or it equals an author or site of the message, or in layout 1 a record id of it,
    /// inline otherwise (layout 2 writes sortable record ids as bits, not in the table). Equal messages must be
    /// equal bytes, so the rule is pinned, not only the decoding of either form.
    @Test(arguments: BinaryWire.layouts)
    func aStringValueIsTabledWhenRepeatedOrAnIdentityAndInlineOtherwise(layout: UInt8) throws {
        let replica = ReplicaID(unchecked: "laptop-1")
        let author = "per_01JD0000000000000000000042"
        let record = RecordRef(type: "task", id: "tsk_01JD0000000000000000000007")
        func change(_ counter: UInt64, _ field: String, _ value: String) -> Change {
            Change(
                id: ChangeID(replica: replica, counter: counter),
                record: record,
                field: field,
                operation: .assign,
                value: .string(value),
                replaces: [],
                clock: Timestamp(millis: 1_780_000_000_000 + counter, counter: 0),
                author: author,
                site: nil
            )
        }
        let push = PushRequest(
            replica: replica,
            changes: [
                change(1, "title", "said-once"), change(2, "notes", "said-twice"), change(3, "kind", "said-twice"),
                change(4, "assignee", author), change(5, "patient", record.id),
            ]
        )
        let bytes = push.binaryEncoded(layout: layout)
        func occurrences(_ text: String) -> Int {
            let needle = [UInt8(text.utf8.count)] + Array(text.utf8)
            return (0...(bytes.count - needle.count)).filter { Array(bytes[$0..<($0 + needle.count)]) == needle }.count
        }
        func isInline(_ text: String) -> Bool {
            let needle = [BinaryWireTests.assignInlineString, UInt8(text.utf8.count)] + Array(text.utf8)
            return (0...(bytes.count - needle.count)).contains { Array(bytes[$0..<($0 + needle.count)]) == needle }
        }
        #expect(isInline("said-once") && occurrences("said-once") == 1)
        for tabled in ["said-twice", author] + (layout == 1 ? [record.id] : []) {
            #expect(!isInline(tabled) && occurrences(tabled) == 1, "\(tabled)")
        }
        if layout != 1 { #expect(isInline(record.id) && occurrences(record.id) == 1) }
        #expect(try PushRequest(binary: bytes) == push)
    }

    /// An assignment's op·value byte for an inline string (operation 0, value tag 4).
    static let assignInlineString: UInt8 = 0x04

    @Test(arguments: BinaryCatalog.all)
    func binaryGoldenDecodesToItsValueAndReEncodesByteForByte(_ golden: BinaryGolden) throws {
        let file = [UInt8](try ProtocolFiles.read(golden.name, in: BinaryCatalog.directory))
        #expect(try golden.decodes(file))
        #expect(golden.encode() == file)
    }

    @Test func everyBinaryGoldenFileHasAValue() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: BinaryCatalog.directory.path)
            .filter { $0.hasSuffix(".bin") }
        #expect(Set(files) == Set(BinaryCatalog.all.map(\.name)))
    }

    @Test func theBinaryFormIsSmallerThanTheJSONForEveryGolden() throws {
        for golden in BinaryCatalog.all {
            guard let json = golden.json else { continue }
            let text = try ProtocolFiles.read(json, in: ProtocolFiles.golden)
            #expect(golden.encode().count < text.count, "\(golden.name)")
        }
    }

    @Test func theMediaTypeIsRecognizedInContentTypeAndAccept() {
        #expect(BinaryWire.isBinaryContentType("application/vnd.outpost.v1+binary"))
        #expect(BinaryWire.isBinaryContentType("Application/VND.Outpost.v1+Binary "))
        #expect(!BinaryWire.isBinaryContentType("application/vnd.outpost.v1+binary; q=1"))
        #expect(!BinaryWire.isBinaryContentType("application/json"))
        #expect(BinaryWire.accepts("application/json, application/vnd.outpost.v1+binary"))
        #expect(BinaryWire.accepts("application/vnd.outpost.v1+binary;q=0.9"))
        #expect(!BinaryWire.accepts("application/vnd.outpost.v1+binary;q=0"))
        #expect(!BinaryWire.accepts("application/json"))
        #expect(!BinaryWire.accepts("*/*"))
    }

    @Test func theLayoutOfAnAnswerIsTheNewestTheAcceptNamesUpToThisSides() {
        let type = BinaryWire.contentType
        #expect(BinaryWire.layout(accepting: type) == 1)
        #expect(BinaryWire.layout(accepting: "\(type); layout=2") == 2)
        #expect(BinaryWire.layout(accepting: "\(type);Layout=2;q=0.5") == 2)
        #expect(BinaryWire.layout(accepting: "\(type); layout=9") == BinaryWire.latestLayout)
        #expect(BinaryWire.layout(accepting: "\(type); layout=300") == BinaryWire.latestLayout)
        #expect(BinaryWire.layout(accepting: "\(type); layout=0") == 1)
        #expect(BinaryWire.layout(accepting: "\(type); layout=two") == 1)
        #expect(BinaryWire.layout(accepting: "\(type); layout=2; q=0") == nil)
        #expect(BinaryWire.layout(accepting: "\(type), \(type); layout=2") == 2)
        #expect(BinaryWire.layout(accepting: "application/json") == nil)
        #expect(BinaryWire.accept(layout: 1) == type)
        #expect(BinaryWire.layout(accepting: BinaryWire.accept(layout: 2)) == 2)
    }

    @Test func layoutTwoWritesSortableRecordIdsAsBitsAndAnyOtherIdAsAString() throws {
        // A sortable id with a prefix, one with none, a lower-case one (not sortable), one too short.
        let ids = [
            "tsk_01JWMCKYEW8Y2Z3YFNJ58P8XPG", "01JWMCNAQ200C79FMJ3JXQJY5A", "tsk_01jwmckyew8y2z3yfnj58p8xpg", "abc",
        ]
        let changes = ids.enumerated().map { index, id in
            Change(
                id: ChangeID(replica: GoldenCatalog.laptop, counter: UInt64(index + 1)),
                record: RecordRef(type: "task", id: id),
                field: "priority",
                operation: .assign,
                value: "urgent",
                replaces: [],
                clock: Timestamp(millis: 1_795_437_000_000, counter: UInt32(index)),
                author: "per_01KJYKKBT1YWAT28G7VFNAJGNS",
                site: nil
            )
        }
        let push = PushRequest(replica: GoldenCatalog.laptop, changes: changes)
        let bytes = push.binaryEncoded(layout: 2)
        #expect(bytes[4] == 2)
        #expect(try PushRequest(binary: bytes) == push)
        func holds(_ text: String) -> Bool {
            let needle = Array(text.utf8)
            return bytes.indices.contains { bytes[$0...].starts(with: needle) }
        }
        #expect(!holds("01JWMCKYEW8Y2Z3YFNJ58P8XPG"))
        #expect(!holds("01JWMCNAQ200C79FMJ3JXQJY5A"))
        #expect(holds("tsk_01jwmckyew8y2z3yfnj58p8xpg"))
        #expect(holds("abc"))
        #expect(try PushRequest(binary: push.binaryEncoded(layout: 1)) == push)
        #expect(bytes.count < push.binaryEncoded(layout: 1).count)
    }

    @Test func aMessageOfAnotherKindIsRefusedNamingBoth() throws {
        let pull = BinaryCatalog.scopedPull.binaryEncoded()
        #expect(throws: BinaryWire.Failure(offset: 5, reason: "the message is a pull page, not a push request")) {
            try PushRequest(binary: pull)
        }
    }

    /// Rewrites the binary goldens and the invalid examples:
    /// `OUTPOST_WRITE_GOLDENS=1 swift test --filter BinaryWireTests`. Review the diff: a changed golden is a
    /// changed wire format.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["OUTPOST_WRITE_GOLDENS"] == "1"))
    func writeBinaryGoldens() throws {
        try FileManager.default.createDirectory(at: BinaryCatalog.invalidDirectory, withIntermediateDirectories: true)
        for golden in BinaryCatalog.all {
            try Data(golden.encode()).write(to: BinaryCatalog.directory.appendingPathComponent(golden.name))
        }
        for example in InvalidBinary.all {
            try Data(example.bytes).write(to: BinaryCatalog.invalidDirectory.appendingPathComponent(example.file))
        }
        let index = InvalidBinary.all.map { ["file": $0.file, "refusal": "malformed_request", "why": $0.why] }
        var text = try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys])
        text.append(0x0A)
        try text.write(to: BinaryCatalog.invalidDirectory.appendingPathComponent("index.json"))
    }
}
