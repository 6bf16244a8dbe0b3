import Metrics

/// Wakes long-polling pulls when a practice's feed grows.
///
/// Each practice has a generation that every accepted push increments. A waiter reads the generation
/// before it looks at the feed and then waits for a later one, so a push that lands between the look and
/// the wait is never missed.
actor FeedNotifier {
    private var generations: [String: UInt64] = [:]
    private var waiters: [String: [Int: CheckedContinuation<Void, Never>]] = [:]
    private var released: Set<Int> = []
    private var nextWaiter = 0
    private var isClosed = false
    private var waiting = 0
    private let liveGauge = Gauge(label: "outpost_live_connections")

    /// Counts a live pull in or out, for the `outpost_live_connections` gauge (devices connected live).
    private func count(_ delta: Int) {
        waiting += delta
        liveGauge.record(waiting)
    }

    /// The practice's current generation.
    func generation(of practice: String) -> UInt64 {
        generations[practice, default: 0]
    }

    /// Records that the practice's feed grew and wakes its waiters.
    func notify(_ practice: String) {
        generations[practice, default: 0] += 1
        for waiter in (waiters.removeValue(forKey: practice) ?? [:]).values { waiter.resume() }
    }

    /// Wakes every waiter and makes later waits return at once (the server is stopping).
    func close() {
        isClosed = true
        for (_, group) in waiters { for waiter in group.values { waiter.resume() } }
        waiters = [:]
    }

    /// Returns when the practice's generation passes `generation`, when the server closes, or when `release`
    /// is called with the returned token, whichever comes first.
    func wait(_ practice: String, after generation: UInt64, token: Int) async {
        if released.remove(token) != nil || isClosed || generations[practice, default: 0] > generation { return }
        await withCheckedContinuation { continuation in
            waiters[practice, default: [:]][token] = continuation
        }
    }

    /// A fresh waiter token.
    func makeToken() -> Int {
        nextWaiter += 1
        return nextWaiter
    }

    /// Releases one waiter (its time is up).
    func release(_ practice: String, token: Int) {
        if let waiter = waiters[practice]?.removeValue(forKey: token) {
            waiter.resume()
        } else {
            released.insert(token)
        }
    }

    /// Forgets a finished waiter's token.
    func forget(_ token: Int) {
        released.remove(token)
    }

    /// Waits at most `timeout` for the practice's feed to grow past `generation`.
    nonisolated func wait(_ practice: String, after generation: UInt64, timeout: Duration) async {
        let token = await makeToken()
        await count(1)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(practice, after: generation, token: token) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                await self.release(practice, token: token)
            }
            await group.next()
            group.cancelAll()
            await self.release(practice, token: token)
        }
        await forget(token)
        await count(-1)
    }
}
