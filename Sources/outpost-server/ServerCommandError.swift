import ArgumentParser
import OutpostCommandLine
import OutpostServer

/// The `outpost-server` command's one error type: a failure reported as one line on stderr with its exit code
/// (``ExitCode/runtimeFailure`` 1, ``ExitCode/badInput`` 2).
struct ServerCommandError: CommandFailure {
    var message: String
    var exitCode: ExitCode

    /// A runtime failure (the store cannot be opened, the server stopped); exit 1.
    static func runtime(_ message: String) -> ServerCommandError {
        ServerCommandError(message: message, exitCode: .runtimeFailure)
    }

    /// Maps a server error: the caller's mistake (a 4xx: an unknown practice, a bad id) is bad input (2);
    /// anything else a runtime failure (1).
    init(_ error: ServerError) {
        message = error.message
        exitCode = error.isClientError ? .badInput : .runtimeFailure
    }

    init(message: String, exitCode: ExitCode) {
        self.message = message
        self.exitCode = exitCode
    }

    /// What the server command reports for an error a command threw; `nil` for ArgumentParser's own (usage,
    /// help, `ValidationError`).
    static func reporting(_ error: any Error) -> ServerCommandError? {
        switch error {
        case let error as ServerCommandError: error
        case let error as ServerError: ServerCommandError(error)
        default: nil
        }
    }
}
