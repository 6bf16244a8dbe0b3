import Foundation

/// One key file for every encrypted store a test run makes (`OUTPOST_KEY_FILE`): 32 random bytes, made once per
/// process, so stores copied between sandboxes (a template) open with the same key.
///
/// It is readable by every user (0644): tests that run `outpost` as an unprivileged user must be able to open
/// the store's key. It is a test key; real key files are their owner's only (`outpost init --key-file`).
public enum TestKeyFile {
    /// The key file's path.
    public static let path: String = {
        let folder = TestScratch.root.appendingPathComponent("test-key")
        try? FileManager.default.createDirectory(
            at: folder,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        let file = folder.appendingPathComponent("store.key").path
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        _ = FileManager.default.createFile(
            atPath: file,
            contents: Data(bytes),
            attributes: [.posixPermissions: 0o644]
        )
        // Whatever the umask: an unprivileged user running `outpost` in a test must read it.
        try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
        try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        return file
    }()
}
