public import OutpostCRDT
public import OutpostProtocol

/// The storage the sync endpoints run on: the seam between the sync rules and SQL.
///
/// Every decision (may this token push this change, what a scoped pull contains, where a snapshot page ends)
/// is made by pure code, ``PushJudge`` and ``FeedPlanner``, from state a backend reads; a backend reads that
/// state and writes the outcome in one transaction, and holds no rule of its own. ``ServerStore`` is the
/// SQLite backend. Methods are `async` so that a backend on a networked database can implement them without
/// blocking a thread.
///
/// What every backend must guarantee (protocol/README.md, sections 6 and 7): a push's accepted changes are
/// stored all or nothing (every change, or with per-change refusals every change but the refused ones);
/// the feed position of a change is fixed when its transaction commits and no change commits below a position
/// a device has already been given.
public protocol SyncStorage: Sendable {
    /// The token whose secret hashes to `hash`, if any.
    func token(hash: String) async throws(ServerError) -> TokenEntry?

    /// The store's epoch (``EpochRule``): set when the store is created, replaced by every restore.
    func epoch() async throws(ServerError) -> String

    /// The highest feed position of a practice (0 when it has no changes).
    func feedHead(practice: String) async throws(ServerError) -> Int64

    /// The store's epoch and a practice's feed head, compaction floor (0 until it is compacted: a pull from below
    /// it is `410 checkpoint_expired`) and last purge, read together: what a snapshot's cursor is checked against
    /// and what decides whether kept snapshot pages may still be sent (``SnapshotCache``).
    func feedFacts(practice: String) async throws(ServerError) -> FeedFacts

    /// Binds `replica` to `token` on its first request; refuses a replica id bound to another token.
    func claimReplica(_ replica: ReplicaID, token: TokenEntry, now: UInt64) async throws(ServerError)

    /// Stores a device's push as ``PushJudge`` decides: all or nothing, or, with `perChange`, every change the
    /// judge accepts, the refused ones listed in the response (``PushJudge/judge(_:context:perChange:)``). A push
    /// that names records by abbreviation has them resolved among the practice's records in the same transaction,
    /// and is then decoded (``IncomingPush``). A push of changes whose `deviceEpoch` (the device's
    /// ``Wire/epochHeader``) is not the store's is refused in that transaction, before anything is read or stored
    /// (``EpochRule/checkPush(carriesChanges:deviceEpoch:epoch:)``).
    func push(
        _ incoming: IncomingPush,
        token: TokenEntry,
        report: DeviceReport,
        now: UInt64,
        maxClockSkewMillis: UInt64,
        perChange: Bool,
        deviceEpoch: String?
    ) async throws(ServerError) -> PushOutcome

    /// One page of the changes feed after `since` for `token`'s scope, leaving out `replica`'s own changes; for
    /// a scoped token, records which patients the device was sent or told to purge. A `since` of another epoch
    /// than `deviceEpoch` (the device's ``Wire/epochHeader``), ahead of the feed's head or below its compaction
    /// floor is refused in the page's transaction (``EpochRule/checkPull(since:head:deviceEpoch:epoch:)``).
    func pull(
        token: TokenEntry,
        replica: ReplicaID?,
        report: DeviceReport,
        since: Int64,
        limit: Int,
        now: UInt64,
        deviceEpoch: String?
    ) async throws(ServerError) -> FeedPage

    /// One page of the current records in `token`'s scope after `cursor`; the first page of a scoped device's
    /// snapshot records the patients it is being sent.
    func snapshot(
        token: TokenEntry,
        replica: ReplicaID?,
        after cursor: RecordRef?,
        limit: Int,
        sparingOwn: Bool
    ) async throws(ServerError) -> SnapshotSlice

    /// The number of open conflicts, across practices or in one.
    func openConflictCount(practice: String?) async throws(ServerError) -> Int

    /// Returns once every write the backend queued without waiting for it is done (the server is stopping).
    func finishWrites() async

    /// Calls `onGrowth` with a practice id whenever a push in any process grows that practice's feed, until the
    /// task is cancelled: how long polls wake across processes. A backend only one process uses returns at once
    /// (the process wakes its own long polls).
    func watchFeeds(_ onGrowth: @escaping @Sendable (String) async -> Void) async throws
}

extension SyncStorage {
    /// One process only: nothing to watch.
    public func watchFeeds(_ onGrowth: @escaping @Sendable (String) async -> Void) async throws {}

    /// Nothing queued: every write is awaited.
    public func finishWrites() async {}
}

/// A push as the route hands it to storage.
public enum IncomingPush: Sendable {
    /// Decoded: it names every record in full (JSON, or a binary push with no abbreviation).
    case decoded(PushRequest)
    /// A layout-3 push that names records by abbreviation (protocol/README.md, "Layout 3"): a backend resolves
    /// them among the practice's records (``RecordAbbreviation/resolve(among:)``: the ids in the same order, `nil`
    /// where the practice has none or several) and decodes the push with them, in the push's transaction (the
    /// SQLite backend keeps the rows the resolution read, so it reads each record once); `decode` throws the
    /// route's errors (the body malformed, a record not resolved, too many changes).
    case abbreviated([RecordAbbreviation], decode: @Sendable ([String?]) throws(ServerError) -> PushRequest)

    /// Whether the push carries changes (``EpochRule/checkPush(carriesChanges:deviceEpoch:epoch:)``): a decoded
    /// push with any; an abbreviated push always (it names records only in its changes).
    var carriesChanges: Bool {
        switch self {
        case .decoded(let push): !push.changes.isEmpty
        case .abbreviated(let abbreviations, _): !abbreviations.isEmpty
        }
    }
}

/// What a push did, for the response, the log and the metrics.
public struct PushOutcome: Sendable, Hashable {
    /// The replica that pushed.
    public var replica: ReplicaID
    /// The response sent to the device.
    public var response: PushResponse
    /// Conflicts opened by this push.
    public var newConflicts: Int
    /// Conflicts this push resolved.
    public var resolvedConflicts: Int
    /// Whether erasing records this push gave to purged patients moved a purge to a new feed position, which waiting
    /// pulls announce (``PushPlan/erasing``).
    public var movedPurge: Bool = false
}

/// One page of the changes feed for a token, ready to send.
public struct FeedPage: Sendable {
    /// The changes in the token's scope, in feed order.
    public var changes: [Change]
    /// The feed position after the last change scanned (or the request's, when none was).
    public var checkpoint: Int64
    /// Whether more changes follow at once.
    public var hasMore: Bool
    /// For a scoped token: the current records of patients that entered its scope.
    public var records: [SnapshotRecord] = []
    /// Patients that left the token's scope or were purged after the request's checkpoint, and beside a purged
    /// patient the records a push gave it after its purge (``ServerStore/purged(practice:since:db:)``): the device
    /// removes them.
    public var removed: [String] = []
    /// The ids of `removed` that left the token's scope and were not purged (``FeedPlanner/leftScope(removed:purged:)``).
    public var leftScope: [String] = []

    /// Records whose first stored change is among the page's (or may be: changes stored before servers
    /// recorded it): a device pulling the page cannot hold them yet, so layout 3 names them in full.
    public var created: Set<RecordRef> = []

    /// The records a device pulling the page from `since` holds among those the page names, which layout 3 names by
    /// abbreviation: it holds the feed through `since`, so every record a change of the page names but those the
    /// page creates (``created``) or carries whole (a patient entering a scoped device's scope); none from 0.
    public func recordsHeld(since: Int64) -> Set<RecordRef> {
        guard since > 0 else { return [] }
        return Set(changes.map(\.record)).subtracting(records.map(\.record)).subtracting(created)
    }

    /// Whether the page carries nothing for the device.
    public var isEmpty: Bool { changes.isEmpty && records.isEmpty && removed.isEmpty }
}

/// One page of a snapshot.
public struct SnapshotSlice: Sendable {
    /// The records of the page, sorted by type then id, their states as stored: a binary page is written from
    /// them without decoding them (``SnapshotPage/binaryEncoded(stored:checkpoint:next:layout:)``).
    public var records: [StoredRecordState]
    /// The feed position every record of the page includes.
    public var checkpoint: Int64
    /// The last record of the page when another page follows.
    public var next: RecordRef?
    /// On the first page: the ids the device is to remove (``FeedPlanner/removedOnBootstrap(purged:known:inScope:)``).
    public var removed: [String] = []
    /// The ids of `removed` that left the token's scope and were not purged (``FeedPlanner/leftScope(removed:purged:)``).
    public var leftScope: [String] = []
}

/// The store's epoch and a practice's feed positions, as one read saw them.
public struct FeedFacts: Sendable, Equatable {
    public var epoch: String
    /// The practice's feed head.
    public var head: Int64
    /// The practice's compaction floor (0 until it is compacted).
    public var floor: Int64
    /// The feed position of the practice's last purge, 0 without one.
    public var lastPurge: Int64

    public init(epoch: String, head: Int64, floor: Int64, lastPurge: Int64) {
        (self.epoch, self.head, self.floor, self.lastPurge) = (epoch, head, floor, lastPurge)
    }
}
