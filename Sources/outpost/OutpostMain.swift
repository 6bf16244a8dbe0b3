import ArgumentParser
import Foundation
import OutpostClient

/// Runs the CLI and maps every failure to one line on stderr and a documented exit code:
/// 0 ok, 1 runtime error (storage, network), 2 bad usage or input.
@main
enum OutpostMain {
    static func main() async {
        // Stores (with their -wal and -shm files), exports and FHIR exports hold patient data: every file this
        // process creates is readable by its owner only, whatever the shell's umask.
        umask(0o077)
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
            if code == .success {
                // --help and --version.
                let message = OutpostCommand.fullMessage(for: error)
                if !message.isEmpty { print(message) }
                exit(0)
            }
            // One line: what was wrong, and where the usage is (ArgumentParser's own text spans three).
            let message = OutpostCommand.message(for: error).split(separator: "\n").first.map(String.init) ?? ""
            if !message.isEmpty {
                Terminal.error(message + "; see '\(commandPath(CommandLine.arguments.dropFirst())) --help'")
            }
            // ArgumentParser's usage errors exit 64; Outpost documents 2 for every bad usage or input.
            exit(code == .validationFailure ? CLIError.badInput : code.rawValue)
        }
    }

    /// The subcommand path named by the leading arguments, for example `outpost patient list`.
    static func commandPath(_ arguments: ArraySlice<String>) -> String {
        var command: any ParsableCommand.Type = OutpostCommand.self
        var path = ["outpost"]
        for argument in arguments {
            guard
                let next = command.configuration.subcommands.first(where: {
                    $0._commandName == argument
                })
            else { break }
            command = next
            path.append(argument)
        }
        return path.joined(separator: " ")
    }
}
