public import Foundation

/// What one run of an executable did.
public struct ProcessResult: Sendable, CustomStringConvertible {
    /// The exit status (or the signal number when the process was killed).
    public var status: Int32
    /// Everything written to standard output.
    public var stdout: String
    /// Everything written to standard error.
    public var stderr: String

    /// Standard output's lines, without the final empty one.
    public var lines: [String] { Self.lines(of: stdout) }
    /// Standard error's lines, without the final empty one.
    public var errorLines: [String] { Self.lines(of: stderr) }
    /// Standard output without the trailing newline.
    public var output: String { stdout.hasSuffix("\n") ? String(stdout.dropLast()) : stdout }

    public var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }

    private static func lines(of text: String) -> [String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return lines.last == "" ? Array(lines.dropLast()) : lines
    }
}

/// Runs the built executables in tests, as a user would.
public enum ChildProcess {
    /// Runs `executable` with `arguments` in `directory` with exactly `environment`, to completion. Output is
    /// captured through files in `directory`, so large output cannot block the child.
    public static func run(
        _ executable: URL,
        _ arguments: [String],
        in directory: URL,
        environment: [String: String]
    ) throws -> ProcessResult {
        let id = UUID().uuidString
        let outURL = directory.appendingPathComponent(".\(id).out")
        let errURL = directory.appendingPathComponent(".\(id).err")
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
        )
    }
}
