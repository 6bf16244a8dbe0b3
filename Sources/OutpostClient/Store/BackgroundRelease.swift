import Dispatch
import Synchronization

/// Frees large values (a page's held records, a snapshot page and its prepared forms) on one serial utility
/// queue instead of on the thread that writes the next page: freeing thousands of states, changes and rows took a
/// tenth of a page's apply.
///
/// Bounded: at most ``maxQueued`` values wait on the queue; past that (the queue's thread starved on a busy
/// machine) the caller frees its value itself, so memory never grows with the pages written meanwhile.
final class BackgroundRelease: Sendable {
    /// The one the store and the sync engine use.
    static let shared = BackgroundRelease(maxQueued: 4)

    /// How many values may wait to be freed at once. A page hands over two (the transaction's held records, then
    /// the page itself), so four is two pages behind.
    let maxQueued: Int
    /// The queue values are freed on (internal for the tests, which hold it to see the bound).
    let queue = DispatchQueue(label: "outpost.release", qos: .utility)
    /// Values handed to the queue and not freed yet.
    private let queued = Atomic<Int>(0)

    init(maxQueued: Int) {
        self.maxQueued = maxQueued
    }

    /// Drops `value` on the shared release queue (``drop(_:)``).
    static func drop<T>(_ value: consuming T) {
        shared.drop(value)
    }

    /// Drops `value` on the release queue, or here when ``maxQueued`` values already wait there. The caller must
    /// hold no other reference that outlives the call, or the value is freed wherever that last reference goes.
    func drop<T>(_ value: consuming T) {
        guard queued.add(1, ordering: .relaxed).newValue <= maxQueued else {
            queued.subtract(1, ordering: .relaxed)
            return  // `value` is freed as the call ends.
        }
        let box = Box(value)
        queue.async { [self] in
            box.drop()
            queued.subtract(1, ordering: .relaxed)
        }
    }

    /// Carries a value to the queue: nothing else refers to it once handed over, so the queue's thread frees it
    /// alone.
    private final class Box<T>: @unchecked Sendable {
        private var value: T?

        init(_ value: consuming T) { self.value = value }

        func drop() { value = nil }
    }
}
