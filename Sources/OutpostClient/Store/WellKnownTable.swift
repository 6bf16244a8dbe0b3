/// A frozen list of strings found by their UTF-8 bytes without hashing: by length and first byte, then compared
/// byte for byte with the few strings of that length and first byte. The store's rows look every field name and
/// every text value up in ``StoreCodec/wellKnown`` as they are written; a dictionary hashed each one, a quarter
/// of the processor time of encoding a state.
struct WellKnownTable: Sendable {
    /// The longest string's length in bytes: a longer text is not looked up.
    let maxLength: Int
    /// Where each bucket's entries start in ``positions``, and (at the next bucket's place) end. A bucket is a
    /// length and a first byte: `length << 8 | first`.
    private let starts: [Int32]
    /// Each entry's place in the list.
    private let positions: [UInt64]
    /// Where each entry's bytes start in ``bytes`` (its length is its bucket's).
    private let offsets: [Int]
    /// Every entry's bytes, one after another.
    private let bytes: [UInt8]

    init(_ strings: [String]) {
        maxLength = strings.map(\.utf8.count).max() ?? 0
        var buckets = [[Int]](repeating: [], count: (maxLength + 1) << 8)
        for (position, text) in strings.enumerated() where !text.isEmpty {
            buckets[text.utf8.count << 8 | Int(text.utf8.first!)].append(position)
        }
        var starts: [Int32] = [0]
        var positions: [UInt64] = []
        var offsets: [Int] = []
        var bytes: [UInt8] = []
        for bucket in buckets {
            for position in bucket {
                positions.append(UInt64(position))
                offsets.append(bytes.count)
                bytes.append(contentsOf: strings[position].utf8)
            }
            starts.append(Int32(positions.count))
        }
        self.starts = starts
        self.positions = positions
        self.offsets = offsets
        self.bytes = bytes
    }

    /// The place in the list of the string whose UTF-8 bytes are `text`, `nil` when none.
    func index(of text: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard text.count <= maxLength, let first = text.first else { return nil }
        let bucket = text.count << 8 | Int(first)
        let end = Int(starts[bucket + 1])
        var entry = Int(starts[bucket])
        guard entry < end else { return nil }
        return bytes.withUnsafeBufferPointer { held in
            while entry < end {
                let offset = offsets[entry]
                var at = 1  // the first byte is the bucket's
                while at < text.count, held[offset + at] == text[at] { at += 1 }
                if at == text.count { return positions[entry] }
                entry += 1
            }
            return nil
        }
    }
}
