public import ArgumentParser
import Foundation

/// A failure a command reports as one line on stderr, with its exit code: each executable has one such error
/// type (`CLIError` for `outpost`, `ServerCommandError` for `outpost-server`) and maps its libraries' errors to it.
public protocol CommandFailure: Error {
    /// What was wrong, where, and how to fix it; one line, never patient data.
    var message: String { get }
    /// The documented exit code.
    var exitCode: ExitCode { get }
}

extension ExitCode {
    /// A runtime failure (storage, network, a port taken): 1.
    public static let runtimeFailure = ExitCode.failure
    /// Bad usage or bad input: 2. ArgumentParser's own usage errors exit 64; Outpost documents 2 for both.
    public static let badInput = ExitCode(2)
}

/// How both executables start: parse, run, and turn every failure into one line on stderr and a documented exit
/// code (0 ok, 1 runtime error, 2 bad usage or input).
///
/// ```swift
/// @main
/// enum OutpostMain {
///     static func main() async {
///         await CommandLineTool.main(OutpostCommand.self) { error in (error as? CLIError) ?? … }
///     }
/// }
/// ```
public enum CommandLineTool {
    /// Runs the command the arguments name and exits.
    ///
    /// - Parameters:
    ///   - root: The root command; its `commandName` prefixes every error line (`outpost: …`).
    ///   - failure: Maps an error a command threw to the executable's failure type; `nil` leaves it to
    ///     ArgumentParser (help, version, usage errors, `ExitCode`), whose usage errors are cut to one line that
    ///     names the subcommand's `--help` and exit 2.
    public static func main<Root: ParsableCommand>(
        _ root: Root.Type,
        failure: (any Error) -> (any CommandFailure)?
    ) async -> Never {
        // Stores, exports, tokens and keys hold patient data or secrets: every file either executable creates is
        // readable by its owner only, whatever the shell's umask.
        umask(0o077)
        let name = root.configuration.commandName ?? "outpost"
        do {
            var command = try root.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            exit(ExitCode.success.rawValue)
        } catch {
            if let failure = failure(error) {
                writeError(name + ": " + failure.message)
                exit(failure.exitCode.rawValue)
            }
            let code = root.exitCode(for: error)
            if code == .success {
                // --help and --version.
                let message = root.fullMessage(for: error)
                if !message.isEmpty { print(message) }
                exit(ExitCode.success.rawValue)
            }
            // One line: what was wrong, and for bad usage where the usage is (ArgumentParser's own text spans
            // three).
            let message = root.message(for: error).split(separator: "\n").first.map(String.init) ?? ""
            guard code == .validationFailure else {
                if !message.isEmpty { writeError("\(name): \(message)") }
                exit(code.rawValue)
            }
            if !message.isEmpty {
                let path = commandPath(root, CommandLine.arguments.dropFirst())
                // ArgumentParser ends some messages with a period ("… was specified."): one stop, not ".;".
                let clause = message.hasSuffix(".") ? String(message.dropLast()) : message
                writeError("\(name): \(clause); see '\(path) --help'")
            }
            exit(ExitCode.badInput.rawValue)
        }
    }

    /// The subcommand path named by the leading arguments, for example `outpost patient list`: each subcommand's
    /// name is read from its usage line (`outpost patient list [<options>] …`), ArgumentParser's public text.
    static func commandPath<Root: ParsableCommand>(_ root: Root.Type, _ arguments: ArraySlice<String>) -> String {
        var command: any ParsableCommand.Type = root
        var path = [root.configuration.commandName ?? "outpost"]
        for argument in arguments {
            let next = command.configuration.subcommands.first { subcommand in
                let words = root.usageString(for: subcommand).split(whereSeparator: \.isWhitespace)
                return words.count > path.count && words[path.count] == argument
            }
            guard let next else { break }
            command = next
            path.append(argument)
        }
        return path.joined(separator: " ")
    }

    /// Writes one line to stderr.
    public static func writeError(_ line: String) {
        FileHandle.standardError.write(Data((line + (line.hasSuffix("\n") ? "" : "\n")).utf8))
    }
}
