import OutpostCRDT
import Synchronization

/// Snapshot pages built before they are asked for: when the server sends a page that has a next one, it starts
/// building that next page at once, so the device's request for it finds it built (or being built) instead of
/// waiting for the read, the encoding and the gzip behind its own decoding and writing.
///
/// A page is kept for the request that names exactly what it was built for (``Key``: the token as it was, the
/// replica, the cursor, the limit, `own=skip`, the encoding and the compression), is handed out once, and only
/// after that request passed every check a request passes (authentication, epoch, compaction floor). Its states
/// were read after the page before it and at most ``Policy/maxAgeMillis`` before it is sent; what changed since
/// reaches the device in the pull that follows every snapshot, as for a page read on request. A page not asked for
/// within ``Policy/maxAgeMillis`` is dropped, and at most ``Policy/maxPages`` are kept (the oldest dropped
/// first), so an abandoned bootstrap costs one page's work and memory for a few seconds.
///
/// Per process: behind several server processes a device whose next request lands on another process gets its
/// page built there, as without this.
final class PagePrefetch: Sendable {
    struct Policy: Sendable {
        /// Pages kept at once.
        var maxPages = 8
        /// How long a page waits for its request, in milliseconds.
        var maxAgeMillis: UInt64 = 10_000
    }

    /// What a request asks for, as far as the page's bytes depend on it.
    struct Key: Hashable, Sendable {
        /// The token as authenticated: a token whose scope or role changed is another key.
        var token: TokenEntry
        var replica: ReplicaID?
        /// The page's checkpoint and the record it starts after (the `after` cursor); `nil` for the first page.
        var checkpoint: Int64?
        var after: RecordRef?
        var limit: Int
        var sparingOwn: Bool
        /// The binary layout asked for, `nil` for JSON.
        var layout: UInt8?
        var gzip: Bool
    }

    /// A page ready to send: its body as sent (compressed when `gzip`), and where the next page starts.
    struct Page: Sendable {
        var body: [UInt8]
        var contentType: String
        var gzip: Bool
        /// A snapshot page's checkpoint (0 for a pull page).
        var checkpoint: Int64
        /// The next page's checkpoint and cursor, `nil` on the last page.
        var next: (checkpoint: Int64, after: RecordRef)?
    }

    private struct Entry {
        var page: Task<Page, any Error>
        var startedAt: UInt64
    }

    let policy: Policy
    private let pages = Mutex<[Key: Entry]>([:])

    init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// Starts building the page `key` names, unless it is kept already.
    func start(_ key: Key, now: UInt64, build: @escaping @Sendable () async throws -> Page) {
        let dropped = pages.withLock { table -> [Task<Page, any Error>] in
            guard table[key] == nil else { return [] }
            table[key] = Entry(page: Task { try await build() }, startedAt: now)
            let stale = Self.dropped(table.mapValues(\.startedAt), now: now, policy: policy)
            return stale.compactMap { table.removeValue(forKey: $0)?.page }
        }
        for task in dropped { task.cancel() }
    }

    /// The page built for `key`, handed out once; `nil` when none was started or it is too old.
    func take(_ key: Key, now: UInt64) -> Task<Page, any Error>? {
        let entry = pages.withLock { $0.removeValue(forKey: key) }
        guard let entry else { return nil }
        guard entry.startedAt + policy.maxAgeMillis > now else {
            entry.page.cancel()
            return nil
        }
        return entry.page
    }

    /// The pages kept: how many are waiting for their request.
    var count: Int { pages.withLock { $0.count } }

    /// The keys to drop from pages started at `started`: every one older than the policy's age, then the oldest
    /// past the policy's count.
    static func dropped(_ started: [Key: UInt64], now: UInt64, policy: Policy) -> [Key] {
        // Oldest first: the old ones, then as many of the rest as keep the newest `maxPages`.
        let oldestFirst = started.sorted { $0.value < $1.value }
        let stale = oldestFirst.prefix { $0.value + policy.maxAgeMillis <= now }
        return (stale + oldestFirst.dropFirst(stale.count).dropLast(policy.maxPages)).map(\.key)
    }
}
