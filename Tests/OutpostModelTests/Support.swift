import Foundation
import OutpostCRDT
import OutpostModel

/// Shared helpers for the model tests.
enum Fixture {
    /// The repository root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func bytes(_ relativePath: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(relativePath)))
    }

    static let today = CalendarDate(year: 2026, month: 11, day: 23) ?? CalendarDate(daysSinceEpoch: 20_415)

    /// Ids for tests, deterministic.
    static func id(_ type: RecordType, _ seed: UInt64 = 1, millis: UInt64 = 1_780_000_000_000) -> String {
        var generator = SeededGenerator(seed: seed)
        return type.makeID(millis: millis, using: &generator)
    }
}

/// Runs `body` and returns the ModelError it throws, or nil.
func modelError(_ body: () throws(ModelError) -> Void) -> ModelError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}
