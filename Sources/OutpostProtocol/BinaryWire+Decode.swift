import OutpostCRDT

/// Reads one binary message strictly. Every count is checked against the bytes left (each element takes at
/// least its minimum size) before anything is allocated for it, every index against its table, every string is
/// UTF-8; ids, clocks and states go through the same validating initializers as the JSON decoder.
struct BinaryMessageReader {
    private let bytes: [UInt8]
    private var offset = 0
    /// Where reading stops: the message's end, or a column's (``column()``).
    private var end: Int
    /// The message's layout version (``BinaryWire/layouts``).
    private(set) var layout: UInt8 = 1
    private var strings: [String] = []
    /// The number of strings in the table; when ``collecting``, where each lies, unread (``text(_:)``).
    private var stringCount = 0
    private var stringRanges: [Range<Int>] = []
    /// Whether a string table entry is a valid replica id (checked once per entry, when first used as one).
    private var replicaValidity: [Bool?] = []
    private var records: [RecordRef] = []
    /// Layout 3: the full ids of the records the message abbreviates, in table order, as the caller found them
    /// (``BinaryWire/abbreviations(in:kind:)``); `nil` where it found none.
    private var resolved: [String?] = []
    /// Whether only the abbreviations are wanted (``BinaryWire/abbreviations(in:kind:)``): the string table is
    /// passed over (its strings are made and checked when the message is read), the records the abbreviations
    /// name are left unresolved and the digest unchecked; a message before layout 3 is not read past its header.
    private var collecting = false
    /// Layout 3: the abbreviations of the record table, in table order.
    private(set) var abbreviations: [RecordAbbreviation] = []
    private var lastCounter: [Int: UInt64] = [:]
    private var lastMillis: UInt64 = 0

    /// The fewest bytes a change takes: record, field, replica, counter, operation and value tag, replaces
    /// count, clock millis, clock counter, author, site.
    static let minimumChangeBytes = 10
    /// The fewest bytes a live write takes: replica, counter, value tag, millis, counter, author, site.
    static let minimumWriteBytes = 7

    /// Reads the header and the tables of a message of `kind`.
    init(
        _ bytes: [UInt8],
        kind: BinaryWire.Kind,
        resolved: [String?] = [],
        collecting: Bool = false
    ) throws(BinaryWire.Failure) {
        self.bytes = bytes
        self.resolved = resolved
        self.collecting = collecting
        end = bytes.count
        guard bytes.count >= 4, Array(bytes[0..<4]) == BinaryWire.magic else {
            throw failure("not a binary Outpost message (it does not start with OPB1)", at: 0)
        }
        offset = 4
        let version = try byte()
        guard BinaryWire.layouts.contains(version) else {
            throw failure(
                "binary layout version \(version) is not one of \(BinaryWire.layouts.lowerBound) to "
                    + "\(BinaryWire.layouts.upperBound); update the older side"
            )
        }
        layout = version
        let kindByte = try byte()
        guard kindByte == kind.rawValue else {
            let found = BinaryWire.Kind(rawValue: kindByte).map { "a \($0.name)" } ?? "kind \(kindByte)"
            throw failure("the message is \(found), not a \(kind.name)", at: offset - 1)
        }
        stringCount = try count(minimumBytes: 1, "string table")
        if collecting {
            // Asked for every message a receiver reads, before it reads it: only the record table's heads matter.
            guard layout >= 3 else { return }
            stringRanges.reserveCapacity(stringCount)
            for _ in 0..<stringCount {
                let length = try count(minimumBytes: 1, "string length")
                stringRanges.append(offset..<offset + length)
                offset += length
            }
            try readRecordTable()
            return
        }
        strings.reserveCapacity(min(stringCount, 4_096))
        // Each count is at most the bytes left (checked above), so room for it is bounded by the message's size.
        var seen: Set<String> = []
        seen.reserveCapacity(stringCount)
        for _ in 0..<stringCount {
            let start = offset
            let text = try inlineString()
            guard seen.insert(text).inserted else { throw failure("a string repeated in the string table", at: start) }
            strings.append(text)
        }
        replicaValidity = Array(repeating: nil, count: strings.count)
        if layout != 1 {
            try readRecordTable()
            return
        }
        let recordCount = try count(minimumBytes: 2, "record table")
        records.reserveCapacity(min(recordCount, 4_096))
        // The string table holds each string once, so a record is told by its pair of string indexes: two
        // integers hashed, not two strings.
        var seenRecords: Set<Int> = []
        seenRecords.reserveCapacity(recordCount)
        for _ in 0..<recordCount {
            let start = offset
            let type = try index(strings.count, "string")
            let id = try index(strings.count, "string")
            guard seenRecords.insert(type &* strings.count &+ id).inserted else {
                throw failure("a record repeated in the record table", at: start)
            }
            records.append(RecordRef(type: strings[type], id: strings[id]))
        }
    }

    /// Layouts 2 and 3's record table: each record's type and how its id is written, then the times of the
    /// sortable ids, then their random bits, and in layout 3 the digest of the abbreviated records' full ids.
    private mutating func readRecordTable() throws(BinaryWire.Failure) {
        let recordCount = try count(minimumBytes: 2, "record table")
        records.reserveCapacity(min(recordCount, 4_096))
        var heads: [(start: Int, type: Int, id: Int, sortable: Bool, abbreviated: Bool)] = []
        heads.reserveCapacity(recordCount)
        var (whole, abbreviated) = (0, 0)
        for _ in 0..<recordCount {
            let start = offset
            let type = try index(stringCount, "string")
            let formStart = offset
            let form = try varint()
            if form == 0 {
                heads.append((start, type, try index(stringCount, "string"), false, false))
                continue
            }
            // Layout 2: prefix + 1. Layout 3: 2 × prefix + 1 for a whole sortable id, + 2 for an abbreviation.
            let isAbbreviated = layout >= 3 && form % 2 == 0
            let prefix = layout == 2 ? form - 1 : (form - 1) / 2
            guard prefix < UInt64(stringCount) else {
                throw failure("id prefix index \(prefix) is outside its table of \(stringCount)", at: formStart)
            }
            heads.append((start, type, Int(prefix), true, isAbbreviated))
            if isAbbreviated { abbreviated += 1 } else { whole += 1 }
        }
        if collecting && abbreviated == 0 { return }
        let sortable = whole + abbreviated
        // Each sortable id takes at least a byte of time and ten of random bits (an abbreviation four).
        guard sortable <= (end - offset) / 5, whole <= (end - offset) / 11 else {
            throw failure(
                "the record table's \(sortable) sortable ids are more than the \(end - offset) bytes left hold"
            )
        }
        var millis: [UInt64] = []
        millis.reserveCapacity(sortable)
        var previous: UInt64 = 0
        for _ in 0..<sortable {
            let start = offset
            previous = Zigzag.decode(try varint(), from: previous)
            guard previous < 1 << 48 else { throw failure("a sortable id's time above 2^48-1", at: start) }
            millis.append(previous)
        }
        guard whole * 10 + abbreviated * 4 + (abbreviated > 0 ? 8 : 0) <= end - offset else {
            throw failure("the record table is cut short in the random bits of its sortable ids")
        }
        var seen: Set<RecordRef> = []
        seen.reserveCapacity(recordCount)
        var abbreviatedRecords: [RecordRef] = []
        var next = 0
        for head in heads {
            if collecting && !head.abbreviated {
                // Only the abbreviations are wanted: a whole sortable id's bits are passed over.
                if head.sortable { (offset, next) = (offset + 10, next + 1) }
                continue
            }
            var id = text(head.id)
            if head.abbreviated {
                let randomHead = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
                offset += 4
                let abbreviation = RecordAbbreviation(
                    type: text(head.type),
                    prefix: id,
                    millis: millis[next],
                    randomHead: randomHead
                )
                next += 1
                let resolvedID = abbreviations.count < resolved.count ? resolved[abbreviations.count] : nil
                abbreviations.append(abbreviation)
                if collecting { continue }
                guard let resolvedID, abbreviation.matches(resolvedID) else {
                    throw unresolved(
                        "record \(records.count) of the record table (a \(abbreviation.type)) is named by "
                            + "abbreviation, and this side holds no one record with it",
                        at: head.start
                    )
                }
                id = resolvedID
                abbreviatedRecords.append(RecordRef(type: abbreviation.type, id: id))
            } else if head.sortable {
                let high = bytes[offset..<offset + 5].reduce(0) { $0 << 8 | UInt64($1) }
                let low = bytes[offset + 5..<offset + 10].reduce(0) { $0 << 8 | UInt64($1) }
                offset += 10
                id += SortableID.text(SortableID.Bits(millis: millis[next], high: high, low: low)!)
                next += 1
            }
            let record = RecordRef(type: text(head.type), id: id)
            guard seen.insert(record).inserted else {
                throw failure("a record repeated in the record table", at: head.start)
            }
            records.append(record)
        }
        guard abbreviated > 0 else { return }
        let digestStart = offset
        let digest = Array(bytes[offset..<offset + 8])
        offset += 8
        guard collecting || digest == RecordAbbreviation.digest(of: abbreviatedRecords) else {
            throw unresolved(
                "the records this side holds under the message's abbreviations are not the ones the sender meant "
                    + "(their digest differs)",
                at: digestStart
            )
        }
    }

    /// String `index` of the table (checked against ``stringCount``), made from its bytes when ``collecting``.
    private func text(_ index: Int) -> String {
        collecting ? String(decoding: bytes[stringRanges[index]], as: UTF8.self) : strings[index]
    }

    /// A failure to name a record by its abbreviation: the message is sound, but must be read with full ids.
    private func unresolved(_ reason: String, at position: Int) -> BinaryWire.Failure {
        var failure = failure(reason, at: position)
        failure.isUnresolved = true
        return failure
    }

    /// Layout 2: the next column of the changes (a byte length and its bytes), as a reader of its own whose
    /// differences start afresh; this reader goes on after it.
    mutating func column() throws(BinaryWire.Failure) -> BinaryMessageReader {
        let length = try count(minimumBytes: 1, "column length")
        var column = self
        column.end = offset + length
        column.lastCounter = [:]
        column.lastMillis = 0
        offset += length
        return column
    }

    func failure(_ reason: String, at position: Int? = nil) -> BinaryWire.Failure {
        BinaryWire.Failure(offset: position ?? offset, reason: reason)
    }

    /// Refuses bytes after the message (or after a column's last entry).
    func finish() throws(BinaryWire.Failure) {
        guard offset == end else {
            let what = end == bytes.count ? "the message" : "a column"
            throw failure("\(end - offset) bytes after the end of \(what)")
        }
    }

    mutating func byte() throws(BinaryWire.Failure) -> UInt8 {
        guard offset < end else { throw failure("the message is cut short") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint() throws(BinaryWire.Failure) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw failure("the message is cut short in a number", at: start) }
            let byte = bytes[offset]
            offset += 1
            // The tenth byte may carry only the top bit of a 64-bit number.
            guard shift < 63 || (shift == 63 && byte <= 1) else {
                throw failure("a number longer than 64 bits", at: start)
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
    }

    /// A count of elements that take at least `minimumBytes` each, checked against the bytes left.
    mutating func count(minimumBytes: Int, _ what: String) throws(BinaryWire.Failure) -> Int {
        let start = offset
        let value = try varint()
        let left = UInt64(end - offset)
        guard value <= left / UInt64(minimumBytes) else {
            throw failure("the \(what) count \(value) is more than the \(left) bytes left can hold", at: start)
        }
        return Int(value)
    }

    mutating func inlineString() throws(BinaryWire.Failure) -> String {
        let start = offset
        let length = try count(minimumBytes: 1, "string length")
        guard let text = String(validating: bytes[offset..<offset + length], as: UTF8.self) else {
            throw failure("a string that is not UTF-8", at: start)
        }
        offset += length
        return text
    }

    mutating func index(_ table: Int, _ what: String) throws(BinaryWire.Failure) -> Int {
        let start = offset
        let value = try varint()
        guard value < UInt64(table) else {
            throw failure("\(what) index \(value) is outside its table of \(table)", at: start)
        }
        return Int(value)
    }

    mutating func string() throws(BinaryWire.Failure) -> String {
        strings[try index(strings.count, "string")]
    }

    mutating func optionalString() throws(BinaryWire.Failure) -> String? {
        let start = offset
        let value = try varint()
        if value == 0 { return nil }
        guard value <= UInt64(strings.count) else {
            throw failure("string index \(value - 1) is outside its table of \(strings.count)", at: start)
        }
        return strings[Int(value - 1)]
    }

    mutating func record() throws(BinaryWire.Failure) -> RecordRef {
        records[try index(records.count, "record")]
    }

    mutating func changeID() throws(BinaryWire.Failure) -> ChangeID {
        let start = offset
        let replica = try index(strings.count, "replica")
        if replicaValidity[replica] == nil { replicaValidity[replica] = ReplicaID.isValid(strings[replica]) }
        guard replicaValidity[replica] == true else { throw failure("not a valid replica id", at: start) }
        let counter = Zigzag.decode(try varint(), from: lastCounter[replica, default: 0])
        guard counter > 0 else { throw failure("a change counter of 0 (counters start at 1)", at: start) }
        lastCounter[replica] = counter
        return ChangeID(replica: ReplicaID(unchecked: strings[replica]), counter: counter)
    }

    mutating func changeIDs() throws(BinaryWire.Failure) -> [ChangeID] {
        let total = try count(minimumBytes: 2, "change id")
        var ids: [ChangeID] = []
        ids.reserveCapacity(min(total, 1_024))
        for _ in 0..<total { ids.append(try changeID()) }
        return ids
    }

    mutating func clock() throws(BinaryWire.Failure) -> Timestamp {
        let millis = Zigzag.decode(try varint(), from: lastMillis)
        let start = offset
        let counter = try varint()
        guard counter <= UInt64(UInt32.max) else { throw failure("a clock counter above 2^32-1", at: start) }
        lastMillis = millis
        return Timestamp(millis: millis, counter: UInt32(counter))
    }

    /// A value whose tag is the low four bits of `tag`.
    mutating func value(tag: UInt8, at start: Int) throws(BinaryWire.Failure) -> Value {
        switch tag & 0x0F {
        case BinaryWire.valueNull: return .null
        case BinaryWire.valueFalse: return .bool(false)
        case BinaryWire.valueTrue: return .bool(true)
        case BinaryWire.valueInt:
            let zigzag = try varint()
            return .int(Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1))
        case BinaryWire.valueInlineString: return .string(try inlineString())
        case BinaryWire.valueTableString: return .string(try string())
        default: throw failure("unknown value tag \(tag & 0x0F)", at: start)
        }
    }

    mutating func changes() throws(BinaryWire.Failure) -> [Change] {
        let total = try count(minimumBytes: Self.minimumChangeBytes, "change")
        if layout != 1 { return try columnChanges(total) }
        var changes: [Change] = []
        changes.reserveCapacity(min(total, 1_024))
        for _ in 0..<total {
            let record = try self.record()
            let field = try string()
            let id = try changeID()
            let start = offset
            let tag = try byte()
            guard let operation = BinaryWire.operation(code: tag >> 4) else {
                throw failure("unknown operation \(tag >> 4)", at: start)
            }
            let value = try self.value(tag: tag, at: start)
            let replaces = try changeIDs()
            let clock = try self.clock()
            let author = try string()
            let site = try optionalString()
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

    /// Layout 2's changes: the columns of ``BinaryMessageWriter``'s `writeColumns(of:)`, each read to its end.
    private mutating func columnChanges(_ total: Int) throws(BinaryWire.Failure) -> [Change] {
        var records = try column()
        var fields = try column()
        var ids = try column()
        var values = try column()
        var replaces = try column()
        var clocks = try column()
        var provenance = try column()
        var changes: [Change] = []
        changes.reserveCapacity(min(total, 1_024))
        var previous: UInt64 = 0
        for _ in 0..<total {
            let recordStart = records.offset
            previous = Zigzag.decode(try records.varint(), from: previous)
            guard previous < UInt64(self.records.count) else {
                throw failure(
                    "record index \(Int64(bitPattern: previous)) is outside its table of \(self.records.count)",
                    at: recordStart
                )
            }
            let field = try fields.string()
            let id = try ids.changeID()
            let start = values.offset
            let tag = try values.byte()
            guard let operation = BinaryWire.operation(code: tag >> 4) else {
                throw failure("unknown operation \(tag >> 4)", at: start)
            }
            let value = try values.value(tag: tag, at: start)
            let replaced = try replaces.changeIDs()
            let clock = try clocks.clock()
            let author = try provenance.string()
            let site = try provenance.optionalString()
            changes.append(
                Change(
                    id: id,
                    record: self.records[Int(previous)],
                    field: field,
                    operation: operation,
                    value: value,
                    replaces: replaced,
                    clock: clock,
                    author: author,
                    site: site
                )
            )
        }
        for column in [records, fields, ids, values, replaces, clocks, provenance] { try column.finish() }
        return changes
    }

    mutating func snapshotRecords() throws(BinaryWire.Failure) -> [SnapshotRecord] {
        let total = try count(minimumBytes: 2, "record")
        var result: [SnapshotRecord] = []
        result.reserveCapacity(min(total, 1_024))
        for _ in 0..<total {
            let record = try self.record()
            let fieldCount = try count(minimumBytes: 3, "field")
            var state = RecordState()
            state.reserveFields(min(fieldCount, 256))
            for _ in 0..<fieldCount {
                let nameStart = offset
                let name = try string()
                let liveCount = try count(minimumBytes: Self.minimumWriteBytes, "live write")
                var live: [Write] = []
                live.reserveCapacity(min(liveCount, 256))
                for _ in 0..<liveCount {
                    let id = try changeID()
                    let start = offset
                    let tag = try byte()
                    guard tag < 0x10 else { throw failure("unknown value tag \(tag)", at: start) }
                    let value = try self.value(tag: tag, at: start)
                    let clock = try self.clock()
                    let author = try string()
                    let site = try optionalString()
                    live.append(Write(id: id, value: value, clock: clock, author: author, site: site))
                }
                let superseded = try changeIDs()
                guard let field = FieldState(live: live, superseded: superseded) else {
                    throw failure(
                        "a field state whose live and superseded ids are not strictly sorted and disjoint",
                        at: nameStart
                    )
                }
                guard state.insertDecoded(name, field) else {
                    throw failure("a field repeated in one record", at: nameStart)
                }
            }
            result.append(SnapshotRecord(record: record, state: state))
        }
        return result
    }

    mutating func stringList(_ what: String) throws(BinaryWire.Failure) -> [String] {
        let total = try count(minimumBytes: 1, what)
        var result: [String] = []
        result.reserveCapacity(min(total, 1_024))
        for _ in 0..<total { result.append(try string()) }
        return result
    }
}

extension PushRequest {
    public init(binary bytes: [UInt8], resolved: [String?]) throws(BinaryWire.Failure) {
        var reader = try BinaryMessageReader(bytes, kind: Self.binaryKind, resolved: resolved)
        let replica = try reader.changeIDReplica()
        let start = reader.position
        let changes = try reader.changes()
        try reader.finish()
        // As the JSON decoder: the push's own counters strictly increase.
        var previous: UInt64?
        for (index, change) in changes.enumerated() where change.id.replica == replica {
            if let previous, change.id.counter <= previous {
                throw reader.failure(
                    "change \(index): counter \(change.id.counter) follows counter \(previous); a push carries its "
                        + "replica's changes once each, in strictly increasing counter order",
                    at: start
                )
            }
            previous = change.id.counter
        }
        self.init(replica: replica, changes: changes)
    }
}

extension BinaryMessageReader {
    var position: Int { offset }

    /// A replica id given by its string index.
    mutating func changeIDReplica() throws(BinaryWire.Failure) -> ReplicaID {
        let start = position
        let text = try string()
        guard let replica = ReplicaID(text) else { throw failure("not a valid replica id", at: start) }
        return replica
    }
}

extension PullResponse {
    public init(binary bytes: [UInt8], resolved: [String?]) throws(BinaryWire.Failure) {
        var reader = try BinaryMessageReader(bytes, kind: Self.binaryKind, resolved: resolved)
        let changes = try reader.changes()
        let checkpoint = try reader.inlineString()
        let flagStart = reader.position
        let hasMore: Bool
        switch try reader.byte() {
        case 0: hasMore = false
        case 1: hasMore = true
        default: throw reader.failure("hasMore is neither 0 nor 1", at: flagStart)
        }
        let records = try reader.snapshotRecords()
        let removed = try reader.stringList("removed")
        let leftScope = reader.layout >= 5 ? try reader.stringList("leftScope") : []
        try reader.finish()
        self.init(
            changes: changes,
            checkpoint: checkpoint,
            hasMore: hasMore,
            records: records,
            removed: removed,
            leftScope: leftScope
        )
    }
}

extension SnapshotPage {
    public init(binary bytes: [UInt8], resolved: [String?]) throws(BinaryWire.Failure) {
        var reader = try BinaryMessageReader(bytes, kind: Self.binaryKind, resolved: resolved)
        let records = try reader.snapshotRecords()
        let checkpoint = try reader.inlineString()
        let flagStart = reader.position
        let next: String?
        switch try reader.byte() {
        case 0: next = nil
        case 1: next = try reader.inlineString()
        default: throw reader.failure("the next-cursor flag is neither 0 nor 1", at: flagStart)
        }
        let removed = reader.layout >= 4 ? try reader.stringList("removed") : []
        let leftScope = reader.layout >= 5 ? try reader.stringList("leftScope") : []
        try reader.finish()
        self.init(records: records, checkpoint: checkpoint, next: next, removed: removed, leftScope: leftScope)
    }
}

extension BinaryWire {
    /// The abbreviations of the records a message names by them (layout 3), in table order: what a receiver
    /// looks up before reading the message with ``BinaryWireMessage/init(binary:resolved:)``. Empty for a message
    /// that names every record in full.
    ///
    /// - Throws: ``Failure`` when the header or the tables cannot be read.
    public static func abbreviations(in bytes: [UInt8], kind: Kind) throws(Failure) -> [RecordAbbreviation] {
        try BinaryMessageReader(bytes, kind: kind, collecting: true).abbreviations
    }
}
