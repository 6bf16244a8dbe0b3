/// Reads what ``BinaryWriter`` wrote; every malformed input is refused with a ``CRDTError`` (code
/// `malformedEncoding`), never a crash.
public struct BinaryReader {
    private let bytes: [UInt8]
    private var offset: Int
    /// The last replica id, author and site read. A record state's writes and a run's changes repeat them, and
    /// a repeat is the string already read (compared byte for byte), not a new one built, and for a replica id
    /// checked, again.
    private var lastReplica: ReplicaID?
    private var lastAuthor: String?
    private var lastSite: String?

    /// Creates a reader over `bytes`.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { offset == bytes.count }

    private func malformed(_ what: String) -> CRDTError {
        CRDTError(code: .malformedEncoding, message: "stored data is malformed (\(what) at byte \(offset))")
    }

    /// Reads an unsigned varint.
    public mutating func readVarint() throws(CRDTError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw malformed("truncated number") }
            let byte = bytes[offset]
            offset += 1
            guard shift < 64 else { throw malformed("number too long") }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
    }

    /// Reads a count, refused when it is more than the bytes left (each counted item takes a byte at least).
    public mutating func readCount() throws(CRDTError) -> Int {
        let count = try readVarint()
        guard count <= UInt64(bytes.count - offset) else { throw malformed("count past the end") }
        return Int(count)
    }

    /// Reads one byte.
    public mutating func readByte() throws(CRDTError) -> UInt8 {
        guard offset < bytes.count else { throw malformed("truncated data") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// The next byte, not read.
    public func peekByte() throws(CRDTError) -> UInt8 {
        guard offset < bytes.count else { throw malformed("truncated data") }
        return bytes[offset]
    }

    /// Reads a string.
    public mutating func readString() throws(CRDTError) -> String {
        let count = try readCount()
        let end = offset + count
        let text = String(decoding: bytes[offset..<end], as: UTF8.self)
        offset = end
        return text
    }

    /// Reads a string: `last` itself when the bytes are its bytes (`repeated`), a new string otherwise.
    private mutating func readString(repeating last: String?) throws(CRDTError) -> (text: String, repeated: Bool) {
        let count = try readCount()
        let start = offset
        offset += count
        if var last, last.utf8.count == count {
            // Compared byte by byte in place, last byte first (ids and authors differ most at their end).
            let same = last.withUTF8 { known in
                bytes.withUnsafeBufferPointer { all in
                    var index = count
                    while index > 0 {
                        index -= 1
                        if known[index] != all[start + index] { return false }
                    }
                    return true
                }
            }
            if same { return (last, true) }
        }
        return (String(decoding: bytes[start..<offset], as: UTF8.self), false)
    }

    /// Reads a write's or change's author (the same string as the last one read when its bytes are the same).
    public mutating func readAuthor() throws(CRDTError) -> String {
        let author = try readString(repeating: lastAuthor).text
        lastAuthor = author
        return author
    }

    /// Reads a write's or change's optional site (the same string as the last one read when its bytes are the
    /// same).
    public mutating func readSite() throws(CRDTError) -> String? {
        switch try readByte() {
        case 0: return nil
        case 1:
            let site = try readString(repeating: lastSite).text
            lastSite = site
            return site
        default: throw malformed("bad presence flag")
        }
    }

    /// Reads an optional string.
    public mutating func readOptionalString() throws(CRDTError) -> String? {
        switch try readByte() {
        case 0: return nil
        case 1: return try readString()
        default: throw malformed("bad presence flag")
        }
    }

    /// The tag byte of a string value (``BinaryWriter``'s value form), for a reader that peeks at it.
    public static let stringTag: UInt8 = 4

    /// Reads a value.
    public mutating func readValue() throws(CRDTError) -> Value {
        switch try readByte() {
        case 0: return .null
        case 1: return .bool(false)
        case 2: return .bool(true)
        case 3:
            let zigzag = try readVarint()
            return .int(Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1))
        case 4: return .string(try readString())
        default: throw malformed("unknown value tag")
        }
    }

    /// Skips a value without making it (for a reader that wants only some of a row's values).
    public mutating func skipValue() throws(CRDTError) {
        switch try readByte() {
        case 0, 1, 2: return
        case 3: _ = try readVarint()
        case 4: offset += try readCount()
        default: throw malformed("unknown value tag")
        }
    }

    /// Reads a change id.
    public mutating func readChangeID() throws(CRDTError) -> ChangeID {
        let (text, repeated) = try readString(repeating: lastReplica?.rawValue)
        let replica: ReplicaID
        if repeated, let lastReplica {
            replica = lastReplica
        } else {
            guard ReplicaID.isValid(text) else { throw malformed("bad replica id") }
            replica = ReplicaID(unchecked: text)
            lastReplica = replica
        }
        let counter = try readVarint()
        guard counter > 0 else { throw malformed("change counter 0") }
        return ChangeID(replica: replica, counter: counter)
    }

    /// Reads a timestamp.
    public mutating func readTimestamp() throws(CRDTError) -> Timestamp {
        let millis = try readVarint()
        let counter = try readVarint()
        guard counter <= UInt64(UInt32.max) else { throw malformed("bad clock counter") }
        return Timestamp(millis: millis, counter: UInt32(counter))
    }

    /// Reads a field state.
    public mutating func readFieldState() throws(CRDTError) -> FieldState {
        let liveCount = try readCount()
        var live: [Write] = []
        live.reserveCapacity(liveCount)
        for _ in 0..<liveCount {
            let id = try readChangeID()
            let value = try readValue()
            let clock = try readTimestamp()
            let author = try readAuthor()
            let site = try readSite()
            live.append(Write(id: id, value: value, clock: clock, author: author, site: site))
        }
        let supersededCount = try readCount()
        var superseded: [ChangeID] = []
        superseded.reserveCapacity(supersededCount)
        for _ in 0..<supersededCount { superseded.append(try readChangeID()) }
        guard let state = FieldState(live: live, superseded: superseded) else {
            throw malformed("unsorted field state")
        }
        return state
    }

    /// Reads a record state.
    public mutating func readRecordState() throws(CRDTError) -> RecordState {
        let count = try readCount()
        var state = RecordState()
        state.reserveFields(count)
        for _ in 0..<count {
            let name = try readString()
            guard state.insertDecoded(name, try readFieldState()) else { throw malformed("a field named twice") }
        }
        return state
    }

    /// Reads a record state keeping only the fields named in `fields`: the others are checked as
    /// ``readRecordState()`` checks them (lengths, counts, tags, presence flags, replica ids, clock counters, the
    /// order of their writes), but for a live write also listed as superseded, and skipped without being made. For a
    /// reader that needs a few fields of large states: the server's push reads the fields its changes write, not
    /// every field of thousands of records.
    public mutating func readRecordState(fields: Set<String>) throws(CRDTError) -> RecordState {
        let count = try readCount()
        var state = RecordState()
        // A field named twice is refused as a whole decoding refuses it: fields are written sorted by name, so
        // only names out of order are looked at again.
        var names: [String] = []
        names.reserveCapacity(count)
        var sorted = true
        for _ in 0..<count {
            let name = try readString()
            if let last = names.last, !(last < name) { sorted = false }
            names.append(name)
            if fields.contains(name) {
                guard state.insertDecoded(name, try readFieldState()) else { throw malformed("a field named twice") }
            } else {
                try skipFieldState()
            }
        }
        guard sorted || Set(names).count == names.count else { throw malformed("a field named twice") }
        return state
    }

    /// Skips a field state, checking what ``readFieldState()`` checks but whether a live write is also listed as
    /// superseded (that would take keeping the ids).
    private mutating func skipFieldState() throws(CRDTError) {
        var last: ChangeID?
        let live = try readCount()
        for _ in 0..<live {
            let id = try readChangeID()
            if let last, !(last < id) { throw malformed("unsorted field state") }
            last = id
            try skipValue()
            _ = try readTimestamp()
            _ = try readAuthor()
            _ = try readSite()
        }
        last = nil
        let superseded = try readCount()
        for _ in 0..<superseded {
            let id = try readChangeID()
            if let last, !(last < id) { throw malformed("unsorted field state") }
            last = id
        }
    }

    /// Whether every write of the record state at the reader's position, live or superseded, is `replica`'s:
    /// the answer of decoding the state and comparing each write's replica, without making the state (no
    /// string, value or dictionary is built). Stops at the first write of another replica; a state that ends
    /// early or holds a bad tag or presence flag is refused, like ``readRecordState()`` refuses it.
    public mutating func recordStateIsWritten(onlyBy replica: ReplicaID) throws(CRDTError) -> Bool {
        let wanted = Array(replica.rawValue.utf8)
        let fields = try readCount()
        for _ in 0..<fields {
            try skipString()
            let live = try readCount()
            for _ in 0..<live {
                guard try readReplica(equalTo: wanted) else { return false }
                _ = try readVarint()
                try skipValue()
                _ = try readVarint()
                _ = try readVarint()
                try skipString()
                switch try readByte() {
                case 0: break
                case 1: try skipString()
                default: throw malformed("bad presence flag")
                }
            }
            let superseded = try readCount()
            for _ in 0..<superseded {
                guard try readReplica(equalTo: wanted) else { return false }
                _ = try readVarint()
            }
        }
        return true
    }

    /// Skips a string.
    public mutating func skipString() throws(CRDTError) {
        offset += try readCount()
    }

    /// Reads a change id's replica and says whether its bytes are `wanted`.
    private mutating func readReplica(equalTo wanted: [UInt8]) throws(CRDTError) -> Bool {
        let count = try readCount()
        let start = offset
        offset += count
        return count == wanted.count && bytes[start..<offset].elementsEqual(wanted)
    }

    /// Reads changes written by ``BinaryWriter/write(changes:of:)``.
    public mutating func readChanges() throws(CRDTError) -> [Change] {
        let type = try readString()
        let id = try readString()
        let record = RecordRef(type: type, id: id)
        let count = try readCount()
        var changes: [Change] = []
        changes.reserveCapacity(count)
        for _ in 0..<count {
            let changeID = try readChangeID()
            let field = try readString()
            let operation: Operation
            switch try readByte() {
            case 0: operation = .assign
            case 1: operation = .add
            case 2: operation = .remove
            case 3: operation = .append
            default: throw malformed("unknown operation")
            }
            let value = try readValue()
            let replacesCount = try readCount()
            var replaces: [ChangeID] = []
            replaces.reserveCapacity(replacesCount)
            for _ in 0..<replacesCount { replaces.append(try readChangeID()) }
            let clock = try readTimestamp()
            let author = try readAuthor()
            let site = try readSite()
            changes.append(
                Change(
                    id: changeID,
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
