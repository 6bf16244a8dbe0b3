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
    ///
    /// The caller is suspended, not blocked, while the child runs: its termination resumes it. Tests run on
    /// Swift's cooperative pool, one thread per core; a blocking wait there would stop every other test.
    public static func run(
        _ executable: URL,
        _ arguments: [String],
        in directory: URL,
        environment: [String: String]
    ) async throws -> ProcessResult {
        let capture = try Capture(in: directory)
        defer { capture.remove() }
        let process = capture.process(executable, arguments, in: directory, environment: environment)
        try await process.start().wait()
        return try capture.result(of: process)
    }

    /// ``run(_:_:in:environment:)`` blocking the calling thread until the child ends, for a caller that cannot
    /// suspend (a transport's synchronous hook): only for a short command. Its output goes through files too,
    /// never a pipe, whose end a process another test starts meanwhile may inherit and hold open (a read to the end
    /// of one once hung a CI run).
    public static func runBlocking(
        _ executable: URL,
        _ arguments: [String],
        in directory: URL,
        environment: [String: String]
    ) throws -> ProcessResult {
        let capture = try Capture(in: directory)
        defer { capture.remove() }
        let process = capture.process(executable, arguments, in: directory, environment: environment)
        try process.run()
        process.waitUntilExit()
        return try capture.result(of: process)
    }

    /// Starts `executable` with `arguments`, its output discarded, and leaves it to run: for a deinit, which can
    /// neither suspend nor block one of the cooperative pool's threads (Foundation reaps the child when it ends).
    public static func launch(_ executable: URL, _ arguments: [String]) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
    }

    /// A child's standard output and error, written to two files in a directory and read back once it ends.
    private final class Capture {
        let outURL: URL
        let errURL: URL
        let out: FileHandle
        let err: FileHandle

        init(in directory: URL) throws {
            let id = UUID().uuidString
            outURL = directory.appendingPathComponent(".\(id).out")
            errURL = directory.appendingPathComponent(".\(id).err")
            try Data().write(to: outURL)
            try Data().write(to: errURL)
            out = try FileHandle(forWritingTo: outURL)
            err = try FileHandle(forWritingTo: errURL)
        }

        /// A process writing to the files.
        func process(
            _ executable: URL,
            _ arguments: [String],
            in directory: URL,
            environment: [String: String]
        ) -> Process {
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.environment = environment
            process.currentDirectoryURL = directory
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = out
            process.standardError = err
            return process
        }

        /// What the ended `process` did.
        func result(of process: Process) throws -> ProcessResult {
            ProcessResult(
                status: process.terminationStatus,
                stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
            )
        }

        /// Closes and removes the files.
        func remove() {
            try? out.close()
            try? err.close()
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
    }
}

/// The end of a started child process, awaited without blocking a thread.
public final class ProcessExit: @unchecked Sendable {
    private let lock = NSLock()
    private var hasExited = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    fileprivate init() {}

    fileprivate func exited() {
        lock.lock()
        hasExited = true
        let resumed = waiting
        waiting = []
        lock.unlock()
        for continuation in resumed { continuation.resume() }
    }

    /// Suspends until the process has exited (at once if it has).
    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if hasExited {
                lock.unlock()
                continuation.resume()
            } else {
                waiting.append(continuation)
                lock.unlock()
            }
        }
    }
}

extension Process {
    /// Starts the process; the returned ``ProcessExit`` awaits its end. Use it instead of `run()` and
    /// `waitUntilExit()`, which blocks the calling thread, one of the cooperative pool's few.
    public func start() throws -> ProcessExit {
        let exit = ProcessExit()
        terminationHandler = { _ in exit.exited() }
        try run()
        return exit
    }
}

/// A value made once, on first use, by an async function (a fixture several tests share, such as a store made by
/// running the CLI); later callers wait for the first one's result.
public actor Once<Value: Sendable> {
    private let make: @Sendable () async -> Value
    private var task: Task<Value, Never>?

    public init(_ make: @escaping @Sendable () async -> Value) { self.make = make }

    /// The value, made by the first caller.
    public func get() async -> Value {
        if let task { return await task.value }
        let made = Task { await make() }
        task = made
        return await made.value
    }
}
