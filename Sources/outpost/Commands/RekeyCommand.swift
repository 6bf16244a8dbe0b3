import ArgumentParser
import Foundation
import OutpostClient

/// `outpost rekey`: lock an encrypted store with a new passphrase or key file.
struct Rekey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Change the passphrase or key file of an encrypted store; no record is rewritten.",
        discussion: """
            The store opens with its current key (--key-file, $OUTPOST_KEY_FILE, $OUTPOST_PASSPHRASE or the \
            terminal). The new key is --new-key-file (made when absent), else $OUTPOST_NEW_PASSPHRASE, else a \
            passphrase asked twice on the terminal. Afterwards the old key no longer opens this file; copies made \
            before (backups) still open with the old key.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(
        name: .customLong("new-key-file"),
        help: ArgumentHelp(
            "Lock the store with this key file (made when absent) instead of a passphrase.",
            valueName: "path"
        )
    )
    var newKeyFile: String?

    func run() throws {
        let path = storeOptions.path
        let store = try storeOptions.open().store
        guard store.isEncrypted else {
            throw CLIError.runtime(
                "the store at \(path) is not encrypted, so it has no key to change; make an encrypted one with "
                    + "'outpost init' (encrypted unless --no-encrypt) and sync it from the server, or, for a store that "
                    + "never synced, carry its records with 'outpost fhir export' and 'outpost fhir import'"
            )
        }
        let (key, madeFile) = try Passphrase.newKey(
            keyFile: newKeyFile,
            passphraseVariable: Passphrase.newVariable,
            for: path,
            refusal: "'outpost rekey' needs the new key: set \(Passphrase.newVariable), give --new-key-file, or run "
                + "on a terminal to be asked"
        )
        do {
            try store.rekey(to: key)
        } catch {
            if let madeFile { try? FileManager.default.removeItem(atPath: madeFile) }
            throw error
        }
        print("rekeyed the store at \(path): the new \(newKeyFile == nil ? "passphrase" : "key file") opens it")
    }
}
