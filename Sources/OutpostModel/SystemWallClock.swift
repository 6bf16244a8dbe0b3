import Foundation
public import OutpostCRDT

/// The real wall clock, the one every target reads time from (the client's store, the server, both
/// executables); tests inject their own ``WallClock``.
///
/// It lives here, the lowest target that may read a clock: the CRDT core reads none, and the model's rules
/// take the time (`today`, `now`) as an argument, so this clock is only ever passed in from outside.
public struct SystemWallClock: WallClock {
    /// Creates the system clock.
    public init() {}

    /// Milliseconds since 1970, read from the system.
    public func nowMillis() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }
}
