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
    /// The layout version after the magic; a reader refuses any other.
    public static let version: UInt8 = 1

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
        accept.split(separator: ",").contains { entry in
            let parts = entry.split(separator: ";", omittingEmptySubsequences: false)
            guard let type = parts.first, type.trimmingWhitespace().lowercased() == contentType else { return false }
            return !parts.dropFirst().contains { parameter in
                let text = parameter.trimmingWhitespace().lowercased()
                return text == "q=0" || text == "q=0.0" || text == "q=0.00" || text == "q=0.000"
            }
        }
    }

    // MARK: Value and operation codes

    static let valueNull: UInt8 = 0
    static let valueFalse: UInt8 = 1
    static let valueTrue: UInt8 = 2
    static let valueInt: UInt8 = 3
    static let valueInlineString: UInt8 = 4
    static let valueTableString: UInt8 = 5

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
    private var body = BinaryWriter(capacity: 4_096)
    private var strings: [String] = []
    private var stringIndex: [String: Int] = [:]
    private var records: [(type: Int, id: Int)] = []
    private var recordIndex: [RecordRef: Int] = [:]
    /// The last counter written per replica, by the replica's string index.
    private var lastCounter: [Int: UInt64] = [:]
    private var lastMillis: UInt64 = 0
    /// The last string written in each role (``Role``) and its index: a message's changes and entries come by one
    /// author from one site and replica, so most are found without hashing.
    private var recent: [(text: String, index: Int)?] = Array(repeating: nil, count: Role.allCases.count)
    /// The replica of the last change id written, its string index and last counter.
    private var lastReplica: (text: String, index: Int, counter: UInt64)?
    /// Every string value of the message and how it is written: ``inline``, ``tabled`` (not written yet), or
    /// its index in the string table once written. One look-up per value written, one per value scanned.
    private var valueSlots: [String: Int] = [:]
    /// A value's slot before it is written: inline (the message holds it once and it is no identity).
    private static let inline = -2
    /// A value's slot before it is written: in the table (the message holds it twice, or it is an identity).
    private static let tabled = -1

    /// Creates a writer; a string value goes in the table when `values` hold it twice or `identities` (ids,
    /// authors, sites of the message) hold it, inline otherwise.
    init(values: some Sequence<Value>, identities: Set<String>) {
        for case .string(let text) in values {
            // The first time (a new slot, `.min`): tabled when an identity, inline otherwise; again: tabled.
            Self.update(&valueSlots[text, default: .min]) {
                $0 == .min && !identities.contains(text) ? Self.inline : Self.tabled
            }
        }
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
        case field, author, site
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
        if let index = recordIndex[record] {
            body.write(varint: UInt64(index))
            return
        }
        records.append((string(record.type), string(record.id)))
        recordIndex[record] = records.count - 1
        body.write(varint: UInt64(records.count - 1))
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
            // Every string value was scanned (``init(values:identities:)``); a value that was not is inline.
            guard let slot = valueSlots.index(forKey: text), valueSlots.values[slot] != Self.inline else {
                body.write(byte: high | BinaryWire.valueInlineString)
                body.write(text)
                return
            }
            var index = valueSlots.values[slot]
            if index == Self.tabled {
                index = string(text)
                valueSlots.values[slot] = index
            }
            body.write(byte: high | BinaryWire.valueTableString)
            body.write(varint: UInt64(index))
        }
    }

    mutating func write(changes: [Change]) {
        write(count: changes.count)
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

    mutating func write(records snapshot: [SnapshotRecord]) {
        write(count: snapshot.count)
        for item in snapshot {
            write(record: item.record)
            // Fields read in place, in name order: no field or write copied out (a copy retains and releases each
            // of its strings), as in the stored form (``BinaryWriter``).
            let fields = item.state.sortedFields
            write(count: fields.count)
            for position in fields.indices {
                write(string: fields[position].name, as: .field)
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

    /// The whole message: header, string table, record table, body.
    func finish(kind: BinaryWire.Kind) -> [UInt8] {
        var head = BinaryWriter(capacity: body.bytes.count / 2 + 64)
        for byte in BinaryWire.magic { head.write(byte: byte) }
        head.write(byte: BinaryWire.version)
        head.write(byte: kind.rawValue)
        head.write(varint: UInt64(strings.count))
        for text in strings { head.write(text) }
        head.write(varint: UInt64(records.count))
        for record in records {
            head.write(varint: UInt64(record.type))
            head.write(varint: UInt64(record.id))
        }
        return head.bytes + body.bytes
    }

    /// The values and the identity strings (record ids, authors, sites) of changes and records.
    static func scan(changes: [Change], records: [SnapshotRecord]) -> (values: [Value], identities: Set<String>) {
        var values: [Value] = []
        var identities: Set<String> = []
        // Authors and sites repeat from one change or entry to the next: each is inserted when it differs from
        // the last one seen.
        var lastAuthor: String?
        var lastSite: String?
        func provenance(_ author: String, _ site: String?) {
            if author != lastAuthor {
                identities.insert(author)
                lastAuthor = author
            }
            if let site, site != lastSite {
                identities.insert(site)
                lastSite = site
            }
        }
        for change in changes {
            values.append(change.value)
            identities.insert(change.record.id)
            provenance(change.author, change.site)
        }
        for record in records {
            identities.insert(record.record.id)
            for field in record.state.sortedFields {
                let live = field.state.live
                for index in live.indices {
                    values.append(live[index].value)
                    provenance(live[index].author, live[index].site)
                }
            }
        }
        return (values, identities)
    }

    init(changes: [Change], records: [SnapshotRecord]) {
        let scanned = Self.scan(changes: changes, records: records)
        self.init(values: scanned.values, identities: scanned.identities)
    }
}

/// A message with a binary form (``BinaryWire``).
public protocol BinaryWireMessage: Sendable {
    /// The kind byte of its binary form.
    static var binaryKind: BinaryWire.Kind { get }
    /// Its binary form.
    func binaryEncoded() -> [UInt8]
    /// Reads its binary form strictly.
    ///
    /// - Throws: ``BinaryWire/Failure`` naming the byte offset and what was wrong.
    init(binary bytes: [UInt8]) throws(BinaryWire.Failure)
}

extension PushRequest: BinaryWireMessage {
    public static var binaryKind: BinaryWire.Kind { .pushRequest }

    public func binaryEncoded() -> [UInt8] {
        var writer = BinaryMessageWriter(changes: changes, records: [])
        writer.write(string: replica.rawValue)
        writer.write(changes: changes)
        return writer.finish(kind: Self.binaryKind)
    }
}

extension PullResponse: BinaryWireMessage {
    public static var binaryKind: BinaryWire.Kind { .pullResponse }

    public func binaryEncoded() -> [UInt8] {
        var writer = BinaryMessageWriter(changes: changes, records: records)
        writer.write(changes: changes)
        writer.write(inline: checkpoint)
        writer.write(byte: hasMore ? 1 : 0)
        writer.write(records: records)
        writer.write(count: removed.count)
        for id in removed { writer.write(string: id) }
        return writer.finish(kind: Self.binaryKind)
    }
}

extension SnapshotPage: BinaryWireMessage {
    public static var binaryKind: BinaryWire.Kind { .snapshotPage }

    public func binaryEncoded() -> [UInt8] {
        var writer = BinaryMessageWriter(changes: [], records: records)
        writer.write(records: records)
        writer.write(inline: checkpoint)
        if let next {
            writer.write(byte: 1)
            writer.write(inline: next)
        } else {
            writer.write(byte: 0)
        }
        return writer.finish(kind: Self.binaryKind)
    }
}
