import Foundation
public import OutpostCRDT

/// The real wall clock, for production use; tests inject their own ``WallClock``.
public struct SystemWallClock: WallClock {
    /// Creates the system clock.
    public init() {}

    /// Milliseconds since 1970, read from the system.
    public func nowMillis() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }
}
