extension GapRules {
    /// The keys of every ``marker(_:)`` in a task's title, in order: `[gap:a1c-due:none]` gives `a1c-due:none`.
    ///
    /// A title contains `marker(key)` exactly when `key` is one of these (keys hold no `]`), so a store can
    /// keep the keys instead of the title (the title is free text; the keys are rule names and record ids).
    public static func keys(inTitle title: String) -> [String] {
        // An ASCII title (the usual one) is read as bytes, where a character is a byte: the same keys, without
        // breaking the title into characters (every projected task's title is read).
        if let keys = title.utf8.withContiguousStorageIfAvailable(asciiKeys(inTitle:)), let keys { return keys }
        var keys: [String] = []
        let characters = Array(title)
        let opening = Array("[gap:")
        var index = 0
        while index + opening.count <= characters.count {
            guard characters[index..<index + opening.count].elementsEqual(opening) else {
                index += 1
                continue
            }
            let start = index + opening.count
            guard let end = characters[start...].firstIndex(of: "]") else { break }
            keys.append(String(characters[start..<end]))
            index = start
        }
        return keys
    }

    private static let asciiOpening = Array("[gap:".utf8)

    /// ``keys(inTitle:)`` of a title's UTF-8 bytes when they are all ASCII; `nil` otherwise.
    private static func asciiKeys(inTitle bytes: UnsafeBufferPointer<UInt8>) -> [String]? {
        var keys: [String] = []
        let opening = asciiOpening
        var index = 0
        var isASCII = true
        for byte in bytes where byte >= 0x80 { isASCII = false }
        guard isASCII else { return nil }
        while index + opening.count <= bytes.count {
            guard bytes[index..<index + opening.count].elementsEqual(opening) else {
                index += 1
                continue
            }
            let start = index + opening.count
            guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "]")) else { break }
            keys.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
            index = start
        }
        return keys
    }
}
