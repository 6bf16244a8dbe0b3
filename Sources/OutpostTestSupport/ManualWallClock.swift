import OutpostCRDT
import Synchronization

/// A wall clock whose time the test sets and advances by hand, so that clocks and merges replay exactly.
///
/// It is a reference type: every component holding the same clock sees the same time. Time may be set
/// backwards, which is how tests check that hybrid logical clocks stay monotonic. For example:
///
/// ```swift
/// let wall = ManualWallClock(millis: 1_700_000_000_000)
/// var clock = HybridLogicalClock()
/// let first = clock.tick(wallMillis: wall.nowMillis())
/// wall.advance(by: -5_000)                        // the device's clock jumps back
/// #expect(clock.tick(wallMillis: wall.nowMillis()) > first)
/// ```
@available(macOS 15.0, iOS 18.0, tvOS 18.0, watchOS 11.0, visionOS 2.0, *)
public final class ManualWallClock: WallClock {
    private let millis: Mutex<UInt64>

    /// Creates a clock that reads `millis` until it is set or advanced.
    public init(millis: UInt64 = 1_700_000_000_000) {
        self.millis = Mutex(millis)
    }

    /// The current reading, in milliseconds since 1970.
    public func nowMillis() -> UInt64 {
        millis.withLock { $0 }
    }

    /// Sets the reading; it may go backwards.
    public func set(millis newValue: UInt64) {
        millis.withLock { $0 = newValue }
    }

    /// Moves the reading by `delta` milliseconds (negative goes backwards), saturating at 0 and at `UInt64.max`.
    ///
    /// - Returns: the new reading.
    @discardableResult
    public func advance(by delta: Int64) -> UInt64 {
        millis.withLock { value in
            if delta >= 0 {
                let (sum, overflow) = value.addingReportingOverflow(UInt64(delta))
                value = overflow ? .max : sum
            } else {
                let magnitude = delta.magnitude
                value = value > magnitude ? value - magnitude : 0
            }
            return value
        }
    }
}
