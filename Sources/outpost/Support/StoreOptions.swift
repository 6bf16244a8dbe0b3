import ArgumentParser
import Foundation
import OutpostClient

/// The `--store` option every command takes, with its environment and per-user defaults.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Path of this replica's store.",
            discussion: "Defaults to $OUTPOST_STORE, else $XDG_DATA_HOME/outpost/store.sqlite, else "
                + "~/.local/share/outpost/store.sqlite.",
            valueName: "path"
        )
    )
    var store: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Key file of an encrypted store.",
            discussion: "Defaults to $OUTPOST_KEY_FILE. Without one, an encrypted store's passphrase is read from "
                + "$OUTPOST_PASSPHRASE, else asked on the terminal.",
            valueName: "path"
        )
    )
    var keyFile: String?

    /// The key file this invocation uses, if any.
    var keyFilePath: String? {
        if let keyFile, !keyFile.isEmpty { return keyFile }
        return Passphrase.environment(Passphrase.keyFileVariable)
    }

    /// The store path this invocation uses.
    var path: String {
        if let store, !store.isEmpty { return store }
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["OUTPOST_STORE"], !path.isEmpty { return path }
        let dataHome =
            environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
        return (dataHome as NSString).appendingPathComponent("outpost/store.sqlite")
    }

    /// Opens the store, or fails with a message naming the path and how to fix it.
    func open() throws -> CareStore {
        try CareStore.open(at: path, key: key())
    }

    /// The key of an encrypted store, asked for only when the store is encrypted: the key file, else
    /// `OUTPOST_PASSPHRASE`, else the terminal.
    func key() -> StoreKeySource {
        let keyFile = keyFilePath
        let path = path
        return { () throws(ClientError) -> StoreKey in
            if let keyFile { return try StoreKey.keyFile(at: keyFile) }
            if let passphrase = Passphrase.environment(Passphrase.variable) { return try .passphrase(passphrase) }
            if let passphrase = Passphrase.ask("passphrase for \(path): ") { return try .passphrase(passphrase) }
            throw ClientError(
                code: .keyRequired,
                message: "the store at \(path) is encrypted; give its passphrase in \(Passphrase.variable) (or run "
                    + "on a terminal to be asked), or its key file with --key-file"
            )
        }
    }
}

/// The `--json` flag of listing and showing commands.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (stable, keys sorted) instead of a table.")
    var json = false
}
