import ArgumentParser
import OutpostClient

/// `outpost doctor`: checks the store; `--rebuild` rebuilds its projection first.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this replica's store: the file, its indexes, every record and change, and the projection.",
        discussion: """
            The projection (indexed tables of the fields lists filter and sort on) is derived from the record \
            states in the same transaction as every write; the check recomputes it and compares. It also reports \
            an index this version makes that the store lacks (a bulk load cut short). With --rebuild the \
            projection is recomputed from the states first, and missing indexes are built (safe at any time). \
            Exit 1 when a problem is found.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Rebuild the projection from the record states before checking.") var rebuild = false

    mutating func run() throws {
        let store = try storeOptions.open()
        if rebuild {
            try store.store.rebuildProjection()
            print("projection rebuilt")
        }
        let problems = try store.store.verifyIntegrity() + store.store.checkProjection()
        guard problems.isEmpty else {
            for problem in problems { print(problem) }
            throw CLIError.runtime(
                "\(problems.count) problem(s) found in \(storeOptions.path); 'outpost doctor --rebuild' rebuilds the "
                    + "projection, other problems need a restore from a backup"
            )
        }
        print("store ok")
    }
}
