/// A source of wall-clock time, injected so that clocks, merges and sessions stay deterministic in tests.
public protocol WallClock: Sendable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    func nowMillis() -> UInt64
}

/// A hybrid logical clock (Kulkarni et al., 2014) with a bound on accepted clock skew.
///
/// The clock reads no time by itself: every operation takes the current wall-clock reading, so callers
/// inject time and tests replay it. For example:
///
/// ```swift
/// var clock = HybridLogicalClock(maxSkewMillis: 60_000)
/// let local = clock.tick(wallMillis: wall.nowMillis())           // stamp a local write
/// try clock.receive(remote, wallMillis: wall.nowMillis())        // merge a remote stamp
/// ```
///
/// A remote timestamp more than ``maxSkewMillis`` ahead of the local wall clock is refused with
/// ``ClockSkewError``: accepting it would let a device with a runaway clock win every future
/// last-writer-wins decision. The clock is left unchanged when that happens.
public struct HybridLogicalClock: Sendable, Hashable {
    /// The largest timestamp this clock has issued or accepted.
    public private(set) var latest: Timestamp
    /// How far ahead of the local wall clock a received timestamp may be, in milliseconds.
    public var maxSkewMillis: UInt64

    /// Creates a clock that continues from `latest` (for example, a value restored from storage).
    public init(latest: Timestamp = .zero, maxSkewMillis: UInt64 = 5 * 60 * 1000) {
        self.latest = latest
        self.maxSkewMillis = maxSkewMillis
    }

    /// Issues a timestamp for a local event (a write, or a message about to be sent).
    ///
    /// The result is larger than every timestamp issued or accepted before, whatever the wall clock says.
    public mutating func tick(wallMillis: UInt64) -> Timestamp {
        if wallMillis > latest.millis {
            latest = Timestamp(millis: wallMillis, counter: 0)
        } else {
            latest = Self.successor(of: latest)
        }
        return latest
    }

    /// Merges a timestamp received from another replica and returns the clock's new reading.
    ///
    /// - Throws: ``ClockSkewError`` when `remote` is more than ``maxSkewMillis`` ahead of `wallMillis`;
    ///   the clock is not changed.
    @discardableResult
    public mutating func receive(_ remote: Timestamp, wallMillis: UInt64) throws(ClockSkewError) -> Timestamp {
        try Self.checkSkew(remote, wallMillis: wallMillis, maxSkewMillis: maxSkewMillis)
        let physical = max(wallMillis, latest.millis, remote.millis)
        if physical == latest.millis && physical == remote.millis {
            latest = Timestamp(millis: physical, counter: max(latest.counter, remote.counter))
            latest = Self.successor(of: latest)
        } else if physical == latest.millis {
            latest = Self.successor(of: latest)
        } else if physical == remote.millis {
            latest = Self.successor(of: remote)
        } else {
            latest = Timestamp(millis: physical, counter: 0)
        }
        return latest
    }

    /// Merges `count` timestamps received from another replica, each earlier than `wallMillis`, without reading
    /// them: the clock ends where `count` calls of ``receive(_:wallMillis:)`` with them would leave it, in any
    /// order. A timestamp behind the wall clock is neither refused nor continued from, so each such call is a
    /// ``tick(wallMillis:)``: the first moves the clock to the wall clock when it is behind, each one after to
    /// the successor (a counter past its largest value carries into the millisecond, as a tick's does).
    ///
    /// A replica applying a page of received states counts their writes and notes the latest millisecond once,
    /// off its writer; `latestMillis` is that latest millisecond. When it is not below `wallMillis` the call does
    /// nothing, and the caller receives each timestamp on its own.
    ///
    /// - Returns: whether the clock took the timestamps (`latestMillis < wallMillis`); when it did not, the caller
    ///   must receive each one.
    package mutating func receive(count: Int, latestMillis: UInt64, wallMillis: UInt64) -> Bool {
        guard latestMillis < wallMillis else { return false }
        guard count > 0 else { return true }
        var remaining = UInt64(count)
        if wallMillis > latest.millis {
            latest = Timestamp(millis: wallMillis, counter: 0)
            remaining -= 1
        }
        // Successors as one number: the millisecond above the counter's 32 bits.
        let counter = UInt64(latest.counter) + remaining
        latest = Timestamp(millis: latest.millis + (counter >> 32), counter: UInt32(truncatingIfNeeded: counter))
        return true
    }

    /// Checks that `remote` is at most `maxSkewMillis` ahead of `wallMillis`.
    ///
    /// - Throws: ``ClockSkewError`` naming how far ahead the timestamp is.
    public static func checkSkew(
        _ remote: Timestamp,
        wallMillis: UInt64,
        maxSkewMillis: UInt64
    ) throws(ClockSkewError) {
        if remote.millis > wallMillis, remote.millis - wallMillis > maxSkewMillis {
            throw ClockSkewError(aheadByMillis: remote.millis - wallMillis, maxSkewMillis: maxSkewMillis)
        }
    }

    private static func successor(of timestamp: Timestamp) -> Timestamp {
        if timestamp.counter == .max {
            return Timestamp(millis: timestamp.millis + 1, counter: 0)
        }
        return Timestamp(millis: timestamp.millis, counter: timestamp.counter + 1)
    }
}

/// A timestamp was too far ahead of the local wall clock to be accepted.
public struct ClockSkewError: Error, Sendable, Hashable, CustomStringConvertible {
    /// How far ahead of the local wall clock the timestamp was.
    public var aheadByMillis: UInt64
    /// The bound in force.
    public var maxSkewMillis: UInt64

    public var description: String {
        "clock skew: a timestamp is \(aheadByMillis) ms ahead of this clock, more than the \(maxSkewMillis) ms "
            + "allowed; correct the device's date and time, then retry"
    }
}
