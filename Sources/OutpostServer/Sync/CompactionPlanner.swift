/// The decisions of coordinated compaction on the server (docs/sync.md, "Compaction"), from state a backend
/// reads: where a practice's feed floor may move, and which devices hold it back or lost their checkpoint to it.
/// What may be dropped below the floor is ``OutpostModel/CompactionRule``, shared with the devices.
public enum CompactionPlanner {
    /// A device as compaction sees it.
    public struct Device: Sendable, Hashable {
        /// Its replica id.
        public var replica: String
        /// The feed position it is known to hold; `nil` when it has never pulled (it bootstraps from a snapshot).
        ///
        /// Not the checkpoint last sent to it: a device may never write a page it was sent (the answer lost, the
        /// process killed), and it asks for the next page before writing this one (pipelined pulls), so the
        /// checkpoint a pull is asked from may itself be unwritten. What it holds is the lower of the checkpoints
        /// its last two pulls were asked from: the second was asked for after the page before the first was
        /// written, or, if that write failed, from lower down. A device that has not pulled since this rule came
        /// (schema `v12-device-held`) counts at its last checkpoint sent, as before.
        public var heldTo: Int64?
        /// When it was last seen, in milliseconds since 1970.
        public var lastSeenMillis: UInt64
        /// Whether an administrator retired it.
        public var isRetired: Bool

        /// Creates a device.
        public init(replica: String, heldTo: Int64?, lastSeenMillis: UInt64, isRetired: Bool) {
            self.replica = replica
            self.heldTo = heldTo
            self.lastSeenMillis = lastSeenMillis
            self.isRetired = isRetired
        }
    }

    /// Where the floor goes and why.
    public struct Floor: Sendable, Hashable {
        /// The new floor: changes at or below it may be dropped, and a pull from below it is
        /// `410 checkpoint_expired`.
        public var position: Int64
        /// Active devices whose checkpoint is the floor: they hold it back (sorted).
        public var heldBy: [String]
        /// Devices gone longer than the horizon (or retired) whose checkpoint is below the floor: their next pull
        /// is `410 checkpoint_expired` and they bootstrap again, keeping their outbox (sorted).
        public var expired: [String]
    }

    /// The floor of a practice whose feed head is `head` and whose floor is `current`: the lowest position an
    /// active device is known to hold, or the head when no active device has pulled. A device is active when it is
    /// not retired and was seen less than `horizonMillis` before `now`; one that has never pulled holds nothing
    /// back (it starts from a snapshot). The floor never moves back and never passes the head.
    public static func floor(
        head: Int64,
        current: Int64,
        devices: [Device],
        now: UInt64,
        horizonMillis: UInt64
    ) -> Floor {
        func isActive(_ device: Device) -> Bool {
            !device.isRetired && (now < device.lastSeenMillis || now - device.lastSeenMillis < horizonMillis)
        }
        let holding = devices.filter(isActive).compactMap { device in device.heldTo.map { (device.replica, $0) } }
        let lowest = holding.map(\.1).min() ?? head
        let position = max(current, min(head, lowest))
        return Floor(
            position: position,
            heldBy: holding.filter { $0.1 == position }.map(\.0).sorted(),
            expired: devices.filter { !isActive($0) && ($0.heldTo ?? 0) < position && $0.heldTo != nil }
                .map(\.replica).sorted()
        )
    }

    /// Whether a pull from `since` (or a snapshot cursor at `since`) can be served above `floor`: a position
    /// below the floor may have lost changes the device has not seen.
    public static func isServable(since: Int64, floor: Int64) -> Bool {
        since >= floor
    }
}
