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
        try CareStore.open(at: path)
    }
}

/// The `--json` flag of listing and showing commands.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (stable, keys sorted) instead of a table.")
    var json = false
}
