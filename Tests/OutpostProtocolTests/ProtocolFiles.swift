import Foundation

/// The files of the written wire contract, found from this source file's path (`protocol/` at the package
/// root), so the tests read the same goldens that `tools/check-protocol` validates against the schemas.
enum ProtocolFiles {
    /// The package root: three levels above `Tests/OutpostProtocolTests/ProtocolFiles.swift`.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()

    static let golden = root.appendingPathComponent("protocol/golden")
    static let invalid = golden.appendingPathComponent("invalid")
    static let schemas = root.appendingPathComponent("protocol/schemas")

    /// The names of the `.json` files directly in `directory`, sorted.
    static func jsonFiles(in directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }
            .sorted()
    }

    /// The bytes of `name` in `directory`.
    static func read(_ name: String, in directory: URL) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }
}
