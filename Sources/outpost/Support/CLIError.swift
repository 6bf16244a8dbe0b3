import OutpostClient

/// A failure the CLI reports as one line on stderr with its exit code.
struct CLIError: Error {
    /// Exit code for a runtime failure (storage, network).
    static let runtime: Int32 = 1
    /// Exit code for bad usage or bad input.
    static let badInput: Int32 = 2

    var message: String
    var exitCode: Int32

    /// Bad input: names what was wrong and how to fix it; exit 2.
    static func input(_ message: String) -> CLIError {
        CLIError(message: message, exitCode: badInput)
    }

    /// A runtime failure; exit 1.
    static func runtime(_ message: String) -> CLIError {
        CLIError(message: message, exitCode: runtime)
    }

    init(message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    /// Maps a client error: invalid edits and unknown records are the user's input (2); a missing, corrupt,
    /// newer or read-only store is a runtime failure (1).
    init(_ error: ClientError) {
        message = error.message
        switch error.code {
        case .invalidEdit, .unknownRecord:
            exitCode = Self.badInput
        default:
            exitCode = Self.runtime
        }
    }
}
