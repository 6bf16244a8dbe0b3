import OutpostCRDT

import struct Foundation.Data

/// The store's compact binary form of record states and change-log rows (format 3).
///
/// Format 1 is `OutpostCRDT`'s ``BinaryWriter`` layout, which spells out every write's replica id,
/// author and site, and repeats the record's type and id in every change-log row. Format 2 codes what
/// repeats within one row once:
///
/// - a row starts with the bytes `0x00 0x02`, then a string table (a varint count, then the strings):
///   every replica id, author, site and field name of the row, once each, in order of first use;
/// - a replica id, author, site or field name is its varint index in the table (a site is 0 when absent,
///   its index plus one otherwise);
/// - change counters and clocks are zigzag varint deltas from the previous write of the row (millis and
///   clock counter separately), so a record written in one transaction costs a byte or two per clock;
/// - a change-log row does not repeat its record: the row's `type` and `id` columns name it.
///
/// Format 3 (`0x00 0x03`, written from store schema `v12-well-known-strings` on) is format 2 with the
/// care model's field names and code values (``wellKnown``, a frozen list) left out of the rows: a string
/// reference is `2 × i` for the row table's string `i` and `2 × i + 1` for the well-known string `i`, and a
/// value that is a well-known string is the tag byte `5` and its index.
///
/// Other values are written as in format 1 (a tag byte and the payload). Rows of formats 1 and 2 are
/// still read: a format-1 state never starts with `0x00` followed by more bytes (an empty state is the
/// single byte `0x00`), and a format-1 change row starts with the length of a non-empty record type.
/// Every length, count and index is checked: malformed bytes are refused with a ``CRDTError``
/// (`malformedEncoding`), never a crash.
///
/// A store's codec (``LocalStore``'s `codec`) is the one door between rows and SQLite: its instance methods
/// encode and decode every blob the store writes or reads, sealing and opening them with ``StoreCipher`` when
/// the store is encrypted (docs/store.md, "Encryption at rest"). An encrypted store refuses a plain row, and a
/// plain store an encrypted one.
struct StoreCodec: Sendable {
    /// The first bytes of a row written now (format 3).
    static let marker: [UInt8] = [0x00, 0x03]

    /// The strings format 3 rows name by index rather than spell out: every field name of the care model,
    /// then every value of its enumerations, as they stood when format 3 was made. Frozen: rows on disk
    /// name these by position, so an entry is never changed, moved or removed; a later model's new names
    /// are simply written in the rows (`StoreRowFormatTests` holds the list to its golden copy).
    static let wellKnown: [String] = [
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

    /// The position of each ``wellKnown`` string.
    static let wellKnownIndex: [String: UInt64] = Dictionary(
        uniqueKeysWithValues: wellKnown.enumerated().map { ($0.element, UInt64($0.offset)) }
    )

    /// ``wellKnown`` as the rows' writer looks its strings up (``WellKnownTable``).
    static let wellKnownTable = WellKnownTable(wellKnown)

    /// The position of `text` in ``wellKnown``, `nil` when it is not there.
    static func wellKnownPosition(of text: String) -> UInt64? {
        if let found = text.utf8.withContiguousStorageIfAvailable({ wellKnownTable.index(of: $0) }) { return found }
        // A string without contiguous UTF-8 (a bridged one) is looked up in a contiguous copy.
        var copy = text
        copy.makeContiguousUTF8()
        return copy.utf8.withContiguousStorageIfAvailable { wellKnownTable.index(of: $0) } ?? nil
    }

    /// The value tag of a well-known string (tags 0 to 4 are ``BinaryWriter``'s).
    static let wellKnownValueTag: UInt8 = 5

    /// The store's cipher; `nil` for a store that is not encrypted.
    let cipher: StoreCipher?
    /// How the store's projection is written: plain values, or tokens and sealed values (``ProjectionCodec``).
    let projection: ProjectionCodec

    /// A codec sealing with `cipher`, or a plain one.
    init(cipher: StoreCipher?) {
        self.cipher = cipher
        projection = ProjectionCodec(cipher: cipher)
    }

    /// Whether the store's blobs are encrypted.
    var isEncrypted: Bool { cipher != nil }

    // MARK: The store's blobs

    /// The stored form of `record`'s state.
    func encode(_ state: RecordState, of record: RecordRef) throws(CRDTError) -> Data {
        guard let cipher else { return Data(Self.encode(state)) }
        return try cipher.seal(Self.encode(state), .state, of: record)
    }

    /// The stored form of a change-log row of `record`.
    func encode(_ changes: [Change], of record: RecordRef) throws(CRDTError) -> Data {
        guard let cipher else { return Data(Self.encode(changes)) }
        return try cipher.seal(Self.encode(changes), .change, of: record)
    }

    /// Decodes `record`'s stored state.
    func decodeState(_ blob: Data, of record: RecordRef) throws(CRDTError) -> RecordState {
        try Self.state(plain(blob, .state, of: record))
    }

    /// Decodes a stored change-log row of `record`; with `fields`, only the changes of those fields (the
    /// others are read past, not made: the scorecard reads three fields of every patient's log).
    func decodeChanges(_ blob: Data, of record: RecordRef, fields: Set<String>? = nil) throws(CRDTError) -> [Change] {
        try Self.changes(plain(blob, .change, of: record), of: record, fields: fields)
    }

    private func plain(_ blob: Data, _ purpose: StoreCipher.Purpose, of record: RecordRef) throws(CRDTError) -> [UInt8]
    {
        if let cipher { return try cipher.open(blob, purpose, of: record) }
        guard !StoreCipher.isSealed(blob) else {
            throw Self.malformed("an encrypted row of \(record) in a store that is not encrypted")
        }
        return Array(blob)
    }

    /// Whether `bytes` are in format 2 or 3.
    static func isCompact(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x00 && (bytes[1] == 0x02 || bytes[1] == 0x03)
    }

    // MARK: Writing

    /// The row's strings, in order of first use; rows hold few distinct strings, so a linear scan is
    /// cheaper than hashing.
    private struct Table {
        var strings: [String] = []

        /// The reference to a string that is never well-known (a replica id, an author, a site).
        mutating func index(of text: String) -> UInt64 {
            for (index, held) in strings.enumerated() where held == text { return UInt64(index) << 1 }
            strings.append(text)
            return UInt64(strings.count - 1) << 1
        }

        /// The reference to a field name: its well-known index when it has one.
        mutating func index(ofName name: String) -> UInt64 {
            if let known = StoreCodec.wellKnownPosition(of: name) { return known << 1 | 1 }
            return index(of: name)
        }
    }

    /// Writes a value, a well-known string by its index.
    private static func write(_ value: Value, into body: inout BinaryWriter) {
        if case .string(let text) = value, let known = wellKnownPosition(of: text) {
            body.write(byte: wellKnownValueTag)
            body.write(varint: known)
        } else {
            body.write(value)
        }
    }

    /// The delta coder of one row: counters and clocks relative to the previous write.
    private struct Deltas {
        var counter: UInt64 = 0
        var millis: UInt64 = 0
        var clockCounter: UInt64 = 0
    }

    /// Encodes a record state (fields sorted by name, so the same state always gives the same bytes).
    static func encode(_ state: RecordState) -> [UInt8] {
        var table = Table()
        var deltas = Deltas()
        var body = BinaryWriter(capacity: 256)
        // Fields in name order, read in place: no write copied out (a copy retains and releases each of its
        // strings).
        let fields = state.sortedFields
        body.write(varint: UInt64(fields.count))
        for position in fields.indices {
            let field = fields[position].state
            body.write(varint: table.index(ofName: fields[position].name))
            body.write(varint: UInt64(field.live.count))
            for index in field.live.indices {
                let id = field.live[index].id
                body.write(varint: table.index(of: id.replica.rawValue))
                body.write(varint: Zigzag.encode(id.counter, from: deltas.counter))
                deltas.counter = id.counter
                Self.write(field.live[index].value, into: &body)
                let clock = field.live[index].clock
                body.write(varint: Zigzag.encode(clock.millis, from: deltas.millis))
                deltas.millis = clock.millis
                body.write(varint: Zigzag.encode(UInt64(clock.counter), from: deltas.clockCounter))
                deltas.clockCounter = UInt64(clock.counter)
                body.write(varint: table.index(of: field.live[index].author))
                body.write(varint: field.live[index].site.map { table.index(of: $0) + 1 } ?? 0)
            }
            body.write(varint: UInt64(field.superseded.count))
            for id in field.superseded {
                body.write(varint: table.index(of: id.replica.rawValue))
                body.write(varint: id.counter)
            }
        }
        return framed(body.bytes, table: table)
    }

    /// Encodes changes of one record (the record itself is in the row's columns).
    static func encode(_ changes: [Change]) -> [UInt8] {
        var table = Table()
        var deltas = Deltas()
        var body = BinaryWriter(capacity: 32 * changes.count + 16)
        body.write(varint: UInt64(changes.count))
        for change in changes {
            body.write(varint: table.index(of: change.id.replica.rawValue))
            body.write(varint: Zigzag.encode(change.id.counter, from: deltas.counter))
            deltas.counter = change.id.counter
            body.write(varint: table.index(ofName: change.field))
            body.write(byte: code(of: change.operation))
            Self.write(change.value, into: &body)
            body.write(varint: UInt64(change.replaces.count))
            for id in change.replaces {
                body.write(varint: table.index(of: id.replica.rawValue))
                body.write(varint: id.counter)
            }
            body.write(varint: Zigzag.encode(change.clock.millis, from: deltas.millis))
            deltas.millis = change.clock.millis
            body.write(varint: Zigzag.encode(UInt64(change.clock.counter), from: deltas.clockCounter))
            deltas.clockCounter = UInt64(change.clock.counter)
            body.write(varint: table.index(of: change.author))
            body.write(varint: change.site.map { table.index(of: $0) + 1 } ?? 0)
        }
        return framed(body.bytes, table: table)
    }

    private static func framed(_ body: [UInt8], table: Table) -> [UInt8] {
        var head = BinaryWriter(capacity: body.count + 64)
        head.write(byte: marker[0])
        head.write(byte: marker[1])
        head.write(varint: UInt64(table.strings.count))
        for text in table.strings { head.write(text) }
        var bytes = head.bytes
        bytes.append(contentsOf: body)
        return bytes
    }

    private static func code(of operation: Operation) -> UInt8 {
        switch operation {
        case .assign: 0
        case .add: 1
        case .remove: 2
        case .append: 3
        }
    }

    // MARK: Reading

    /// Decodes a stored record state of either format; the whole input must be used.
    static func state(_ bytes: [UInt8]) throws(CRDTError) -> RecordState {
        guard isCompact(bytes) else {
            var reader = BinaryReader(bytes)
            let state = try reader.readRecordState()
            guard reader.isAtEnd else { throw malformed("bytes after the record state") }
            return state
        }
        var reader = CompactReader(bytes)
        let state = try reader.readState()
        guard reader.isAtEnd else { throw malformed("bytes after the record state") }
        return state
    }

    /// Decodes a stored change-log row of either format; `record` is the row's record (format 1 rows also
    /// name it themselves).
    static func changes(
        _ bytes: [UInt8],
        of record: RecordRef,
        fields: Set<String>? = nil
    ) throws(CRDTError) -> [Change] {
        guard isCompact(bytes) else {
            var reader = BinaryReader(bytes)
            let changes = try reader.readChanges()
            guard reader.isAtEnd else { throw malformed("bytes after the changes") }
            return fields.map { fields in changes.filter { fields.contains($0.field) } } ?? changes
        }
        var reader = CompactReader(bytes)
        let changes = try reader.readChanges(of: record, fields: fields)
        guard reader.isAtEnd else { throw malformed("bytes after the changes") }
        return changes
    }

    static func malformed(_ what: String) -> CRDTError {
        CRDTError(code: .malformedEncoding, message: "stored data is malformed (\(what))")
    }

    /// Reads format 2: the primitives are ``BinaryReader``'s; the table indices are checked here.
    private struct CompactReader {
        var reader: BinaryReader
        var strings: [String] = []
        /// Whether the row is format 3: references name the row's table or ``wellKnown`` (see the type).
        var isFormat3 = false
        /// The last replica id read and its index: a row's changes are mostly one replica's, checked once.
        var lastReplica: (index: UInt64, id: ReplicaID)?
        var deltas = Deltas()

        init(_ bytes: [UInt8]) {
            reader = BinaryReader(bytes)
        }

        var isAtEnd: Bool { reader.isAtEnd }

        mutating func readTable() throws(CRDTError) {
            _ = try reader.readByte()
            isFormat3 = try reader.readByte() == 0x03
            let count = try reader.readVarint()
            // Every string takes at least its length byte.
            guard count <= 1 << 20 else { throw StoreCodec.malformed("string table too long") }
            strings.reserveCapacity(min(Int(count), 64))
            for _ in 0..<count { strings.append(try reader.readString()) }
        }

        mutating func count() throws(CRDTError) -> Int {
            let count = try reader.readVarint()
            guard count <= 1 << 24 else { throw StoreCodec.malformed("count too large") }
            return Int(count)
        }

        /// The string a reference names: the row table's, or in format 3 a well-known one.
        func resolve(_ reference: UInt64) throws(CRDTError) -> String {
            guard isFormat3 else {
                guard reference < UInt64(strings.count) else { throw StoreCodec.malformed("string index out of range") }
                return strings[Int(reference)]
            }
            let index = reference >> 1
            if reference & 1 == 1 {
                guard index < UInt64(StoreCodec.wellKnown.count) else {
                    throw StoreCodec.malformed("well-known string index out of range")
                }
                return StoreCodec.wellKnown[Int(index)]
            }
            guard index < UInt64(strings.count) else { throw StoreCodec.malformed("string index out of range") }
            return strings[Int(index)]
        }

        mutating func string() throws(CRDTError) -> String {
            // Read first, then resolved: `resolve(try reader.readVarint())` would borrow the reader for the call
            // while the argument mutates it, and Swift copies the whole reader (its tables) to keep both.
            let reference = try reader.readVarint()
            return try resolve(reference)
        }

        mutating func site() throws(CRDTError) -> String? {
            let index = try reader.readVarint()
            if index == 0 { return nil }
            return try resolve(index - 1)
        }

        mutating func replica() throws(CRDTError) -> ReplicaID {
            let index = try reader.readVarint()
            if let lastReplica, lastReplica.index == index { return lastReplica.id }
            let text = try resolve(index)
            guard ReplicaID.isValid(text) else { throw StoreCodec.malformed("bad replica id") }
            let replica = ReplicaID(unchecked: text)
            lastReplica = (index, replica)
            return replica
        }

        /// Reads a value: in format 3, a well-known string may stand for itself by its index.
        mutating func value() throws(CRDTError) -> Value {
            guard isFormat3, try reader.peekByte() == StoreCodec.wellKnownValueTag else {
                return try reader.readValue()
            }
            _ = try reader.readByte()
            let index = try reader.readVarint()
            guard index < UInt64(StoreCodec.wellKnown.count) else {
                throw StoreCodec.malformed("well-known value index out of range")
            }
            return .string(StoreCodec.wellKnown[Int(index)])
        }

        /// Reads past a value, checking it.
        mutating func skipValue() throws(CRDTError) {
            guard isFormat3, try reader.peekByte() == StoreCodec.wellKnownValueTag else {
                return try reader.skipValue()
            }
            _ = try value()
        }

        mutating func changeID(delta: Bool) throws(CRDTError) -> ChangeID {
            let replica = try replica()
            var counter = try reader.readVarint()
            if delta {
                counter = Zigzag.decode(counter, from: deltas.counter)
                deltas.counter = counter
            }
            guard counter > 0 else { throw StoreCodec.malformed("change counter 0") }
            return ChangeID(replica: replica, counter: counter)
        }

        mutating func timestamp() throws(CRDTError) -> Timestamp {
            deltas.millis = Zigzag.decode(try reader.readVarint(), from: deltas.millis)
            deltas.clockCounter = Zigzag.decode(try reader.readVarint(), from: deltas.clockCounter)
            guard deltas.clockCounter <= UInt64(UInt32.max) else { throw StoreCodec.malformed("bad clock counter") }
            return Timestamp(millis: deltas.millis, counter: UInt32(deltas.clockCounter))
        }

        mutating func readState() throws(CRDTError) -> RecordState {
            try readTable()
            let fieldCount = try count()
            var state = RecordState()
            state.reserveFields(min(fieldCount, 64))
            for _ in 0..<fieldCount {
                let name = try string()
                let liveCount = try count()
                var live: [Write] = []
                live.reserveCapacity(min(liveCount, 64))
                for _ in 0..<liveCount {
                    let id = try changeID(delta: true)
                    let value = try value()
                    let clock = try timestamp()
                    let author = try string()
                    let site = try site()
                    live.append(Write(id: id, value: value, clock: clock, author: author, site: site))
                }
                let supersededCount = try count()
                var superseded: [ChangeID] = []
                superseded.reserveCapacity(min(supersededCount, 64))
                for _ in 0..<supersededCount { superseded.append(try changeID(delta: false)) }
                guard let field = FieldState(live: live, superseded: superseded) else {
                    throw StoreCodec.malformed("unsorted field state")
                }
                guard state.insertDecoded(name, field) else { throw StoreCodec.malformed("field written twice") }
            }
            return state
        }

        mutating func readChanges(of record: RecordRef, fields: Set<String>? = nil) throws(CRDTError) -> [Change] {
            try readTable()
            let changeCount = try count()
            var changes: [Change] = []
            changes.reserveCapacity(min(changeCount, 4096))
            for _ in 0..<changeCount {
                let id = try changeID(delta: true)
                let field = try string()
                let operation: Operation
                switch try reader.readByte() {
                case 0: operation = .assign
                case 1: operation = .add
                case 2: operation = .remove
                case 3: operation = .append
                default: throw StoreCodec.malformed("unknown operation")
                }
                if let fields, !fields.contains(field) {
                    // Read past, every index still checked: the clock's deltas run through every change.
                    try skipValue()
                    for _ in 0..<(try count()) { _ = try changeID(delta: false) }
                    _ = try timestamp()
                    _ = try string()
                    _ = try site()
                    continue
                }
                let value = try value()
                let replacesCount = try count()
                var replaces: [ChangeID] = []
                replaces.reserveCapacity(min(replacesCount, 4096))
                for _ in 0..<replacesCount { replaces.append(try changeID(delta: false)) }
                let clock = try timestamp()
                let author = try string()
                let site = try site()
                changes.append(
                    Change(
                        id: id,
                        record: record,
                        field: field,
                        operation: operation,
                        value: value,
                        replaces: replaces,
                        clock: clock,
                        author: author,
                        site: site
                    )
                )
            }
            return changes
        }
    }
}
