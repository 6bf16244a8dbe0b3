import Foundation

/// The test process's scratch folder: every test store and file the tests make without a folder of their own
/// goes under it, and it is removed when the process exits, so test runs do not pile folders up in the
/// temporary directory (a run left about 2,000 folders, 270 MB, before). A test that keeps its folder to read
/// after a failure copies it elsewhere; a process that crashes leaves its one folder behind.
public enum TestScratch {
    /// `outpost-tests-<pid>` in the temporary directory, made on first use; removed at exit.
    public static let root: URL = {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("outpost-tests-\(ProcessInfo.processInfo.processIdentifier)", isDirectory: true)
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        // Whatever the umask: tests run `outpost` as an unprivileged user, which opens the key file inside.
        try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.path)
        atexit { try? FileManager.default.removeItem(at: TestScratch.root) }
        return root
    }()

    /// A new folder's URL under ``root`` (not made: the caller or the store it opens makes it).
    public static func folder(_ prefix: String = "t") -> URL {
        root.appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
    }
}
