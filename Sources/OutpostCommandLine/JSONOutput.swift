import Foundation

/// The `--json` output of both executables, from `Encodable` types: keys sorted, indented, slashes as they are
/// (`"https://…"`), so that the same data prints the same bytes and scripts can diff it.
///
/// The wire's JSON is `Wire.makeEncoder()` (`OutpostProtocol`) and a record's canonical JSON is
/// `MaterializedRecord.canonicalJSON()` (`OutpostModel`); this is the third and last JSON writer, for people and
/// scripts reading a command's output.
public enum JSONOutput {
    /// The JSON text of `value`.
    public static func text(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// The JSON text of `value` on one line (keys sorted), for output that streams one value a line
    /// (`outpost sync --watch --json`).
    public static func line(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Prints the JSON text of `value` on stdout.
    public static func print(_ value: some Encodable) throws {
        Swift.print(try text(value))
    }
}
