import Dispatch
import Synchronization
import Testing

@testable import OutpostClient

/// ``BackgroundRelease`` frees values on its queue, but never lets more than ``BackgroundRelease/maxQueued`` wait
/// there: with its queue held (a starved thread), the values past the bound are freed by the caller at once.
struct BackgroundReleaseTests {
    /// Counts its own deinitialization.
    final class Tracked: Sendable {
        let freed: @Sendable () -> Void
        init(_ freed: @escaping @Sendable () -> Void) { self.freed = freed }
        deinit { freed() }
    }

    @Test func valuesPastTheBoundAreFreedByTheCallerWhileTheQueueIsHeld() {
        let freed = Mutex(0)
        let gate = DispatchSemaphore(value: 0)
        BackgroundRelease.queue.async { gate.wait() }
        let dropped = BackgroundRelease.maxQueued + 8
        for _ in 0..<dropped {
            BackgroundRelease.drop(Tracked { freed.withLock { $0 += 1 } })
        }
        // Other tests' pages may hold some of the queue's places too: then more of these are freed here.
        #expect(freed.withLock { $0 } >= 8, "at most \(BackgroundRelease.maxQueued) values wait on the held queue")
        gate.signal()
        BackgroundRelease.queue.sync {}
        #expect(freed.withLock { $0 } == dropped, "the queued values are freed once the queue runs")
    }
}
