import OutpostCRDT
import Synchronization

/// Whole-practice snapshot pages kept for the next device that bootstraps the same practice.
///
/// A snapshot's pages are the practice's records as read at or after its checkpoint; what changes after the
/// checkpoint reaches the device in the pull that follows every snapshot. So the pages one device was sent
/// may be sent again to the next one, with the same checkpoint, as long as the store still serves that
/// checkpoint as it did: the same epoch (no restore), the same compaction floor, no purge after it (a purged
/// patient is not sent from pages kept before the purge once the purge is seen), a feed not behind it, and, for
/// a new device's first page, a feed that has not moved on by more than ``Policy/maxLag`` positions since (the
/// pull after the snapshot grows with it). Each
/// request still passes every check a request passes (authentication, revocation, epoch, floor) before a kept
/// page is looked up, and the facts are read from the store on every request, so a purge, restore or compaction
/// by another process (an administration command, another server on PostgreSQL) is seen.
///
/// Only pages whose bytes depend on nothing but the practice, the feed and the request's form are kept: a
/// whole-practice token's, without `own=skip` (a scoped token's pages depend on its scope and record what the
/// device was sent; a spared page on the replica). A chain is the pages of one checkpoint, by the cursor each
/// follows; a new device's first page that may not be sent from the chain is built and starts a new chain.
/// At most ``Policy/maxBytes`` are kept, the chains used longest ago dropped first. Per process.
final class SnapshotCache: Sendable {
    struct Policy: Sendable {
        /// Bytes of pages kept at once, over every chain.
        var maxBytes = ServerConfiguration.standardSnapshotCacheMiB << 20
        /// How far the feed may have moved past a chain's checkpoint for a new device to be sent it.
        var maxLag: Int64 = 10_000
    }

    /// What a kept page's bytes depend on besides the feed: the practice and the request's form.
    struct ChainKey: Hashable, Sendable {
        var practice: String
        var limit: Int
        /// The binary layout asked for, `nil` for JSON.
        var layout: UInt8?
        var gzip: Bool
    }

    /// The pages of one checkpoint and what the store said when its first page was built.
    private struct Chain {
        var checkpoint: Int64
        var epoch: String
        var floor: Int64
        var pages: [RecordRef?: PagePrefetch.Page] = [:]
        var bytes = 0
        /// When it was last used, in ``State/uses``.
        var usedAt: UInt64
    }

    private struct State {
        var chains: [ChainKey: Chain] = [:]
        /// A count of the pages kept and sent: the order in which chains were used.
        var uses: UInt64 = 0
    }

    let policy: Policy
    private let state = Mutex(State())

    init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// Whether a chain built at `checkpoint` when the store said `epoch` and `floor` may be sent now, as the
    /// store says `now`; `first` for a new device's first page, which also bounds how far the feed moved on.
    static func isServable(
        checkpoint: Int64,
        epoch: String,
        floor: Int64,
        now: FeedFacts,
        first: Bool,
        policy: Policy
    ) -> Bool {
        guard now.epoch == epoch, now.floor == floor, now.lastPurge <= checkpoint, now.head >= checkpoint else {
            return false
        }
        guard CompactionPlanner.isServable(since: checkpoint, floor: now.floor) else { return false }
        return !first || now.head - checkpoint <= policy.maxLag
    }

    /// The kept page a request for `key` names: the first page (`checkpoint` and `after` `nil`) or the page after
    /// `after` of the chain of `checkpoint`; `nil` when none is kept or the chain may not be sent as `facts` say.
    func page(_ key: ChainKey, checkpoint: Int64?, after: RecordRef?, facts: FeedFacts) -> PagePrefetch.Page? {
        state.withLock { state -> PagePrefetch.Page? in
            guard let chain = state.chains[key] else { return nil }
            guard checkpoint == nil || checkpoint == chain.checkpoint, (checkpoint == nil) == (after == nil) else {
                return nil
            }
            let first = checkpoint == nil
            guard
                Self.isServable(
                    checkpoint: chain.checkpoint,
                    epoch: chain.epoch,
                    floor: chain.floor,
                    now: facts,
                    first: first,
                    policy: policy
                )
            else {
                // Past the lag, a new device's first page starts a new chain; anything else does not pass again.
                state.chains[key] = nil
                return nil
            }
            guard let page = chain.pages[after] else { return nil }
            state.uses += 1
            state.chains[key]?.usedAt = state.uses
            return page
        }
    }

    /// Whether the chain of `checkpoint` keeps the page after `after`.
    func keeps(_ key: ChainKey, checkpoint: Int64, after: RecordRef) -> Bool {
        state.withLock { $0.chains[key]?.checkpoint == checkpoint && $0.chains[key]?.pages[after] != nil }
    }

    /// Keeps `page`, built for `key` after `after` (`nil` for a first page) with the snapshot's `checkpoint`,
    /// when the store said `built` before it was built. A first page starts a new chain in place of the key's
    /// chain, unless that one is of a later checkpoint of the same epoch (two new devices at once: the later
    /// chain stays); a later page joins the chain of its checkpoint, if it is kept. Within ``Policy/maxBytes``, the
    /// other chains used longest ago go first; a page that would take its own chain past the bound alone is not
    /// kept, and the other chains stay.
    func keep(_ page: PagePrefetch.Page, key: ChainKey, checkpoint: Int64, after: RecordRef?, built: FeedFacts) {
        state.withLock { state in
            var chain: Chain
            if after == nil {
                if let kept = state.chains[key], kept.epoch == built.epoch, kept.checkpoint > checkpoint { return }
                chain = Chain(checkpoint: checkpoint, epoch: built.epoch, floor: built.floor, usedAt: 0)
            } else {
                guard let kept = state.chains[key], kept.checkpoint == checkpoint, kept.pages[after] == nil else {
                    return
                }
                chain = kept
            }
            guard chain.bytes + page.body.count <= policy.maxBytes else { return }
            chain.pages[after] = page
            chain.bytes += page.body.count
            state.uses += 1
            chain.usedAt = state.uses
            state.chains[key] = chain
            var total = state.chains.values.reduce(0) { $0 + $1.bytes }
            for (old, kept) in state.chains.sorted(by: { $0.value.usedAt < $1.value.usedAt })
            where total > policy.maxBytes && old != key {
                state.chains[old] = nil
                total -= kept.bytes
            }
        }
    }

    /// The bytes kept, over every chain.
    var bytes: Int { state.withLock { $0.chains.values.reduce(0) { $0 + $1.bytes } } }
}
