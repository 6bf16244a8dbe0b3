import OutpostCRDT

/// The compact binary encoding of the heavy messages (push requests, pull pages, snapshot pages), negotiated
/// by content type (``contentType``); `protocol/README.md`, "Binary encoding", is its exact layout.
///
/// A message is a header (the magic `OPB1`, a version byte and a kind byte), a string table (every record
/// type, record id, field name, replica id, author, site and repeated string value, each once), a record table
/// (pairs of string indexes), then the message's body, which refers to the tables by index. Clocks are coded
/// as the difference from the previous clock of the message, counters as the difference from the previous
/// counter of the same replica. Equal messages encode to equal bytes.
public enum BinaryWire {
    /// The media type of binary bodies: a push's `Content-Type`, a pull's or snapshot's `Accept`.
    public static let contentType = "application/vnd.outpost.v1+binary"
    /// The first four bytes of every binary message.
    public static let magic: [UInt8] = Array("OPB1".utf8)
    /// The layout versions after the magic this side reads and writes; a reader refuses any other.
    /// Layout 2 writes a message's changes column by column and sortable record ids as bits
    /// (protocol/README.md, "Layout 2"); layout 3 names records the receiver holds by abbreviation ("Layout 3");
    /// layout 4 adds a snapshot page's `removed` ("Layout 4"); layout 5 adds a pull or snapshot page's `leftScope`
    /// ("Layout 5").
    public static let layouts: ClosedRange<UInt8> = 1...5
    /// The newest layout: what a sender writes when the other side reads it.
    public static let latestLayout: UInt8 = layouts.upperBound

    /// What a binary message holds: the byte after the version.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// A ``PushRequest``.
        case pushRequest = 1
        /// A ``PullResponse``.
        case pullResponse = 2
        /// A ``SnapshotPage``.
        case snapshotPage = 3

        var name: String {
            switch self {
            case .pushRequest: "push request"
            case .pullResponse: "pull page"
            case .snapshotPage: "snapshot page"
            }
        }
    }

    /// Why a binary message could not be read: where and what.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The byte offset at which reading failed.
        public var offset: Int
        /// What was wrong, without any of the message's contents.
        public var reason: String
        /// Whether the message is sound but names a record by an abbreviation this side could not resolve, or
        /// resolved to records other than those the sender meant (``RecordAbbreviation``): it is to be read again
        /// with full ids (an older layout).
        public var isUnresolved = false

        /// Creates a failure.
        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }

        public var description: String { "\(reason) at byte \(offset)" }
    }

    /// Whether a `Content-Type` (or one `Accept` entry) names ``contentType``, in any case, with no parameter.
    public static func isBinaryContentType(_ value: some StringProtocol) -> Bool {
        value.split(separator: ";", omittingEmptySubsequences: false).count == 1
            && value.trimmingWhitespace().lowercased() == contentType
    }

    /// Whether an `Accept` header asks for ``contentType``: one of its comma-separated entries names it (without
    /// a `q=0`).
    public static func accepts(_ accept: String) -> Bool {
        layout(accepting: accept) != nil
    }

    /// The layout to answer an `Accept` header in: `nil` when none of its comma-separated entries names
    /// ``contentType`` (without a `q=0`); otherwise the newest layout named by an entry's `layout` parameter (the
    /// newest the client reads; it reads every older one), at most ``latestLayout``, or 1 without one.
    public static func layout(accepting accept: String) -> UInt8? {
        var best: UInt8?
        for entry in accept.split(separator: ",") {
            let parts = entry.split(separator: ";", omittingEmptySubsequences: false)
            guard let type = parts.first, type.trimmingWhitespace().lowercased() == contentType else { continue }
            var layout: UInt8 = 1
            var refused = false
            for parameter in parts.dropFirst() {
                let text = parameter.trimmingWhitespace().lowercased()
                if text == "q=0" || text == "q=0.0" || text == "q=0.00" || text == "q=0.000" { refused = true }
                if text.hasPrefix("layout="), let number = Int(text.dropFirst(7)), number >= 1 {
                    layout = UInt8(min(number, Int(latestLayout)))
                }
            }
            if !refused { best = max(best ?? layout, layout) }
        }
        return best
    }

    /// An `Accept` value asking for ``contentType`` in `layout` or older.
    public static func accept(layout: UInt8) -> String {
        layout == 1 ? contentType : "\(contentType); layout=\(layout)"
    }

    // MARK: Value and operation codes

    static let valueNull: UInt8 = 0
    static let valueFalse: UInt8 = 1
    static let valueTrue: UInt8 = 2
    static let valueInt: UInt8 = 3
    static let valueInlineString: UInt8 = 4
    static let valueTableString: UInt8 = 5

    /// A record id that ends in a sortable id (``SortableID``): what comes before it, and its bits.
    static func sortableForm(of id: String) -> (prefix: Substring, bits: SortableID.Bits)? {
        let utf8 = id.utf8
        guard utf8.count >= 26 else { return nil }
        let start = utf8.index(utf8.endIndex, offsetBy: -26)
        let tail = utf8[start...]
        let bits =
            tail.withContiguousStorageIfAvailable { SortableID.bits(of: $0) }
            ?? Array(tail).withUnsafeBufferPointer { SortableID.bits(of: $0) }
        guard let bits else { return nil }
        // The tail is 26 ASCII bytes, so the prefix ends on a character's boundary.
        return (Substring(utf8[..<start]), bits)
    }

    static func code(of operation: OutpostCRDT.Operation) -> UInt8 {
        switch operation {
        case .assign: 0
        case .add: 1
        case .remove: 2
        case .append: 3
        }
    }

    static func operation(code: UInt8) -> OutpostCRDT.Operation? {
        switch code {
        case 0: .assign
        case 1: .add
        case 2: .remove
        case 3: .append
        default: nil
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        let text = Substring(self)
        let start = text.firstIndex { $0 != " " && $0 != "\t" } ?? text.endIndex
        let end = text.lastIndex { $0 != " " && $0 != "\t" }.map { text.index(after: $0) } ?? start
        return text[start..<Swift.max(start, end)]
    }
}

// MARK: - Encoding

/// Writes one binary message: the body is written first, interning strings and records into the tables, and
/// the header and tables are put in front of it at the end.
struct BinaryMessageWriter {
    /// The layout version written (``BinaryWire/layouts``).
    let layout: UInt8
    private var body = BinaryWriter(capacity: 4_096)
    private var strings: [String] = []
    private var stringIndex: [String: Int] = [:]
    /// The record table: each record's type (a string index) and id, in first-use order. Layout 1 puts every
    /// id in the string table when the record is first used; layout 2 only ids that are not sortable ids, at the
    /// end (``finish(kind:)``).
    private var records: [(type: Int, id: String)] = []
    private var recordIndex: [RecordRef: Int] = [:]
    /// The record last looked up and its index: a push's changes come record after record.
    private var lastRecord: (record: RecordRef, index: Int)?
    /// The field names of the last record state written and their string indexes, by position: records of one
    /// type have mostly the same fields, in name order, so a name is found by one comparison, without hashing.
    private var lastFields: [(text: String, index: Int)] = []
    /// The last counter written per replica, by the replica's string index.
    private var lastCounter: [Int: UInt64] = [:]
    private var lastMillis: UInt64 = 0
    /// The last string written in each role (``Role``) and its index: a message's changes and entries come by one
    /// author from one site and replica, so most are found without hashing.
    private var recent: [(text: String, index: Int)?] = Array(repeating: nil, count: Role.allCases.count)
    /// The replica of the last change id written, its string index and last counter.
    private var lastReplica: (text: String, index: Int, counter: UInt64)?
    /// Every string value of the message, by its slot: the value's text and how it is written, ``inline``,
    /// ``tabled`` (not written yet), or its index in the string table once written.
    private var valueSlots: [String: Int] = [:]
    private var slotTexts: [String] = []
    private var slotForms: [Int] = []
    /// The slot of each string value scanned, in the order the message writes them: a value written is found by
    /// its position and one comparison, not hashed again (a value out of that order is looked up).
    private var occurrences: [Int] = []
    private var nextOccurrence = 0
    /// A value's form before it is written: inline (the message holds it once and it is no identity).
    private static let inline = -2
    /// A value's form before it is written: in the table (the message holds it twice, or it is an identity).
    private static let tabled = -1

    /// Creates a writer for `changes` and `records`, written in that order: a string value goes in the table
    /// when the message holds it twice or it is an identity of the message (an author, a site, and in layout 1
    /// a record id), inline otherwise.
    init(layout: UInt8, changes: [Change], records: [SnapshotRecord]) {
        precondition(BinaryWire.layouts.contains(layout), "no binary layout \(layout)")
        self.layout = layout
        var identities = Identities(layout: layout)
        for change in changes {
            scan(change.value)
            identities.record(change.record.id)
            identities.provenance(change.author, change.site)
        }
        for record in records {
            identities.record(record.record.id)
            for field in record.state.sortedFields {
                let live = field.state.live
                for index in live.indices {
                    scan(live[index].value)
                    identities.provenance(live[index].author, live[index].site)
                }
            }
        }
        table(identities.all)
    }

    /// Creates a writer for a snapshot page of stored states (``write(stored:)``), scanning them as
    /// ``init(layout:changes:records:)`` scans the same states decoded, without making them.
    init(layout: UInt8, stored: [StoredRecordState]) throws(CRDTError) {
        precondition(BinaryWire.layouts.contains(layout), "no binary layout \(layout)")
        self.layout = layout
        var identities = Identities(layout: layout)
        for item in stored {
            identities.record(item.record.id)
            var reader = BinaryReader(item.state)
            for _ in 0..<(try reader.readCount()) {
                try reader.skipString()
                // Ids and clocks are passed over here; the write reads and checks them.
                for _ in 0..<(try reader.readCount()) {
                    try reader.skipString()
                    _ = try reader.readVarint()
                    if try reader.peekByte() == BinaryReader.stringTag {
                        scan(try reader.readValue())
                    } else {
                        try reader.skipValue()
                    }
                    _ = try reader.readVarint()
                    _ = try reader.readVarint()
                    identities.provenance(try reader.readAuthor(), try reader.readSite())
                }
                for _ in 0..<(try reader.readCount()) {
                    try reader.skipString()
                    _ = try reader.readVarint()
                }
            }
        }
        table(identities.all)
    }

    /// The identity strings of a message as its scan meets them: its authors and sites, and in layout 1 its
    /// record ids. Layout 1 has every record id in its string table, where a value equal to one costs nothing
    /// more; layout 2 writes sortable ids as bits, so record ids are no reason to table a value.
    private struct Identities {
        let layout: UInt8
        var all: Set<String> = []
        // Authors and sites repeat from one change or entry to the next: each is inserted when it differs from
        // the last one seen.
        var lastAuthor: String?
        var lastSite: String?

        mutating func record(_ id: String) {
            if layout == 1 { all.insert(id) }
        }

        mutating func provenance(_ author: String, _ site: String?) {
            if author != lastAuthor {
                all.insert(author)
                lastAuthor = author
            }
            if let site, site != lastSite {
                all.insert(site)
                lastSite = site
            }
        }
    }

    /// Puts the values equal to an identity of the message in the table.
    private mutating func table(_ identities: Set<String>) {
        for identity in identities {
            if let slot = valueSlots[identity] { slotForms[slot] = Self.tabled }
        }
    }

    /// Counts a value of the message, in write order: a string seen the first time is inline, again tabled.
    private mutating func scan(_ value: Value) {
        guard case .string(let text) = value else { return }
        let new = slotTexts.count
        let slot = Self.update(&valueSlots[text, default: new]) { $0 }
        if slot == new {
            slotTexts.append(text)
            slotForms.append(Self.inline)
        } else {
            slotForms[slot] = Self.tabled
        }
        occurrences.append(slot)
    }

    /// Sets a dictionary slot reached in place (`&dictionary[key, default: new]`: one look-up, the slot made
    /// when missing) to `body` of its value, and returns that.
    @discardableResult
    private static func update(_ slot: inout Int, _ body: (Int) -> Int) -> Int {
        slot = body(slot)
        return slot
    }

    /// What a string is in a message, for the one-entry cache each role keeps (``recent``).
    enum Role: Int, CaseIterable {
        case field, author, site, type
    }

    mutating func string(_ text: String) -> Int {
        let next = strings.count
        // One look-up: the slot is made with the next index when the text is new.
        let index = Self.update(&stringIndex[text, default: next]) { $0 }
        if index == next { strings.append(text) }
        return index
    }

    mutating func write(string text: String) {
        body.write(varint: UInt64(string(text)))
    }

    /// A string the message repeats in one role (a field name, an author, a site): the same index as
    /// ``write(string:)``, without a lookup when it is the role's last one.
    mutating func write(string text: String, as role: Role) {
        body.write(varint: UInt64(string(text, as: role)))
    }

    mutating func write(optionalString text: String?, as role: Role) {
        body.write(varint: text.map { UInt64(string($0, as: role)) + 1 } ?? 0)
    }

    private mutating func string(_ text: String, as role: Role) -> Int {
        if let last = recent[role.rawValue], last.text == text { return last.index }
        let index = string(text)
        recent[role.rawValue] = (text, index)
        return index
    }

    mutating func write(inline text: String) {
        body.write(text)
    }

    mutating func write(count: Int) {
        body.write(varint: UInt64(count))
    }

    mutating func write(byte: UInt8) {
        body.write(byte: byte)
    }

    mutating func write(record: RecordRef) {
        body.write(varint: UInt64(index(of: record)))
    }

    /// A record's index in the record table, added at the end when the message has not used it yet.
    private mutating func index(of record: RecordRef) -> Int {
        if let last = lastRecord, last.record == record { return last.index }
        let index: Int
        if let known = recordIndex[record] {
            index = known
        } else {
            let type = string(record.type)
            if layout == 1 { _ = string(record.id) }
            records.append((type, record.id))
            index = records.count - 1
            recordIndex[record] = index
        }
        lastRecord = (record, index)
        return index
    }

    mutating func write(id: ChangeID) {
        let text = id.replica.rawValue
        let replica: Int
        let previous: UInt64
        if let last = lastReplica, last.text == text {
            (replica, previous) = (last.index, last.counter)
        } else {
            // Another replica's ids: the one left keeps its last counter.
            if let last = lastReplica { lastCounter[last.index] = last.counter }
            replica = string(text)
            previous = lastCounter[replica, default: 0]
        }
        body.write(varint: UInt64(replica))
        body.write(varint: Zigzag.encode(id.counter, from: previous))
        lastReplica = (text, replica, id.counter)
    }

    mutating func write(ids: [ChangeID]) {
        write(count: ids.count)
        for id in ids { write(id: id) }
    }

    mutating func write(clock: Timestamp) {
        body.write(varint: Zigzag.encode(clock.millis, from: lastMillis))
        body.write(varint: UInt64(clock.counter))
        lastMillis = clock.millis
    }

    /// A value's tag, or-ed with `high` (the operation of a change, shifted), then its payload.
    mutating func write(value: Value, high: UInt8 = 0) {
        switch value {
        case .null:
            body.write(byte: high | BinaryWire.valueNull)
        case .bool(let flag):
            body.write(byte: high | (flag ? BinaryWire.valueTrue : BinaryWire.valueFalse))
        case .int(let number):
            body.write(byte: high | BinaryWire.valueInt)
            body.write(varint: UInt64(bitPattern: (number << 1) ^ (number >> 63)))
        case .string(let text):
            // Every string value was scanned (``init(layout:changes:records:)``); one that was not is inline.
            if nextOccurrence < occurrences.count, slotTexts[occurrences[nextOccurrence]] == text {
                write(scanned: occurrences[nextOccurrence], high: high)
                nextOccurrence += 1
            } else if let slot = valueSlots[text] {
                write(scanned: slot, high: high)
            } else {
                body.write(byte: high | BinaryWire.valueInlineString)
                body.write(text)
            }
        }
    }

    /// The string value of `slot`: inline, or its index in the string table (added the first time).
    private mutating func write(scanned slot: Int, high: UInt8) {
        var index = slotForms[slot]
        if index == Self.inline {
            body.write(byte: high | BinaryWire.valueInlineString)
            body.write(slotTexts[slot])
            return
        }
        if index == Self.tabled {
            index = string(slotTexts[slot])
            slotForms[slot] = index
        }
        body.write(byte: high | BinaryWire.valueTableString)
        body.write(varint: UInt64(index))
    }

    mutating func write(changes: [Change]) {
        write(count: changes.count)
        guard layout == 1 else {
            writeColumns(of: changes)
            return
        }
        for change in changes {
            write(record: change.record)
            write(string: change.field, as: .field)
            write(id: change.id)
            write(value: change.value, high: BinaryWire.code(of: change.operation) << 4)
            write(ids: change.replaces)
            write(clock: change.clock)
            write(string: change.author, as: .author)
            write(optionalString: change.site, as: .site)
        }
    }

    /// Layout 2's changes: the parts layout 1 writes of each change, each part of every change in a column of its
    /// own (a byte length and its bytes), so that like sits beside like for gzip; a record as the difference from
    /// the previous change's record index. Each column's differences start afresh, and so do those of what follows.
    private mutating func writeColumns(of changes: [Change]) {
        var previous = 0
        column {
            for change in changes {
                let index = $0.index(of: change.record)
                $0.body.write(varint: Zigzag.encode(UInt64(index), from: UInt64(previous)))
                previous = index
            }
        }
        column { for change in changes { $0.write(string: change.field, as: .field) } }
        column { for change in changes { $0.write(id: change.id) } }
        column {
            for change in changes { $0.write(value: change.value, high: BinaryWire.code(of: change.operation) << 4) }
        }
        column { for change in changes { $0.write(ids: change.replaces) } }
        column { for change in changes { $0.write(clock: change.clock) } }
        column {
            for change in changes {
                $0.write(string: change.author, as: .author)
                $0.write(optionalString: change.site, as: .site)
            }
        }
        resetDifferences()
    }

    /// Writes one column: what `fill` writes, with differences from afresh, after its byte length.
    private mutating func column(_ fill: (inout Self) -> Void) {
        let outer = body
        body = BinaryWriter(capacity: 1_024)
        resetDifferences()
        fill(&self)
        let column = body
        body = outer
        body.write(varint: UInt64(column.bytes.count))
        body.append(column)
    }

    private mutating func resetDifferences() {
        lastCounter = [:]
        lastReplica = nil
        lastMillis = 0
    }

    /// Writes record states. When the message has no record yet and they are sorted by type then id with no
    /// repeat (a snapshot page as a server makes it), each is added to the record table without looking it up.
    mutating func write(records snapshot: [SnapshotRecord]) {
        write(count: snapshot.count)
        let distinct = isFresh(snapshot.count) { snapshot[$0].record }
        for item in snapshot {
            write(record: item.record, distinct: distinct)
            // Fields read in place, in name order: no field or write copied out (a copy retains and releases each
            // of its strings), as in the stored form (``BinaryWriter``).
            let fields = item.state.sortedFields
            write(count: fields.count)
            for position in fields.indices {
                write(fieldName: fields[position].name, at: position)
                let live = fields[position].state.live
                write(count: live.count)
                for index in live.indices {
                    write(id: live[index].id)
                    write(value: live[index].value)
                    write(clock: live[index].clock)
                    write(string: live[index].author, as: .author)
                    write(optionalString: live[index].site, as: .site)
                }
                write(ids: fields[position].state.superseded)
            }
        }
    }

    /// Writes stored record states (``StoredRecordState``) as ``write(records:)`` writes the same states decoded,
    /// to the same bytes, without making them: each part is read from the stored form and written at once, and a
    /// string value is the one the scan kept (``init(layout:stored:)``). A state is checked as decoding checks
    /// it: fields in name order, each once; live and superseded ids strictly sorted, none both.
    mutating func write(stored: [StoredRecordState]) throws(CRDTError) {
        write(count: stored.count)
        let distinct = isFresh(stored.count) { stored[$0].record }
        var liveIDs: [ChangeID] = []
        for item in stored {
            write(record: item.record, distinct: distinct)
            var reader = BinaryReader(item.state)
            let fieldCount = try reader.readCount()
            write(count: fieldCount)
            var lastName: String?
            for position in 0..<fieldCount {
                let name = try reader.readString()
                guard lastName.map({ $0 < name }) ?? true else { throw Self.malformed("fields out of order") }
                lastName = name
                write(fieldName: name, at: position)
                let liveCount = try reader.readCount()
                write(count: liveCount)
                liveIDs.removeAll(keepingCapacity: true)
                for _ in 0..<liveCount {
                    let id = try reader.readChangeID()
                    guard liveIDs.last.map({ $0 < id }) ?? true else { throw Self.malformed("unsorted field state") }
                    liveIDs.append(id)
                    write(id: id)
                    if try reader.peekByte() == BinaryReader.stringTag {
                        try reader.skipValue()
                        guard nextOccurrence < occurrences.count else { throw Self.malformed("a value not scanned") }
                        write(scanned: occurrences[nextOccurrence], high: 0)
                        nextOccurrence += 1
                    } else {
                        write(value: try reader.readValue())
                    }
                    write(clock: try reader.readTimestamp())
                    write(string: try reader.readAuthor(), as: .author)
                    write(optionalString: try reader.readSite(), as: .site)
                }
                let supersededCount = try reader.readCount()
                write(count: supersededCount)
                var previous: ChangeID?
                for _ in 0..<supersededCount {
                    let id = try reader.readChangeID()
                    guard previous.map({ $0 < id }) ?? true, !liveIDs.sortedSlot(of: id, by: { $0 }).found else {
                        throw Self.malformed("unsorted field state")
                    }
                    previous = id
                    write(id: id)
                }
            }
        }
    }

    private static func malformed(_ what: String) -> CRDTError {
        CRDTError(code: .malformedEncoding, message: "a stored record state cannot be read: \(what)")
    }

    /// Whether the records `count` and `record(at:)` name may go into the record table without a look-up: the
    /// message has no record yet and they are sorted by type then id with no repeat. Read in place, by position
    /// (a record copied out would retain and release its strings).
    private func isFresh(_ count: Int, _ record: (Int) -> RecordRef) -> Bool {
        guard records.isEmpty else { return false }
        for index in 1..<max(count, 1) {
            let (before, after) = (record(index - 1), record(index))
            guard before.type < after.type || (before.type == after.type && before.id < after.id) else { return false }
        }
        return true
    }

    /// A record of a record-state list: added to the table directly when the list is `distinct` (``isFresh(_:)``).
    private mutating func write(record: RecordRef, distinct: Bool) {
        guard distinct else { return write(record: record) }
        // As ``index(of:)`` adds a record: its type, then (layout 1) its id, to the string table.
        let type = string(record.type, as: .type)
        if layout == 1 { _ = string(record.id) }
        records.append((type, record.id))
        body.write(varint: UInt64(records.count - 1))
    }

    /// A field's name, found without hashing when the record before had it at the same position.
    private mutating func write(fieldName name: String, at position: Int) {
        if position < lastFields.count, lastFields[position].text == name {
            body.write(varint: UInt64(lastFields[position].index))
            return
        }
        let index = string(name)
        if position < lastFields.count {
            lastFields[position] = (name, index)
        } else {
            lastFields.append((name, index))
        }
        body.write(varint: UInt64(index))
    }

    /// The whole message: header, string table, record table, body. In layout 3, a record `abbreviating` says
    /// the receiver holds is named by its abbreviation (``RecordAbbreviation``) unless another record of the
    /// message has the same type, prefix and time (then both are named in full).
    mutating func finish(kind: BinaryWire.Kind, abbreviating known: (RecordRef) -> Bool = { _ in false }) -> [UInt8] {
        // Layout 2: a sortable id is its prefix (a string) and its bits; any other id is a string.
        var forms: [(prefix: Int, bits: SortableID.Bits, abbreviated: Bool)?] = []
        if layout != 1 {
            forms.reserveCapacity(records.count)
            // Ids of one type share their prefix: the last one's index is reused without hashing.
            var lastPrefix: (text: Substring, index: Int)?
            for record in records {
                if let form = BinaryWire.sortableForm(of: record.id) {
                    let prefix: Int
                    if let last = lastPrefix, last.text == form.prefix {
                        prefix = last.index
                    } else {
                        prefix = string(String(form.prefix))
                        lastPrefix = (form.prefix, prefix)
                    }
                    forms.append((prefix, form.bits, false))
                } else {
                    _ = string(record.id)
                    forms.append(nil)
                }
            }
        }
        var abbreviated: [RecordRef] = []
        if layout >= 3 { abbreviated = abbreviate(&forms, known) }
        var head = BinaryWriter(capacity: body.bytes.count / 2 + 64)
        for byte in BinaryWire.magic { head.write(byte: byte) }
        head.write(byte: layout)
        head.write(byte: kind.rawValue)
        head.write(varint: UInt64(strings.count))
        for text in strings { head.write(text) }
        head.write(varint: UInt64(records.count))
        if layout == 1 {
            for record in records {
                head.write(varint: UInt64(record.type))
                head.write(varint: UInt64(stringIndex[record.id]!))
            }
            return head.bytes + body.bytes
        }
        for (record, form) in zip(records, forms) {
            head.write(varint: UInt64(record.type))
            if let form {
                // Layout 2: prefix + 1. Layout 3: 2 × prefix + 1 for a whole sortable id, + 2 abbreviated.
                let prefix = UInt64(form.prefix)
                head.write(varint: layout == 2 ? prefix + 1 : 2 * prefix + (form.abbreviated ? 2 : 1))
            } else {
                head.write(varint: 0)
                head.write(varint: UInt64(stringIndex[record.id]!))
            }
        }
        var previous: UInt64 = 0
        for case let form? in forms {
            head.write(varint: Zigzag.encode(form.bits.millis, from: previous))
            previous = form.bits.millis
        }
        for case let form? in forms {
            // The 80 random bits, most significant first; an abbreviation's first 32.
            let highShifts =
                form.abbreviated ? stride(from: 32, through: 8, by: -8) : stride(from: 32, through: 0, by: -8)
            for shift in highShifts {
                head.write(byte: UInt8(truncatingIfNeeded: form.bits.high >> shift))
            }
            guard !form.abbreviated else { continue }
            for shift in stride(from: 32, through: 0, by: -8) {
                head.write(byte: UInt8(truncatingIfNeeded: form.bits.low >> shift))
            }
        }
        if !abbreviated.isEmpty {
            for byte in RecordAbbreviation.digest(of: abbreviated) { head.write(byte: byte) }
        }
        return head.bytes + body.bytes
    }

    /// Marks the sortable ids of `forms` to abbreviate: those of records `known` says the receiver holds, but
    /// not two of one type, prefix and time (the receiver could not tell them apart by the message alone).
    /// Returns the abbreviated records, in table order.
    private func abbreviate(
        _ forms: inout [(prefix: Int, bits: SortableID.Bits, abbreviated: Bool)?],
        _ known: (RecordRef) -> Bool
    ) -> [RecordRef] {
        struct Instant: Hashable {
            var type: Int
            var prefix: Int
            var millis: UInt64
        }
        var shared: [Instant: Int] = [:]
        for (record, form) in zip(records, forms) {
            guard let form else { continue }
            shared[Instant(type: record.type, prefix: form.prefix, millis: form.bits.millis), default: 0] += 1
        }
        var abbreviated: [RecordRef] = []
        for index in records.indices {
            guard let form = forms[index] else { continue }
            let instant = Instant(type: records[index].type, prefix: form.prefix, millis: form.bits.millis)
            guard shared[instant] == 1 else { continue }
            let record = RecordRef(type: strings[records[index].type], id: records[index].id)
            guard known(record) else { continue }
            forms[index]?.abbreviated = true
            abbreviated.append(record)
        }
        return abbreviated
    }
}

extension BinaryWireMessage {
    /// Its binary form in the newest layout, every record named in full.
    public func binaryEncoded() -> [UInt8] {
        binaryEncoded(layout: BinaryWire.latestLayout)
    }

    /// Its binary form in `layout` (one of ``BinaryWire/layouts``), every record named in full.
    public func binaryEncoded(layout: UInt8) -> [UInt8] {
        binaryEncoded(layout: layout) { _ in false }
    }
}

/// A message with a binary form (``BinaryWire``).
public protocol BinaryWireMessage: Sendable {
    /// The kind byte of its binary form.
    static var binaryKind: BinaryWire.Kind { get }
    /// Its binary form in `layout` (one of ``BinaryWire/layouts``), naming by abbreviation in layout 3 the
    /// records `known` says the receiver holds (``RecordAbbreviation``).
    func binaryEncoded(layout: UInt8, abbreviating known: (RecordRef) -> Bool) -> [UInt8]
    /// Reads its binary form strictly, the records it names by abbreviation (``BinaryWire/abbreviations(in:kind:)``)
    /// being `resolved` (their full ids, in the same order; `nil` for one this side does not hold).
    ///
    /// - Throws: ``BinaryWire/Failure`` naming the byte offset and what was wrong; one that
    ///   ``BinaryWire/Failure/isUnresolved`` when a record named by abbreviation is not resolved, or not to the
    ///   record the sender meant.
    init(binary bytes: [UInt8], resolved: [String?]) throws(BinaryWire.Failure)
}

extension BinaryWireMessage {
    /// Reads its binary form strictly; a record named by abbreviation is a failure that
    /// ``BinaryWire/Failure/isUnresolved``.
    public init(binary bytes: [UInt8]) throws(BinaryWire.Failure) {
        try self.init(binary: bytes, resolved: [])
    }
}

extension PushRequest: BinaryWireMessage {
    public static var binaryKind: BinaryWire.Kind { .pushRequest }

    public func binaryEncoded(layout: UInt8, abbreviating known: (RecordRef) -> Bool) -> [UInt8] {
        var writer = BinaryMessageWriter(layout: layout, changes: changes, records: [])
        writer.write(string: replica.rawValue)
        writer.write(changes: changes)
        return writer.finish(kind: Self.binaryKind, abbreviating: known)
    }
}

extension PullResponse: BinaryWireMessage {
    public static var binaryKind: BinaryWire.Kind { .pullResponse }

    public func binaryEncoded(layout: UInt8, abbreviating known: (RecordRef) -> Bool) -> [UInt8] {
        var writer = BinaryMessageWriter(layout: layout, changes: changes, records: records)
        writer.write(changes: changes)
        writer.write(inline: checkpoint)
        writer.write(byte: hasMore ? 1 : 0)
        writer.write(records: records)
        writer.write(count: removed.count)
        for id in removed { writer.write(string: id) }
        if writer.layout >= 5 {
            writer.write(count: leftScope.count)
            for id in leftScope { writer.write(string: id) }
        }
        return writer.finish(kind: Self.binaryKind, abbreviating: known)
    }
}

/// A record's merged state in the stored form (``BinaryWriter``'s record state), as a server keeps it: a snapshot
/// page is written from it without decoding it (``SnapshotPage/binaryEncoded(stored:checkpoint:next:layout:)``).
public struct StoredRecordState: Sendable, Hashable {
    /// The record.
    public var record: RecordRef
    /// Its state's stored bytes.
    public var state: [UInt8]

    /// Creates a stored state.
    public init(record: RecordRef, state: [UInt8]) {
        self.record = record
        self.state = state
    }

    /// The record with its state decoded.
    public func decoded() throws(CRDTError) -> SnapshotRecord {
        var reader = BinaryReader(state)
        return SnapshotRecord(record: record, state: try reader.readRecordState())
    }
}

extension SnapshotPage: BinaryWireMessage {
    public static var binaryKind: BinaryWire.Kind { .snapshotPage }

    public func binaryEncoded(layout: UInt8, abbreviating known: (RecordRef) -> Bool) -> [UInt8] {
        var writer = BinaryMessageWriter(layout: layout, changes: [], records: records)
        writer.write(records: records)
        return Self.finish(
            &writer,
            checkpoint: checkpoint,
            next: next,
            removed: removed,
            leftScope: leftScope,
            abbreviating: known
        )
    }

    /// The binary form in `layout` of the page of `stored` states, `checkpoint`, `next`, `removed` and `leftScope`:
    /// the bytes of the page of the same states decoded, written without decoding them.
    ///
    /// - Throws: ``CRDTError`` when a stored state cannot be read.
    public static func binaryEncoded(
        stored: [StoredRecordState],
        checkpoint: String,
        next: String?,
        removed: [String] = [],
        leftScope: [String] = [],
        layout: UInt8
    ) throws(CRDTError) -> [UInt8] {
        var writer = try BinaryMessageWriter(layout: layout, stored: stored)
        try writer.write(stored: stored)
        return finish(&writer, checkpoint: checkpoint, next: next, removed: removed, leftScope: leftScope)
    }

    /// The page's tail. `removed` is written in layout 4 and later only: a reader of an older layout is sent none
    /// and removes nothing, as before layout 4; `leftScope` in layout 5 and later only, so that a reader of an
    /// older layout keeps nothing of what it removes.
    private static func finish(
        _ writer: inout BinaryMessageWriter,
        checkpoint: String,
        next: String?,
        removed: [String],
        leftScope: [String],
        abbreviating known: (RecordRef) -> Bool = { _ in false }
    ) -> [UInt8] {
        writer.write(inline: checkpoint)
        if let next {
            writer.write(byte: 1)
            writer.write(inline: next)
        } else {
            writer.write(byte: 0)
        }
        if writer.layout >= 4 {
            writer.write(count: removed.count)
            for id in removed { writer.write(string: id) }
        }
        if writer.layout >= 5 {
            writer.write(count: leftScope.count)
            for id in leftScope { writer.write(string: id) }
        }
        return writer.finish(kind: binaryKind, abbreviating: known)
    }
}
