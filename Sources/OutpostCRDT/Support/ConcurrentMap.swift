import Dispatch
import Synchronization

extension Array where Element: Sendable {
    /// `transform` of every element, in order, computed in `parts` contiguous slices on as many threads at once
    /// when the array holds at least `minimum` elements (on the calling thread otherwise). For work that reads
    /// only its element, such as decoding the stored states a write transaction has just read: the server's push
    /// loads thousands of records, and decoding them is CPU the store's one writer would otherwise spend alone.
    /// The first error thrown, in slice order, is rethrown.
    package func concurrentMap<T: Sendable>(
        parts: Int = 2,
        minimum: Int = 256,
        _ transform: @Sendable (Element) throws -> T
    ) throws -> [T] {
        guard count >= minimum, parts > 1 else { return try map(transform) }
        let size = (count + parts - 1) / parts
        let results = Mutex<[Result<[T], any Error>?]>([Result<[T], any Error>?](repeating: nil, count: parts))
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            // The last slices may be short or empty (5 elements in 4 parts: 2, 2, 1, 0).
            let bounds = Swift.min(count, part * size)..<Swift.min(count, (part + 1) * size)
            let slice = Result { try self[bounds].map(transform) }
            results.withLock { $0[part] = slice }
        }
        var mapped: [T] = []
        mapped.reserveCapacity(count)
        for result in results.withLock({ $0 }) { mapped.append(contentsOf: try result?.get() ?? []) }
        return mapped
    }
}
