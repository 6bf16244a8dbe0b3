import Dispatch
import Synchronization
import Testing

@testable import OutpostClient

/// ``BackgroundRelease`` frees values on its queue, but never lets more than its bound wait there: with its queue
/// held (a starved thread), the values past the bound are freed by the caller at once. A release of its own, so
/// other tests' pages do not share its places.
struct BackgroundReleaseTests {
    /// Counts its own deinitialization.
    final class Tracked: Sendable {
        let freed: @Sendable () -> Void
        init(_ freed: @escaping @Sendable () -> Void) { self.freed = freed }
        deinit { freed() }
    }

    @Test func valuesPastTheBoundAreFreedByTheCallerWhileTheQueueIsHeld() {
        let release = BackgroundRelease(maxQueued: 2)
        let freed = Mutex(0)
        let gate = DispatchSemaphore(value: 0)
        release.queue.async { gate.wait() }
        let dropped = 10
        for _ in 0..<dropped {
            release.drop(Tracked { freed.withLock { $0 += 1 } })
        }
        #expect(freed.withLock { $0 } == dropped - 2, "two values wait on the held queue, the rest are freed here")
        gate.signal()
        release.queue.sync {}
        #expect(freed.withLock { $0 } == dropped, "the queued values are freed once the queue runs")
        // The places are given back: the next values wait on the queue again.
        release.queue.async { gate.wait() }
        release.drop(Tracked { freed.withLock { $0 += 1 } })
        #expect(freed.withLock { $0 } == dropped)
        gate.signal()
        release.queue.sync {}
        #expect(freed.withLock { $0 } == dropped + 1)
    }
}
