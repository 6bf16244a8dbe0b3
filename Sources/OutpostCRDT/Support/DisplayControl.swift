/// The characters that act on a terminal or reorder what is shown, rather than being read: C0 controls, DEL, C1
/// controls, and the bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069). The care model
/// refuses them in text (`CareModel.firstControl`), and the CLI prints any stored one as an escape
/// (`TablePrinter.printable`): one definition for both.
public enum DisplayControl {
    /// Whether `text` may hold one, by one pass over its bytes: C0 and DEL are single bytes, C1 controls start with
    /// 0xC2 and the bidirectional ones with 0xE2 in UTF-8. `false` settles it (ordinary text, the common case).
    public static func mayHold(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F || $0 == 0xC2 || $0 == 0xE2 }
    }

    /// Whether `scalar` is one.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value)
            || (0x2066...0x2069).contains(value)
    }
}
