extension Array {
    /// Binary search in an array sorted by `keyOf`, each key once: whether `key` is present, and where it is or
    /// would go. The one search behind a field state's writes and ids, a record state's fields and a type's
    /// field specs.
    @inlinable
    public func sortedSlot<Key: Comparable>(of key: Key, by keyOf: (Element) -> Key) -> (found: Bool, index: Int) {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            let probe = keyOf(self[mid])
            if probe == key { return (true, mid) }
            if probe < key { low = mid + 1 } else { high = mid }
        }
        return (false, low)
    }
}
