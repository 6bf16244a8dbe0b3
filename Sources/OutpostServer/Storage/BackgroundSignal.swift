import Synchronization

/// Wakes a store's background task (``WALCheckpointer``, ``TailFolder``): each signal asks for one pass of its
/// work, and signals that arrive while a pass runs make one more pass, not a queue.
final class BackgroundSignal: Sendable {
    private let continuation: AsyncStream<Void>.Continuation
    private let stream: AsyncStream<Void>
    private let task = Mutex<Task<Void, Never>?>(nil)

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a pass.
    func signal() { continuation.yield() }

    /// Runs `pass` on a detached task of utility priority once per signal, until ``stop(cancelling:)``; then `end`.
    func start(_ pass: @escaping @Sendable () async -> Void, end: @escaping @Sendable () -> Void = {}) {
        let stream = stream
        let started = Task.detached(priority: .utility) {
            for await _ in stream { await pass() }
            end()
        }
        task.withLock { $0 = started }
    }

    /// Ends the task after the pass it may be running; with `cancelling`, that pass is cancelled too (its waits
    /// end at once).
    func stop(cancelling: Bool = false) {
        continuation.finish()
        if cancelling { task.withLock { $0?.cancel() } }
    }
}
