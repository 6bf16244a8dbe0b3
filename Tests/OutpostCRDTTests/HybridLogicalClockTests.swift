import OutpostCRDT
import OutpostTestSupport
import Testing

struct HybridLogicalClockTests {
    @Test func ticksStayMonotonicWhenTheWallClockGoesBackwards() {
        let wall = ManualWallClock(millis: 10_000)
        var clock = HybridLogicalClock()
        var previous = clock.tick(wallMillis: wall.nowMillis())
        #expect(previous == Timestamp(millis: 10_000, counter: 0))
        for delta: Int64 in [-5_000, 0, -1, 3, -9_000, 20_000, -20_000, 1] {
            wall.advance(by: delta)
            let next = clock.tick(wallMillis: wall.nowMillis())
            #expect(next > previous, "after moving the wall clock by \(delta) ms")
            #expect(next.millis >= wall.nowMillis())
            previous = next
        }
    }

    @Test(arguments: propertySeeds)
    func everyReadingExceedsEveryEarlierOneWhateverTheWallClockDoes(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        var clock = HybridLogicalClock(maxSkewMillis: 1_000)
        var wall: UInt64 = 1_000_000
        var previous = Timestamp.zero
        for _ in 0..<50 {
            wall = UInt64(Int64(wall) + Int64.random(in: -500...500, using: &random))
            let next: Timestamp
            if Bool.random(using: &random) {
                next = clock.tick(wallMillis: wall)
            } else {
                let remote = Timestamp(
                    millis: UInt64(Int64(wall) + Int64.random(in: -2_000...1_000, using: &random)),
                    counter: UInt32.random(in: 0...3, using: &random)
                )
                next = try clock.receive(remote, wallMillis: wall)
                #expect(next > remote, "seed \(seed)")
            }
            #expect(next > previous, "seed \(seed)")
            #expect(clock.latest == next, "seed \(seed)")
            previous = next
        }
    }

    @Test func receivingAStampAheadOfBothClocksContinuesFromIt() throws {
        var clock = HybridLogicalClock(latest: Timestamp(millis: 1_000, counter: 4))
        let result = try clock.receive(Timestamp(millis: 1_500, counter: 7), wallMillis: 1_200)
        #expect(result == Timestamp(millis: 1_500, counter: 8))
        #expect(clock.latest == result)
    }

    @Test func receivingAStampBehindTheClockAdvancesTheCounter() throws {
        var clock = HybridLogicalClock(latest: Timestamp(millis: 2_000, counter: 4))
        let result = try clock.receive(Timestamp(millis: 1_500, counter: 9), wallMillis: 1_800)
        #expect(result == Timestamp(millis: 2_000, counter: 5))
    }

    @Test func receivingWhenTheWallClockIsAheadOfBothStartsANewMillisecond() throws {
        var clock = HybridLogicalClock(latest: Timestamp(millis: 2_000, counter: 4))
        let result = try clock.receive(Timestamp(millis: 2_500, counter: 9), wallMillis: 3_000)
        #expect(result == Timestamp(millis: 3_000, counter: 0))
    }

    @Test func receivingAStampInTheClocksMillisecondTakesTheLargerCounterPlusOne() throws {
        var ahead = HybridLogicalClock(latest: Timestamp(millis: 2_000, counter: 4))
        #expect(
            try ahead.receive(Timestamp(millis: 2_000, counter: 9), wallMillis: 1_000)
                == Timestamp(millis: 2_000, counter: 10)
        )
        var behind = HybridLogicalClock(latest: Timestamp(millis: 2_000, counter: 12))
        #expect(
            try behind.receive(Timestamp(millis: 2_000, counter: 9), wallMillis: 2_000)
                == Timestamp(millis: 2_000, counter: 13)
        )
    }

    @Test func receivingAStampEqualToTheClockStillAdvancesIt() throws {
        let stamp = Timestamp(millis: 2_000, counter: 3)
        var clock = HybridLogicalClock(latest: stamp)
        #expect(try clock.receive(stamp, wallMillis: 2_000) == Timestamp(millis: 2_000, counter: 4))
    }

    @Test func aStampTooFarAheadIsRefusedAndTheClockIsUnchanged() throws {
        let start = Timestamp(millis: 10_000, counter: 2)
        var clock = HybridLogicalClock(latest: start, maxSkewMillis: 60_000)
        let error = #expect(throws: ClockSkewError.self) {
            try clock.receive(Timestamp(millis: 70_001, counter: 0), wallMillis: 10_000)
        }
        #expect(error?.aheadByMillis == 60_001)
        #expect(error?.maxSkewMillis == 60_000)
        #expect(error?.description.contains("60001 ms ahead") == true)
        #expect(clock.latest == start)
        #expect(clock.tick(wallMillis: 10_000) == Timestamp(millis: 10_000, counter: 3))
    }

    @Test func aStampExactlyAtTheSkewBoundIsAccepted() throws {
        var clock = HybridLogicalClock(latest: .zero, maxSkewMillis: 60_000)
        #expect(
            try clock.receive(Timestamp(millis: 70_000, counter: 0), wallMillis: 10_000)
                == Timestamp(millis: 70_000, counter: 1)
        )
        #expect(throws: Never.self) {
            try HybridLogicalClock.checkSkew(Timestamp(millis: 5, counter: 0), wallMillis: 10_000, maxSkewMillis: 0)
        }
    }

    @Test func aCounterOverflowRollsIntoTheNextMillisecond() throws {
        var ticking = HybridLogicalClock(latest: Timestamp(millis: 5_000, counter: .max))
        #expect(ticking.tick(wallMillis: 4_000) == Timestamp(millis: 5_001, counter: 0))
        #expect(ticking.tick(wallMillis: 5_001) == Timestamp(millis: 5_001, counter: 1))

        var receiving = HybridLogicalClock(latest: Timestamp(millis: 5_000, counter: 3))
        let result = try receiving.receive(Timestamp(millis: 5_000, counter: .max), wallMillis: 5_000)
        #expect(result == Timestamp(millis: 5_001, counter: 0))

        var remoteAhead = HybridLogicalClock()
        let ahead = try remoteAhead.receive(Timestamp(millis: 5_000, counter: .max), wallMillis: 4_000)
        #expect(ahead == Timestamp(millis: 5_001, counter: 0))
    }

    /// Timestamps behind the wall clock, received by count and their latest millisecond, move the clock as
    /// receiving each of them would: from a clock behind the wall clock, at it, ahead of it, and with its counter
    /// close to carrying into the next millisecond. At or ahead of the wall clock they are not taken.
    @Test(arguments: propertySeeds.prefix(100))
    func timestampsBehindTheWallClockReceivedByCountAsEachWouldBe(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let wall = UInt64.random(in: 1_000...1_000_000, using: &random)
        let start = Timestamp(
            millis: [wall - 1, wall, wall + UInt64.random(in: 1...5_000, using: &random), 0].randomElement(
                using: &random
            )!,
            counter: Bool.random(using: &random)
                ? UInt32.random(in: 0...10, using: &random) : .max - UInt32.random(in: 0...3, using: &random)
        )
        let count = Int.random(in: 0...12, using: &random)
        let remotes = (0..<count).map { _ in
            Timestamp(
                millis: UInt64.random(in: 0..<wall, using: &random),
                counter: Bool.random(using: &random) ? .max : UInt32.random(in: 0...5, using: &random)
            )
        }
        var oneByOne = HybridLogicalClock(latest: start)
        for remote in remotes { #expect(throws: Never.self) { try oneByOne.receive(remote, wallMillis: wall) } }
        var counted = HybridLogicalClock(latest: start)
        let latestMillis = remotes.map(\.millis).max() ?? 0
        let taken = counted.receive(count: count, latestMillis: latestMillis, wallMillis: wall)
        #expect(taken)
        #expect(counted.latest == oneByOne.latest, "seed \(seed): \(count) from \(start) at \(wall)")

        var untouched = HybridLogicalClock(latest: start)
        let atTheWall = untouched.receive(count: count + 1, latestMillis: wall, wallMillis: wall)
        let ahead = untouched.receive(count: count + 1, latestMillis: wall + 1, wallMillis: wall)
        #expect(!atTheWall && !ahead)
        #expect(untouched.latest == start)
    }

    @Test func timestampsOrderByMillisThenCounter() {
        #expect(Timestamp(millis: 1, counter: 9) < Timestamp(millis: 2, counter: 0))
        #expect(Timestamp(millis: 2, counter: 0) < Timestamp(millis: 2, counter: 1))
        #expect(Timestamp.zero < Timestamp(millis: 0, counter: 1))
        #expect(Timestamp(millis: 3, counter: 4).description == "3.4")
    }

    @Test func theManualWallClockIsSetAndAdvancedByHandAndSaturates() {
        let wall = ManualWallClock(millis: 100)
        #expect(wall.nowMillis() == 100)
        #expect(wall.advance(by: 50) == 150)
        #expect(wall.advance(by: -1_000) == 0)
        wall.set(millis: .max - 1)
        #expect(wall.advance(by: 10) == .max)
        let shared: any WallClock = wall
        wall.set(millis: 7)
        #expect(shared.nowMillis() == 7)
    }
}
