#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text ordered as SQLite's default (`BINARY`) collation orders it: by UTF-8 bytes, a prefix first. Swift's own
/// `<` on strings orders by canonical equivalence, which differs for non-ASCII text; code that walks or bounds
/// SQLite's keys from Swift compares with this.
public enum SQLiteText {
    /// How `text` sorts against `other`: negative before, zero the same bytes, positive after.
    public static func order(_ text: String, _ other: String) -> Int {
        let compared = text.utf8.withContiguousStorageIfAvailable { left in
            other.utf8.withContiguousStorageIfAvailable { right -> Int in
                let common = min(left.count, right.count)
                let order = common == 0 ? 0 : memcmp(left.baseAddress!, right.baseAddress!, common)
                return order != 0 ? Int(order) : left.count - right.count
            }
        }
        if let compared = compared ?? nil { return compared }
        if text.utf8.elementsEqual(other.utf8) { return 0 }
        return text.utf8.lexicographicallyPrecedes(other.utf8) ? -1 : 1
    }

    /// Whether `text` sorts before `other`.
    public static func precedes(_ text: String, _ other: String) -> Bool {
        order(text, other) < 0
    }
}
