import Foundation
import OutpostCRDT
import OutpostModel
import Testing

@testable import OutpostClient

/// The store's row formats (docs/store.md, "Row format"): rows of every format still read, the well-known
/// strings are frozen, and format 3 is smaller than format 2 on care-model rows.
struct StoreRowFormatTests {
    static let patient = RecordRef(type: "patient", id: "pat_01JWMCKG2GPCZVJBYCFFV6C8XS")

    /// Changes of two replicas to a patient: well-known field names and values, free text, a set add and
    /// remove, a log append, a concurrent review-field pair, with and without a site.
    static func sampleChanges() -> [Change] {
        let laptop = ReplicaID(unchecked: "01JWMCKG0116Q4G4JXDH22YAN4")
        let clinic = ReplicaID(unchecked: "01JWMCKG021VKCN0WEWEXE0EQM")
        func change(
            _ replica: ReplicaID,
            _ counter: UInt64,
            _ field: String,
            _ operation: OutpostCRDT.Operation,
            _ value: Value,
            replaces: [ChangeID] = [],
            millis: UInt64,
            site: String?
        ) -> Change {
            Change(
                id: ChangeID(replica: replica, counter: counter),
                record: patient,
                field: field,
                operation: operation,
                value: value,
                replaces: replaces,
                clock: Timestamp(millis: millis, counter: 0),
                author: replica == laptop ? "per_01JWMCKG09N7RQ4FH82GBPR87Q" : "per_01JWMCKG27SRH9SWGD0D802WXW",
                site: site
            )
        }
        let site = "sit_01JWMCKG021VKCN0WEWEXE0EQM"
        return [
            change(laptop, 1, "givenName", .assign, "Ana", millis: 1_764_000_000_000, site: site),
            change(laptop, 2, "sex", .assign, "female", millis: 1_764_000_000_000, site: site),
            change(laptop, 3, "status", .assign, "active", millis: 1_764_000_000_001, site: site),
            change(laptop, 4, "conditions", .add, "E11.9", millis: 1_764_000_000_002, site: site),
            change(laptop, 5, "birthDate", .assign, "1970-01-01", millis: 1_764_000_000_003, site: site),
            change(laptop, 6, "consentToText", .assign, .bool(true), millis: 1_764_000_000_003, site: nil),
            change(clinic, 1, "birthDate", .assign, "1971-01-01", millis: 1_764_000_000_005, site: nil),
            change(
                clinic,
                2,
                "conditions",
                .remove,
                "E11.9",
                replaces: [ChangeID(replica: laptop, counter: 4)],
                millis: 1_764_000_000_006,
                site: nil
            ),
            change(clinic, 3, "notes", .append, "Prefers mornings", millis: 1_764_000_000_007, site: "sit_x"),
            change(clinic, 4, "riskTier", .assign, "very-high", millis: 1_764_000_000_008, site: nil),
            change(clinic, 5, "monthlyPaymentCents", .assign, .int(2_500), millis: 1_764_000_000_009, site: nil),
        ]
    }

    static func sampleState() throws -> RecordState {
        var state = RecordState()
        for change in sampleChanges() { _ = state.apply(change) }
        return state
    }

    /// The sample state and change row as format 2 wrote them (before format 3), in hex.
    static let format2State = [
        "00020f096269727468446174651a30314a574d434b4730313136513447344a584448323259414e341e7065725f30314a",
        "574d434b4730394e3752513446483832474250523837511e7369745f30314a574d434b47303231564b434e3057455745",
        "58453045514d1a30314a574d434b47303231564b434e305745574558453045514d1e7065725f30314a574d434b473237",
        "535248395357474430443830325758570a636f6e646974696f6e730d636f6e73656e74546f5465787409676976656e4e",
        "616d65136d6f6e74686c795061796d656e7443656e7473056e6f746573057369745f78087269736b5469657203736578",
        "06737461747573090002010a040a313937302d30312d303186a0bfe9d6660002040407040a313937312d30312d303104",
        "0005000006000101040701010a020300020000080101090403416e6105000204000901040803882712000500000a0104",
        "03041050726566657273206d6f726e696e67730300050c000c0104020409766572792d6869676802000500000d010103",
        "040666656d616c650f000204000e01010204066163746976650200020400",
    ].joined()
    static let format2Row = [
        "00020f1a30314a574d434b4730313136513447344a584448323259414e3409676976656e4e616d651e7065725f30314a",
        "574d434b4730394e3752513446483832474250523837511e7369745f30314a574d434b47303231564b434e3057455745",
        "58453045514d03736578067374617475730a636f6e646974696f6e73096269727468446174650d636f6e73656e74546f",
        "546578741a30314a574d434b47303231564b434e305745574558453045514d1e7065725f30314a574d434b4732375352",
        "4839535747443044383032575857056e6f746573057369745f78087269736b54696572136d6f6e74686c795061796d65",
        "6e7443656e74730b000201000403416e610080a0bfe9d66600020400020400040666656d616c65000000020400020500",
        "040661637469766500020002040002060104054531312e39000200020400020700040a313937302d30312d3031000200",
        "02040002080002000000020009090700040a313937312d30312d30310004000a000902060204054531312e3901000402",
        "000a0009020b03041050726566657273206d6f726e696e67730002000a0d09020d000409766572792d68696768000200",
        "0a0009020e000388270002000a00",
    ].joined()

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// Rows a store wrote in format 2 read back as the same state and changes, and rows written now are
    /// format 3, read back exactly and smaller.
    @Test func format2RowsStillReadAndFormat3RowsAreSmaller() throws {
        let state = try Self.sampleState()
        let changes = Self.sampleChanges()
        let oldState = Self.bytes(hex: Self.format2State)
        let oldRow = Self.bytes(hex: Self.format2Row)
        #expect(oldState.prefix(2) == [0, 2] && oldRow.prefix(2) == [0, 2])
        #expect(try StoreCodec.state(oldState) == state)
        #expect(try StoreCodec.changes(oldRow, of: Self.patient) == changes)

        let newState = StoreCodec.encode(state)
        let newRow = StoreCodec.encode(changes)
        #expect(newState.prefix(2) == [0, 3] && newRow.prefix(2) == [0, 3])
        #expect(try StoreCodec.state(newState) == state)
        #expect(try StoreCodec.changes(newRow, of: Self.patient) == changes)
        // Only some fields: the others are read past, their well-known values included.
        let fields: Set<String> = ["birthDate", "notes"]
        #expect(
            try StoreCodec.changes(newRow, of: Self.patient, fields: fields)
                == changes.filter { fields.contains($0.field) }
        )
        // The sample's field names and its code values ("female", "active", "very-high") are not spelled out.
        #expect(newState.count < oldState.count - 100 && newRow.count < oldRow.count - 100)
        for text in ["givenName", "female", "very-high"] {
            #expect(!newRow.containsSubsequence(Array(text.utf8)), "\(text)")
        }
        // A string that is not well-known is still written out: a new model's field, free text.
        #expect(newRow.containsSubsequence(Array("Prefers mornings".utf8)))
    }

    /// Every truncation of a format-3 row is refused, and references past either table are refused.
    @Test func damagedFormat3RowsAreRefused() throws {
        let row = StoreCodec.encode(Self.sampleChanges())
        let state = StoreCodec.encode(try Self.sampleState())
        for length in 2..<row.count {
            #expect(throws: CRDTError.self) { try StoreCodec.changes(Array(row.prefix(length)), of: Self.patient) }
        }
        for length in 2..<state.count {
            #expect(throws: CRDTError.self) { try StoreCodec.state(Array(state.prefix(length))) }
        }
        // One change of replica `laptop`, counter 1, whose field reference is `field` and then `tail`.
        func oneChange(field: [UInt8], tail: [UInt8]) -> [UInt8] {
            let replica = Array("01JWMCKG0116Q4G4JXDH22YAN4".utf8)
            return [0, 3, 1, UInt8(replica.count)] + replica + [
                1, 0, UInt8(truncatingIfNeeded: Zigzag.encode(1, from: 0)),
            ] + field + tail
        }
        let valid = oneChange(field: [9], tail: [0, 5, 4, 0, 0, 0, 0, 0])  // status := "status" (well-known 4)
        let decoded = try StoreCodec.changes(valid, of: Self.patient)
        #expect(decoded.map(\.field) == ["status"] && decoded.map(\.value) == ["status"])
        // Well-known string 200, past the list: as a field name, then as a value.
        #expect(throws: CRDTError.self) {
            try StoreCodec.changes(oneChange(field: [0x91, 0x03], tail: [0, 5, 4, 0, 0, 0, 0, 0]), of: Self.patient)
        }
        #expect(throws: CRDTError.self) {
            try StoreCodec.changes(oneChange(field: [9], tail: [0, 5, 0xC8, 0x01, 0, 0, 0, 0, 0]), of: Self.patient)
        }
        // A row-table reference past the row's table (index 1 of 1).
        #expect(throws: CRDTError.self) {
            try StoreCodec.changes(oneChange(field: [2], tail: [0, 5, 4, 0, 0, 0, 0, 0]), of: Self.patient)
        }
    }

    /// The well-known strings are frozen: rows on disk name them by position. The list may only grow at its
    /// end; this golden copy is the list format 3 was made with.
    @Test func theWellKnownStringsAreFrozenAndCoverTheCareModel() {
        let golden: [String] = [
            "name", "address", "phone", "timeZone", "status", "fhirIDs", "resolutions", "kind", "role", "email",
            "sites", "subgroup", "leader", "members", "key", "label", "description", "monthlyPaymentCents",
            "givenName", "familyName", "birthDate", "sex", "mrn", "deceasedOn", "preferredLanguage", "riskTier",
            "primaryTeam", "conditions", "allergies", "careGaps", "consentToText", "consentToShare", "notes",
            "mergedInto", "merges", "patient", "team", "title", "priority", "dueDate", "assignee", "channel",
            "attempts", "referredTo", "referralSentOn", "appointmentOn", "resultReceivedOn", "referralStatus",
            "code", "value", "unit", "effectiveAt", "site", "occurredAt", "costCents", "active", "inactive",
            "clinic", "home-visit", "school", "workplace", "pharmacy", "virtual", "physician", "np-pa", "rn",
            "pharmacist", "behavioral-health", "care-navigator", "medical-assistant", "front-office",
            "social-worker", "specialist", "male", "female", "other", "unknown", "low", "moderate", "high",
            "very-high", "deceased", "entered-in-error", "outreach", "screening", "gap-closure",
            "medication-review", "referral", "ed-follow-up", "discharge-follow-up", "remote-monitoring",
            "behavioral-screening", "social-needs", "school-visit", "group-visit", "requested", "ready",
            "in-progress", "on-hold", "completed", "cancelled", "failed", "routine", "urgent", "asap", "stat",
            "in-person", "video", "message", "home", "draft", "sent", "scheduled", "seen", "result-received",
            "closed", "declined", "4548-4", "8480-6", "8462-4", "39156-5", "29463-7", "44261-6", "2089-1", "final",
            "office", "ed-visit", "admission", "finished",
        ]
        #expect(Array(StoreCodec.wellKnown.prefix(golden.count)) == golden)
        #expect(Set(StoreCodec.wellKnown).count == StoreCodec.wellKnown.count)
        // A field or code the model gains later is written out in rows (correct, only larger): this says so.
        var missing: [String] = []
        for type in RecordType.allCases {
            for spec in CareModel.fields(of: type) {
                for text in [spec.name] + spec.kind.allowedValues where StoreCodec.wellKnownIndex[text] == nil {
                    missing.append("\(type).\(spec.name): \(text)")
                }
            }
        }
        #expect(missing.isEmpty, "not well-known, so spelled out in every row: \(missing)")
    }

    /// The rows' writer finds well-known strings by their bytes (``WellKnownTable``) as the dictionary finds them:
    /// every one at its place, and no other string: each with a byte changed, cut short, grown, in capitals, in
    /// other scripts, empty, ids and free text.
    @Test func theWellKnownTableFindsWhatTheDictionaryFinds() {
        var texts = StoreCodec.wellKnown
        for known in StoreCodec.wellKnown {
            texts += [
                String(known.dropLast()), String(known.dropFirst()), known + "s", known.uppercased(), "x" + known,
            ]
            var bytes = Array(known.utf8)
            bytes[bytes.count - 1] ^= 1
            texts.append(String(decoding: bytes, as: UTF8.self))
        }
        texts += [
            "", "é", "e\u{301}", "\u{1F600}", "pat_01JWMCKG2GPCZVJBYCFFV6C8XS", "Called; left a message (1).",
            String(repeating: "a", count: 40), "home-visit-extended-to-a-long-text",
        ]
        for text in texts {
            #expect(StoreCodec.wellKnownPosition(of: text) == StoreCodec.wellKnownIndex[text], "\(text)")
        }
        for (place, known) in StoreCodec.wellKnown.enumerated() {
            #expect(StoreCodec.wellKnownPosition(of: known) == UInt64(place))
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
