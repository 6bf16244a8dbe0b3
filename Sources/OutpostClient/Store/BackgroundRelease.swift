import Dispatch

/// Frees large values (a page's held records, a snapshot page and its prepared forms) on one serial utility
/// queue instead of on the thread that writes the next page: freeing thousands of states, changes and rows took a
/// tenth of a page's apply.
enum BackgroundRelease {
    private static let queue = DispatchQueue(label: "outpost.release", qos: .utility)

    /// Drops `value` on the release queue. The caller must hold no other reference that outlives the call, or the
    /// value is freed wherever that last reference goes.
    static func drop<T>(_ value: consuming T) {
        let box = Box(value)
        queue.async { box.drop() }
    }

    /// Carries a value to the queue: nothing else refers to it once handed over, so the queue's thread frees it
    /// alone.
    private final class Box<T>: @unchecked Sendable {
        private var value: T?

        init(_ value: consuming T) { self.value = value }

        func drop() { value = nil }
    }
}
