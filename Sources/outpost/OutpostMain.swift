import ArgumentParser
import Foundation
import OutpostClient

/// Runs the CLI and maps every failure to one line on stderr and a documented exit code:
/// 0 ok, 1 runtime error (storage, network), 2 bad usage or input.
@main
enum OutpostMain {
    static func main() async {
        do {
            var command = try OutpostCommand.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            Terminal.error(error.message)
            exit(error.exitCode)
        } catch let error as ClientError {
            let cliError = CLIError(error)
            Terminal.error(cliError.message)
            exit(cliError.exitCode)
        } catch {
            let code = OutpostCommand.exitCode(for: error)
            let message = OutpostCommand.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                exit(0)
            }
            if !message.isEmpty { Terminal.error(message, prefixed: !message.hasPrefix("Error:")) }
            // ArgumentParser's usage errors exit 64; Outpost documents 2 for every bad usage or input.
            exit(code == .validationFailure ? CLIError.badInput : code.rawValue)
        }
    }
}
