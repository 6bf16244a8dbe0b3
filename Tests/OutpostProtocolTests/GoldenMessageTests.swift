import Foundation
import OutpostProtocol
import Testing

/// Every golden file in `protocol/golden/` is exactly what `Wire.makeEncoder()` writes for its value (plus one
/// final newline), and decodes back to that value.
struct GoldenMessageTests {
    @Test func everyGoldenFileHasAValueAndEveryValueHasAFile() throws {
        let files = Set(try ProtocolFiles.jsonFiles(in: ProtocolFiles.golden))
        let catalog = Set(GoldenCatalog.all.map(\.name))
        #expect(catalog.count == GoldenCatalog.all.count, "two goldens share a file name")
        #expect(files.subtracting(catalog).sorted() == [], "golden files without a value in GoldenCatalog")
        #expect(catalog.subtracting(files).sorted() == [], "values without a golden file (OUTPOST_WRITE_GOLDENS=1)")
    }

    @Test(arguments: GoldenCatalog.all)
    func goldenFileDecodesToItsValue(_ golden: Golden) throws {
        let data = try ProtocolFiles.read(golden.name, in: ProtocolFiles.golden)
        #expect(try golden.decodesToExpectedValue(data))
    }

    @Test(arguments: GoldenCatalog.all)
    func valueEncodesToTheGoldenBytes(_ golden: Golden) throws {
        let file = try ProtocolFiles.read(golden.name, in: ProtocolFiles.golden)
        let encoded = try golden.encodeExpectedValue()
        #expect(String(decoding: encoded, as: UTF8.self) + "\n" == String(decoding: file, as: UTF8.self))
    }

    @Test(arguments: GoldenCatalog.all)
    func everyGoldenNamesAnExistingSchema(_ golden: Golden) {
        let schema = ProtocolFiles.schemas.appendingPathComponent("\(golden.schemaName).schema.json")
        #expect(FileManager.default.fileExists(atPath: schema.path), "no schema \(schema.lastPathComponent)")
    }

    /// Rewrites the golden files from the catalog: `OUTPOST_WRITE_GOLDENS=1 swift test --filter GoldenMessage`.
    /// Review the diff before committing: a changed golden is a changed wire format.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["OUTPOST_WRITE_GOLDENS"] == "1"))
    func writeGoldenFiles() throws {
        for golden in GoldenCatalog.all {
            var data = try golden.encodeExpectedValue()
            data.append(0x0A)
            try data.write(to: ProtocolFiles.golden.appendingPathComponent(golden.name))
        }
    }
}
