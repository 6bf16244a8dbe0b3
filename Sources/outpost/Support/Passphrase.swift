import Foundation
import OutpostClient

/// Where a store's key comes from: `--key-file` (or `OUTPOST_KEY_FILE`), else `OUTPOST_PASSPHRASE`, else the
/// terminal, asked without echo.
enum Passphrase {
    /// The environment variable holding the passphrase.
    static let variable = "OUTPOST_PASSPHRASE"
    /// The environment variable holding the new passphrase of `outpost rekey`.
    static let newVariable = "OUTPOST_NEW_PASSPHRASE"
    /// The environment variable naming the key file.
    static let keyFileVariable = "OUTPOST_KEY_FILE"

    /// A non-empty environment variable.
    static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Reads one line from the controlling terminal with echo off; `nil` when not run from a terminal (standard
    /// input is not one: a script, a pipe, a test), so that nothing waits for a person who is not there.
    static func ask(_ prompt: String) -> String? {
        guard isatty(0) == 1 else { return nil }
        let tty = open("/dev/tty", O_RDWR | O_NOCTTY)
        guard tty >= 0 else { return nil }
        defer { close(tty) }
        var saved = termios()
        guard tcgetattr(tty, &saved) == 0 else { return nil }
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        guard tcsetattr(tty, TCSAFLUSH, &silent) == 0 else { return nil }
        defer {
            _ = tcsetattr(tty, TCSAFLUSH, &saved)
            _ = write(tty, "\n", 1)
        }
        _ = prompt.utf8CString.withUnsafeBufferPointer { write(tty, $0.baseAddress, $0.count - 1) }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(tty, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
            if byte != UInt8(ascii: "\r") { line.append(byte) }
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Asks for a new passphrase twice on the terminal; `nil` when there is no terminal.
    ///
    /// - Throws: ``CLIError`` (bad input) when the two differ or the passphrase is empty.
    static func askNew(for path: String) throws -> String? {
        guard let first = ask("new passphrase for \(path): ") else { return nil }
        guard !first.isEmpty else { throw CLIError.input("the passphrase is empty; choose a passphrase") }
        guard let second = ask("the same passphrase again: "), second == first else {
            throw CLIError.input("the two passphrases differ; nothing was changed, try again")
        }
        return first
    }

    /// The key of a new store or of `outpost rekey`: the key file (made when absent), else `passphraseVariable`,
    /// else a passphrase asked twice on the terminal. Returns the key and the key file made, if one was.
    ///
    /// - Throws: ``CLIError`` (bad input, `refusal`) when no key can be had; ``ClientError`` for a bad key file.
    static func newKey(
        keyFile: String?,
        passphraseVariable: String,
        for path: String,
        refusal: String
    ) throws
        -> (key: StoreKey, madeFile: String?)
    {
        if let keyFile {
            if FileManager.default.fileExists(atPath: keyFile) { return (try StoreKey.keyFile(at: keyFile), nil) }
            let key = try StoreKey.makeKeyFile(at: keyFile)
            Terminal.note(
                "created the key file \(keyFile): keep a copy away from this device; without it the store cannot be "
                    + "opened"
            )
            return (key, keyFile)
        }
        if let passphrase = environment(passphraseVariable) { return (try StoreKey.passphrase(passphrase), nil) }
        if let passphrase = try askNew(for: path) { return (try StoreKey.passphrase(passphrase), nil) }
        throw CLIError.input(refusal)
    }
}
