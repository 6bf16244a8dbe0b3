import Crypto
public import OutpostCRDT

/// A record named in a layout-3 message by its type, its id's prefix, time and first 32 random bits instead of
/// the whole id (protocol/README.md, "Layout 3"): a record the sender believes the receiver holds.
///
/// The receiver finds the one record of its own with that type whose id lies in ``lowestID``...``highestID``
/// and ``matches(_:)``; the message's digest of the full ids (``digest(of:)``) tells it whether those are the
/// records the sender meant. A record it does not find, or finds twice, or a digest that differs, and the
/// message is read with full ids instead: never guessed.
public struct RecordAbbreviation: Sendable, Hashable {
    /// The record's type.
    public var type: String
    /// What comes before the sortable id in the record's id (`pat_`).
    public var prefix: String
    /// The sortable id's milliseconds.
    public var millis: UInt64
    /// The first 32 of the sortable id's 80 random bits.
    public var randomHead: UInt32

    /// The random bits an abbreviation keeps.
    public static let keptBits = 32

    /// Creates an abbreviation.
    public init(type: String, prefix: String, millis: UInt64, randomHead: UInt32) {
        self.type = type
        self.prefix = prefix
        self.millis = millis
        self.randomHead = randomHead
    }

    /// The abbreviation of `record` when its id ends in a sortable id.
    public init?(_ record: RecordRef) {
        guard let form = BinaryWire.sortableForm(of: record.id) else { return nil }
        self.init(
            type: record.type,
            prefix: String(form.prefix),
            millis: form.bits.millis,
            randomHead: UInt32(truncatingIfNeeded: form.bits.high >> 8)
        )
    }

    /// The least id with this abbreviation: every id it may stand for sorts (bytewise) from here to ``highestID``.
    public var lowestID: String {
        prefix + SortableID.text(SortableID.Bits(millis: millis, high: UInt64(randomHead) << 8, low: 0)!)
    }

    /// The greatest id with this abbreviation.
    public var highestID: String {
        prefix
            + SortableID.text(
                SortableID.Bits(millis: millis, high: UInt64(randomHead) << 8 | 0xFF, low: (1 << 40) - 1)!
            )
    }

    /// Whether `id` (of a record of ``type``) has this abbreviation.
    public func matches(_ id: String) -> Bool {
        guard let form = BinaryWire.sortableForm(of: id) else { return false }
        return form.prefix == prefix && form.bits.millis == millis
            && UInt32(truncatingIfNeeded: form.bits.high >> 8) == randomHead
    }

    /// The one id among `candidates` (ids of records of ``type`` the receiver holds in ``lowestID``...
    /// ``highestID``) with this abbreviation; `nil` when none or more than one has it.
    public func resolve(among candidates: some Sequence<String>) -> String? {
        var found: String?
        for id in candidates where matches(id) {
            guard found == nil else { return nil }
            found = id
        }
        return found
    }

    /// The digest a layout-3 message carries of the records it abbreviates: the first 8 bytes of SHA-256 over
    /// each record's type and id, in table order, each followed by a zero byte.
    static func digest(of records: some Sequence<RecordRef>) -> [UInt8] {
        var hash = SHA256()
        for record in records {
            hash.update(data: Array(record.type.utf8) + [0] + Array(record.id.utf8) + [0])
        }
        return Array(hash.finalize().prefix(8))
    }
}
