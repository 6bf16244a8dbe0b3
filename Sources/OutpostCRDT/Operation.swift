/// What a change does to its field.
public enum Operation: String, Sendable, Hashable, Codable, CaseIterable {
    /// Set a register (`lww`, `review`, `status`) to the change's value, replacing the values named in
    /// ``Change/replaces``.
    case assign
    /// Add the change's value to a `set`; the change's id is the element's new tag.
    case add
    /// Remove the change's value from a `set`; ``Change/replaces`` names the tags the writer observed.
    case remove
    /// Append the change's value to a `log`.
    case append
}
