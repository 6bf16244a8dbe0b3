import Foundation
import OutpostCRDT
import OutpostClient
import OutpostTestSupport
import Testing

/// Issue 9 in the store: the offset to the server's clock is kept in the store (migration v2) and every local
/// stamp is the wall clock plus it; the replica's clock never moves backwards.
struct ClockOffsetTests {
    static let schema = Schema(types: ["patient": ["phone": .lww]])
    static let year: Int64 = 365 * 86_400_000
    let patient = RecordRef(type: "patient", id: "pat_1")

    func temporaryPath() -> String {
        TestScratch.folder("offset")
            .appendingPathComponent("store.sqlite").path
    }

    @Test func editsAreStampedWithTheWallClockPlusTheStoredOffsetAcrossReopening() throws {
        let wall = ManualWallClock(millis: 1_700_000_000_000)
        let path = temporaryPath()
        let store = try LocalStore.create(
            at: path,
            replicaID: ReplicaID("laptop"),
            configuration: .init(schema: Self.schema, wallClock: wall)
        )
        #expect(try store.clockOffsetMillis() == 0)
        try store.setClockOffset(millis: Self.year)
        let ahead = try store.commit([.assign(patient, "phone", "555-0100")], author: "per_1", site: nil)
        #expect(ahead.first?.clock.millis == 1_700_000_000_000 + UInt64(Self.year))
        #expect(try store.now() == 1_700_000_000_000 + UInt64(Self.year))

        let reopened = try LocalStore.open(at: path, configuration: .init(schema: Self.schema, wallClock: wall))
        #expect(try reopened.clockOffsetMillis() == Self.year, "the offset is kept in the store")

        // The offset shrinks back (the device's clock was fixed): stamps never go backwards.
        try reopened.setClockOffset(millis: 0)
        let after = try reopened.commit([.assign(patient, "phone", "555-0101")], author: "per_1", site: nil)
        let first = try #require(ahead.first?.clock)
        #expect(try #require(after.first?.clock) > first)
    }

    @Test func aNegativeOffsetIsSubtractedAndSaturatesAtZero() throws {
        let wall = ManualWallClock(millis: 1_000)
        let store = try LocalStore.create(
            at: temporaryPath(),
            configuration: .init(schema: Self.schema, wallClock: wall)
        )
        try store.setClockOffset(millis: -400)
        #expect(try store.now() == 600)
        try store.setClockOffset(millis: -5_000)
        #expect(try store.now() == 0)
    }
}
