/// Refuses JSON objects with keys a message does not define, so a misspelt field is an error rather than a
/// value silently dropped.
public enum StrictKeys {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Throws `DecodingError.dataCorrupted` naming the first key of the object being decoded that is not in
    /// `allowed`.
    public static func check(_ decoder: any Decoder, allowed: Set<String>) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath + [key],
                    debugDescription:
                        "unknown key '\(key.stringValue)'; allowed: \(allowed.sorted().joined(separator: ", "))"
                )
            )
        }
    }
}
