import Crypto
import Foundation
import GRDB
import OutpostCRDT
import Testing

@testable import OutpostClient

/// An encrypted store's equality columns hold tokens that stores already written must still match: HMAC-SHA256
/// of the typed value under the column's key (HKDF of the data key, info `outpost projection token
/// TABLE.COLUMN`), its first 16 bytes. Recomputed here from that definition, not from the codec's code.
struct ProjectionTokenTests {
    private static var dataKey: SymmetricKey { SymmetricKey(data: (0..<32).map { UInt8($0 &* 7 &+ 3) }) }

    private static func expected(_ typed: String, table: String, column: String) -> DatabaseValue {
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: dataKey,
            info: Array("outpost projection token \(table).\(column)".utf8),
            outputByteCount: 32
        )
        let code = HMAC<SHA256>.authenticationCode(for: Array(typed.utf8), using: key)
        return Data(Array(code).prefix(16)).databaseValue
    }

    @Test func tokensAreTheKeyedHashOfTheTypedValueWhateverTheOrderTheyAreMadeIn() throws {
        let codec = ProjectionCodec(cipher: StoreCipher(key: Self.dataKey))
        let task = Projection.task
        // Each token twice, and interleaved with other columns' tokens: a token's keyed hash starts from its
        // column's key every time.
        for _ in 0..<2 {
            #expect(
                codec.match("open", table: task, column: "status")
                    == Self.expected("topen", table: "task_view", column: "status")
            )
            #expect(
                codec.match(true, table: task, column: "isOpen")
                    == Self.expected("i1", table: "task_view", column: "isOpen")
            )
            #expect(
                codec.match(nil, table: task, column: "priority")
                    == Self.expected("n", table: "task_view", column: "priority")
            )
            #expect(
                codec.match("high", table: Projection.patient, column: "riskTier")
                    == Self.expected("thigh", table: "patient_view", column: "riskTier")
            )
        }
        // A plain store's filters compare values.
        #expect(ProjectionCodec(cipher: nil).match("open", table: task, column: "status") == "open".databaseValue)

        // A whole row: ids in clear, equality columns tokens, ordered and text columns NULL, then the sealed
        // values (opened here: their nonces differ each time).
        var values = [DatabaseValue](repeating: .null, count: task.columns.count)
        values[0] = "tsk_1".databaseValue
        values[task.columns.firstIndex(of: "status")!] = "open".databaseValue
        values[task.columns.firstIndex(of: "dueDate")!] = "2026-12-04".databaseValue
        values[task.columns.firstIndex(of: "assignee")!] = "per_1".databaseValue
        let row = Projection.Row(table: task.name, values: values)
        let stored = try codec.encode(row, table: task)
        #expect(stored.count == task.columns.count + 1)
        for (index, column) in task.columns.enumerated() {
            switch task.kind(of: column) {
            case .identifier: #expect(stored[index] == values[index], "\(column)")
            case .sealed: #expect(stored[index] == .null, "\(column)")
            case .equality:
                let typed =
                    switch values[index].storage {
                    case .string(let text): "t" + text
                    case .int64(let number): "i\(number)"
                    default: "n"
                    }
                #expect(stored[index] == Self.expected(typed, table: task.name, column: column), "\(column)")
            }
        }
        #expect(try codec.comparable(stored, table: task) == (try codec.encode(row, table: task, sealing: false)))
    }

    /// A row given up to its encoding (`encode(taking:table:)`, the bulk writes' path) is stored as the row lent
    /// would be, in every table, plain or encrypted; a plain store takes the row's own values.
    @Test func aRowGivenUpIsStoredAsARowLent() throws {
        for codec in [ProjectionCodec(cipher: nil), ProjectionCodec(cipher: StoreCipher(key: Self.dataKey))] {
            for table in Projection.allTables {
                let values = table.columns.enumerated().map { index, column in
                    index == 0 ? "tsk_01JWMCKG2QYPGM5CV17B38YQ0Z".databaseValue : "\(column) value".databaseValue
                }
                var given = Projection.Row(table: table.name, values: values, extra: ["a", "b"])
                let lent = given
                let stored = try codec.encode(taking: &given, table: table)
                #expect(stored.count == table.storedColumns.count, "\(table.name)")
                #expect(
                    try codec.comparable(stored, table: table)
                        == (try codec.encode(lent, table: table, sealing: false)),
                    "\(table.name)"
                )
                if !codec.isEncrypted { #expect(stored == (try codec.encode(lent, table: table)), "\(table.name)") }
            }
        }
    }

    /// Tokens are kept per column once made: a value asked for again, in the same column or in another, and
    /// values past the number kept, all give the keyed hash of their own value.
    @Test func keptTokensAreEachValuesOwnInItsOwnColumn() {
        let codec = ProjectionCodec(cipher: StoreCipher(key: Self.dataKey))
        let task = Projection.task
        let codes = (0..<(ProjectionCodec.keptTokens + 50)).map { "code-\($0)" }
        // SQLite's values compare 1.0 and 1 equal; a real is not typed (`n`, as NULL) and 1 is `i1`, in this
        // order too.
        #expect(
            codec.match(1.0, table: task, column: "isOpen")
                == Self.expected("n", table: "task_view", column: "isOpen")
        )
        #expect(
            codec.match(1, table: task, column: "isOpen") == Self.expected("i1", table: "task_view", column: "isOpen")
        )
        // Swift's strings compare "é" as one code point and as "e" and an accent equal; tokens hash their bytes.
        for text in ["caf\u{E9}", "cafe\u{301}", "caf\u{E9}"] {
            #expect(
                codec.match(text, table: task, column: "status")
                    == Self.expected("t" + text, table: "task_view", column: "status")
            )
        }
        #expect(
            codec.match("caf\u{E9}", table: task, column: "status")
                != codec.match("cafe\u{301}", table: task, column: "status")
        )
        for round in 0..<2 {
            for code in codes {
                #expect(
                    codec.match(code, table: task, column: "status")
                        == Self.expected("t" + code, table: "task_view", column: "status"),
                    "round \(round)"
                )
            }
            // The same values in another column: that column's keys, not the first's kept tokens.
            for code in codes.prefix(20) {
                #expect(
                    codec.match(code, table: task, column: "kind")
                        == Self.expected("t" + code, table: "task_view", column: "kind"),
                    "round \(round)"
                )
            }
            // Text and integers that read alike are different values.
            #expect(
                codec.match("1", table: task, column: "isOpen")
                    == Self.expected("t1", table: "task_view", column: "isOpen")
            )
            #expect(
                codec.match(1, table: task, column: "isOpen")
                    == Self.expected("i1", table: "task_view", column: "isOpen")
            )
        }
    }

    /// Every seal draws a new random nonce (read from the system, one call per nonce), and every blob opens to
    /// its plain row.
    @Test func sealsTakeANewNonceEachTime() throws {
        let cipher = StoreCipher(key: Self.dataKey)
        let record = RecordRef(type: "patient", id: "pat_1")
        let plain: [UInt8] = Array("the same row".utf8)
        var nonces: Set<Data> = []
        for _ in 0..<200 {
            let blob = try cipher.seal(plain, .state, of: record)
            #expect(StoreCipher.isSealed(blob))
            nonces.insert(blob.dropFirst(StoreCipher.marker.count).prefix(12))
            #expect(try cipher.open(blob, .state, of: record) == plain)
        }
        #expect(nonces.count == 200)
    }
}
