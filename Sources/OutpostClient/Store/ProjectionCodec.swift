@preconcurrency import Crypto
import Foundation
import GRDB
import OutpostCRDT
import Synchronization

/// How the store's projection (``Projection``) is written and filtered: the one place that knows whether its
/// values are in clear (a plain store) or not (an encrypted store; docs/store.md, "Encryption at rest").
///
/// In a plain store every column holds its value, and SQL filters and orders on it. In an encrypted store
/// only record ids are in clear (the records they name are sealed); every other projected value is derived
/// from sealed states and is not:
///
/// - an **equality** column (status, kind, code, priority, risk tier, gap key, the booleans derived from them)
///   holds a keyed token: HMAC-SHA256 of the value under a key derived with HKDF from the store's data key for
///   that table and column, truncated to 16 bytes. Equal values give equal tokens, so the indexes still answer
///   `column = ?` (``match(_:table:column:)``), and nothing else can be learned without the key;
/// - an **ordered** column (a due date, an observation's or encounter's time) and a task's text (its title,
///   the fields a list prints without filtering on them) is NULL: its value is in the row's sealed blob, and
///   order and ranges are read in memory after the indexed filter;
/// - a main table's `sealed` column holds every value of the row and the row's gap keys or open care gaps,
///   sealed with the store's cipher (``StoreCipher``, purpose `projection`, the table and the row's id as its
///   record), which is how lists read the values back (``open(id:sealed:columns:table:)``).
struct ProjectionCodec: Sendable {
    /// The store's cipher; `nil` for a plain store.
    let cipher: StoreCipher?
    /// How each column of each table is stored, by table name, in the table's column order (empty for a plain
    /// store): its kind, and for an equality column its tokens.
    private let codings: [String: [Coding]]

    /// How many tokens each equality column keeps (``Tokens``).
    static let keptTokens = 1024

    /// How one column of an encrypted store's table is stored.
    private struct Coding: Sendable {
        let kind: Projection.Kind
        /// An equality column's tokens; `nil` for the other kinds.
        let tokens: Tokens?
    }

    /// The tokens of one equality column: its keyed hash, initialized with the column's key once (``HMAC``
    /// prepares its key for every code otherwise), and the tokens made so far, by the bytes hashed.
    ///
    /// Equality columns hold few distinct values (statuses, kinds, codes, tiers, booleans: at most 13 per
    /// column in the reference practice), and a snapshot of the reference practice makes about 290,000 tokens:
    /// computing each keyed hash again was about 7% of the device's CPU in an encrypted bootstrap (perf). A token
    /// is a function of the bytes hashed and the column's key alone, so the one made before is the same token. At
    /// most ``limit`` are kept per column; past it, tokens are computed and not kept.
    ///
    /// Unchecked: swift-crypto does not mark `HMAC` Sendable, but it is a value whose digest state is copied
    /// before it is written (copy on write), and `keyedHash` is never mutated in place, only copied
    /// (``ProjectionCodec/token(_:from:)``), so threads share it read-only; the kept tokens are behind a lock.
    private final class Tokens: @unchecked Sendable {
        static let limit = ProjectionCodec.keptTokens
        private let keyedHash: HMAC<SHA256>
        private let made = Mutex<[[UInt8]: DatabaseValue]>([:])

        init(key: SymmetricKey) {
            keyedHash = HMAC<SHA256>(key: key)
        }

        /// The token of `value` in this column. Kept by the bytes the keyed hash reads (``tagged(_:)``), not by
        /// the value: SQLite's values compare 1 and 1.0 equal, and the kept token is exactly the hash's.
        func token(of value: DatabaseValue) -> DatabaseValue {
            let tagged = ProjectionCodec.tagged(value)
            if let token = made.withLock({ $0[tagged] }) { return token }
            let token = ProjectionCodec.token(tagged, from: keyedHash)
            made.withLock { made in
                if made.count < Self.limit { made[tagged] = token }
            }
            return token
        }
    }

    /// Whether projected values are tokens and sealed blobs.
    var isEncrypted: Bool { cipher != nil }

    init(cipher: StoreCipher?) {
        self.cipher = cipher
        var codings: [String: [Coding]] = [:]
        if let cipher {
            for table in Projection.allTables {
                codings[table.name] = table.columns.map { column in
                    let kind = table.kind(of: column)
                    guard kind == .equality else { return Coding(kind: kind, tokens: nil) }
                    let key = HKDF<SHA256>.deriveKey(
                        inputKeyMaterial: cipher.key,
                        info: Array("outpost projection token \(table.name).\(column)".utf8),
                        outputByteCount: 32
                    )
                    return Coding(kind: kind, tokens: Tokens(key: key))
                }
            }
        }
        self.codings = codings
    }

    /// What an equality filter on `column` of `table` compares with: the value in a plain store, its token
    /// in an encrypted one.
    func match(_ value: (any DatabaseValueConvertible)?, table: Projection.Table, column: String) -> DatabaseValue {
        let value = value?.databaseValue ?? .null
        guard let position = table.columns.firstIndex(of: column), let coding = codings[table.name]?[position]
        else { return value }
        return coding.tokens?.token(of: value) ?? value
    }

    /// HMAC-SHA256 of the tagged value (``tagged(_:)``) under the column's key, truncated to 16 bytes.
    private static func token(_ tagged: [UInt8], from base: HMAC<SHA256>) -> DatabaseValue {
        var mac = base
        mac.update(data: tagged)
        return mac.finalize().withUnsafeBytes { Data($0.prefix(16)) }.databaseValue
    }

    /// A value as typed text: `t` and the text, `i` and the decimal integer, or `n` for NULL.
    private static func tagged(_ value: DatabaseValue) -> [UInt8] {
        switch value.storage {
        case .string(let text): return Array(("t" + text).utf8)
        case .int64(let number): return Array("i\(number)".utf8)
        default: return Array("n".utf8)
        }
    }

    /// What a sealed blob holds, in the binary encoding of `OutpostCRDT` (``BinaryWriter``): the byte
    /// ``payloadFormat``, the row's values (a varint count, then each as a ``Value``: text, integer or null),
    /// then its extra list (gap keys, open gaps: a varint count, then the strings). Binary rather than JSON
    /// since `v10-projection-scorecard`: lists read it for every row of an encrypted store.
    private static let payloadFormat: UInt8 = 1

    private static func payload(_ row: Projection.Row) -> [UInt8] {
        var writer = BinaryWriter(capacity: 64 + 16 * row.values.count)
        writer.write(byte: payloadFormat)
        writer.write(varint: UInt64(row.values.count))
        for value in row.values {
            switch value.storage {
            case .string(let text): writer.write(Value.string(text))
            case .int64(let number): writer.write(Value.int(number))
            default: writer.write(Value.null)
            }
        }
        writer.write(varint: UInt64(row.extra.count))
        for item in row.extra { writer.write(item) }
        return writer.bytes
    }

    /// Reads a payload: the values (only the columns `wanted` marks, when given; the others NULL) and the extra
    /// list.
    private static func unpack(
        _ plain: [UInt8],
        table: Projection.Table,
        wanted: [Bool]? = nil
    ) throws(CRDTError) -> (values: [DatabaseValue], extra: [String]) {
        var reader = BinaryReader(plain)
        guard try reader.readByte() == payloadFormat else {
            throw StoreCodec.malformed("a projected row of \(table.name) is in an unknown format")
        }
        let count = try reader.readVarint()
        guard count == UInt64(table.columns.count) else {
            throw StoreCodec.malformed("a projected row of \(table.name) has the wrong number of values")
        }
        var values: [DatabaseValue] = []
        values.reserveCapacity(table.columns.count)
        for position in 0..<Int(count) {
            if let wanted, position < wanted.count, !wanted[position] {
                try reader.skipValue()
                values.append(.null)
                continue
            }
            switch try reader.readValue() {
            case .string(let text): values.append(text.databaseValue)
            case .int(let number): values.append(number.databaseValue)
            default: values.append(.null)
            }
        }
        let extraCount = try reader.readVarint()
        var extra: [String] = []
        for _ in 0..<extraCount { extra.append(try reader.readString()) }
        return (values, extra)
    }

    /// ``encode(_:table:sealing:)`` of a row its caller gives up: in a plain store the stored columns are the row's
    /// own values, taken from it (the row is left with none) with the main table's NULL `sealed` appended, not a
    /// copy of them (the copy, retaining every value, was about an eighth of an import's drafting thread).
    func encode(taking row: inout Projection.Row, table: Projection.Table) throws -> [DatabaseValue] {
        guard cipher == nil || codings[table.name] == nil else { return try encode(row, table: table) }
        var values: [DatabaseValue] = []
        swap(&values, &row.values)
        if table.hasSealed { values.append(.null) }
        return values
    }

    /// The stored columns of `row` (its table's columns, then `sealed` for a main table). With
    /// `sealing == false` the sealed blob is replaced by its plain payload: what ``comparable(_:table:)``
    /// gives for a stored row, so the check compares rows whatever the nonce.
    func encode(_ row: Projection.Row, table: Projection.Table, sealing: Bool = true) throws -> [DatabaseValue] {
        guard cipher != nil, let codings = codings[table.name] else {
            return row.values + (table.hasSealed ? [.null] : [])
        }
        var stored: [DatabaseValue] = []
        stored.reserveCapacity(table.storedColumnCount)
        for (index, coding) in codings.enumerated() {
            switch coding.kind {
            case .identifier: stored.append(row.values[index])
            case .equality: stored.append(coding.tokens?.token(of: row.values[index]) ?? .null)
            case .sealed: stored.append(.null)
            }
        }
        if table.hasSealed {
            let plain = Self.payload(row)
            stored.append(
                sealing ? try seal(plain, table: table, id: row.values[0]) : Data(plain).databaseValue
            )
        }
        return stored
    }

    private func seal(_ plain: [UInt8], table: Projection.Table, id: DatabaseValue) throws -> DatabaseValue {
        guard let cipher else { return .null }
        return try cipher.seal(plain, .projection, of: Self.ref(table, id)).databaseValue
    }

    private static func ref(_ table: Projection.Table, _ id: DatabaseValue) -> RecordRef {
        RecordRef(type: table.name, id: String.fromDatabaseValue(id) ?? "")
    }

    /// A stored row (its columns, then `sealed` for a main table) with its sealed blob opened: compared with
    /// ``encode(_:table:sealing:)`` of the expected row with `sealing: false`.
    func comparable(_ stored: [DatabaseValue], table: Projection.Table) throws -> [DatabaseValue] {
        guard let cipher, table.hasSealed, let blob = Data.fromDatabaseValue(stored[table.columns.count]) else {
            return stored
        }
        let plain = try cipher.open(blob, .projection, of: Self.ref(table, stored[0]))
        return Array(stored.prefix(table.columns.count)) + [Data(plain).databaseValue]
    }

    /// What a read of a main table selects to give `columns`: the columns themselves in a plain store, read in
    /// place; the id and the sealed blob in an encrypted one, opened with ``open(id:sealed:columns:table:)``.
    func selection(_ columns: [String], table: Projection.Table) -> [String] {
        isEncrypted ? [table.columns[0], "sealed"] : columns
    }

    /// Which values of a table's sealed rows a read wants: where each of the columns it asks for is among the
    /// table's columns, in the order asked, and whether each of the table's columns is wanted (the others are
    /// skipped, not decoded).
    struct Positions: Sendable {
        let list: [Int]
        let mask: [Bool]
    }

    /// Where each of `columns` is among `table`'s columns (what ``open(id:sealed:columns:table:)`` takes).
    func positions(of columns: [String], in table: Projection.Table) throws -> Positions {
        let list = try columns.map { column in
            guard let index = table.columns.firstIndex(of: column) else {
                throw StoreCodec.malformed("\(table.name) has no column \(column)")
            }
            return index
        }
        var mask = [Bool](repeating: false, count: table.columns.count)
        for index in list { mask[index] = true }
        return Positions(list: list, mask: mask)
    }

    /// The values at `columns` and the extra list of an encrypted store's main-table row, from its id and sealed
    /// blob: what a row gives, without the row (opened on any thread).
    func open(
        id: DatabaseValue,
        sealed: Data?,
        columns: Positions,
        table: Projection.Table
    ) throws -> (values: [DatabaseValue], extra: [String]) {
        guard let cipher, let sealed else {
            throw StoreCodec.malformed("a projected row of \(table.name) has no sealed values")
        }
        let payload = try Self.unpack(
            try cipher.open(sealed, .projection, of: Self.ref(table, id)),
            table: table,
            wanted: columns.mask
        )
        return (columns.list.map { payload.values[$0] }, payload.extra)
    }
}
