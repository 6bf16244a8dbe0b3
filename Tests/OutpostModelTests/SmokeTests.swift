import OutpostCRDT
import Testing

struct SmokeTests {
    @Test func clockTicksForward() {
        var clock = HybridLogicalClock()
        let first = clock.tick(wallMillis: 10)
        let second = clock.tick(wallMillis: 5)
        #expect(second > first)
    }
}
