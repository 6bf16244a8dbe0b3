import ArgumentParser
import OutpostClient
import OutpostCommandLine

/// The `outpost` command's one error type: a failure reported as one line on stderr with its exit code
/// (``ExitCode/runtimeFailure`` 1, ``ExitCode/badInput`` 2).
struct CLIError: CommandFailure {
    var message: String
    var exitCode: ExitCode

    /// Bad input: names what was wrong and how to fix it; exit 2.
    static func input(_ message: String) -> CLIError {
        CLIError(message: message, exitCode: .badInput)
    }

    /// A runtime failure; exit 1.
    static func runtime(_ message: String) -> CLIError {
        CLIError(message: message, exitCode: .runtimeFailure)
    }

    init(message: String, exitCode: ExitCode) {
        self.message = message
        self.exitCode = exitCode
    }

    /// Maps a client error: invalid edits and unknown records are the user's input (2); a missing, corrupt,
    /// newer or read-only store is a runtime failure (1).
    init(_ error: ClientError) {
        message = error.message
        switch error.code {
        case .invalidEdit, .unknownRecord:
            exitCode = .badInput
        default:
            exitCode = .runtimeFailure
        }
    }

    /// What the CLI reports for an error a command threw; `nil` for ArgumentParser's own (usage, help).
    static func reporting(_ error: any Error) -> CLIError? {
        switch error {
        case let error as CLIError: error
        case let error as ClientError: CLIError(error)
        default: nil
        }
    }
}
