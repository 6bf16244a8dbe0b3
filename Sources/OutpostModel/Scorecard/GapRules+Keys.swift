extension GapRules {
    /// The keys of every ``marker(_:)`` in a task's title, in order: `[gap:a1c-due:none]` gives `a1c-due:none`.
    ///
    /// A title contains `marker(key)` exactly when `key` is one of these (keys hold no `]`), so a store can
    /// keep the keys instead of the title (the title is free text; the keys are rule names and record ids).
    public static func keys(inTitle title: String) -> [String] {
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
}
