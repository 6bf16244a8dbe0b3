/// Writes the compact binary form that stores use for record states and change batches.
///
/// The layout is private to storage (the wire format is JSON, see `protocol/`): unsigned LEB128
/// varints, strings as a varint length and UTF-8 bytes, values as a tag byte and their payload. The same
/// state always encodes to the same bytes.
public struct BinaryWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer with room for `capacity` bytes.
    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Writes an unsigned varint.
    public mutating func write(varint value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Writes a string as its UTF-8 length and bytes.
    public mutating func write(_ text: String) {
        // A native string's bytes are read in place: no copy of the string (and its retain and release) to make
        // it contiguous, as `withUTF8` needs; only another kind of string is copied.
        if text.utf8.withContiguousStorageIfAvailable({ write(utf8: $0) }) != nil { return }
        var text = text
        text.withUTF8 { write(utf8: $0) }
    }

    private mutating func write(utf8: UnsafeBufferPointer<UInt8>) {
        write(varint: UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Writes an optional string (a presence byte, then the string).
    public mutating func write(optional text: String?) {
        if let text {
            bytes.append(1)
            write(text)
        } else {
            bytes.append(0)
        }
    }

    /// Appends what `other` wrote.
    public mutating func append(_ other: BinaryWriter) {
        bytes.append(contentsOf: other.bytes)
    }

    /// Writes one byte.
    public mutating func write(byte: UInt8) {
        bytes.append(byte)
    }

    /// Writes a value: a tag byte, then its payload.
    public mutating func write(_ value: Value) {
        switch value {
        case .null:
            bytes.append(0)
        case .bool(let flag):
            bytes.append(flag ? 2 : 1)
        case .int(let number):
            bytes.append(3)
            write(varint: UInt64(bitPattern: (number << 1) ^ (number >> 63)))
        case .string(let text):
            bytes.append(4)
            write(text)
        }
    }

    /// Writes a change id.
    public mutating func write(_ id: ChangeID) {
        write(id.replica.rawValue)
        write(varint: id.counter)
    }

    /// Writes a timestamp.
    public mutating func write(_ timestamp: Timestamp) {
        write(varint: timestamp.millis)
        write(varint: UInt64(timestamp.counter))
    }

    /// Writes a field state.
    public mutating func write(_ state: FieldState) {
        write(varint: UInt64(state.live.count))
        // Read in place, not copied out of the array (a copy retains and releases each of a write's strings).
        for index in state.live.indices {
            write(state.live[index].id)
            write(state.live[index].value)
            write(state.live[index].clock)
            write(state.live[index].author)
            write(optional: state.live[index].site)
        }
        write(varint: UInt64(state.superseded.count))
        for id in state.superseded { write(id) }
    }

    /// Writes a record state, fields sorted by name.
    public mutating func write(_ record: RecordState) {
        let fields = record.sortedFields
        write(varint: UInt64(fields.count))
        // Read in place: no field copied out (a record state is written for every record a push or an import
        // touches).
        for index in fields.indices {
            write(fields[index].name)
            write(fields[index].state)
        }
    }

    /// Writes changes of one record (the record is written once, not per change).
    public mutating func write(changes: [Change], of record: RecordRef) {
        write(record.type)
        write(record.id)
        write(varint: UInt64(changes.count))
        for change in changes {
            write(change.id)
            write(change.field)
            write(byte: Self.code(of: change.operation))
            write(change.value)
            write(varint: UInt64(change.replaces.count))
            for id in change.replaces { write(id) }
            write(change.clock)
            write(change.author)
            write(optional: change.site)
        }
    }

    static func code(of operation: Operation) -> UInt8 {
        switch operation {
        case .assign: 0
        case .add: 1
        case .remove: 2
        case .append: 3
        }
    }
}

/// Zigzag delta coding of counters and clocks, shared by every binary encoding (the store's rows, the wire's
/// messages): a value as its signed distance from the previous one, small either way.
public enum Zigzag {
    /// `value` coded as its distance from `previous`.
    public static func encode(_ value: UInt64, from previous: UInt64) -> UInt64 {
        let delta = Int64(bitPattern: value &- previous)
        return UInt64(bitPattern: (delta << 1) ^ (delta >> 63))
    }

    /// The value a distance coded by ``encode(_:from:)`` names.
    public static func decode(_ coded: UInt64, from previous: UInt64) -> UInt64 {
        let delta = Int64(bitPattern: coded >> 1) ^ -Int64(bitPattern: coded & 1)
        return previous &+ UInt64(bitPattern: delta)
    }
}
