import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import OutpostModel
import OutpostProtocol
import OutpostServer
import Prometheus

/// The data directory option shared by every subcommand.
struct DataOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The server's data directory.",
            discussion: "Defaults to $OUTPOST_DATA, else ./outpost-data.",
            valueName: "dir"
        )
    )
    var data: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The PostgreSQL database to use instead of SQLite in the data directory.",
            discussion: """
                postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?pool=N&sslmode=require]; defaults to \
                $OUTPOST_DATABASE_URL. See docs/postgres.md.
                """,
            valueName: "url"
        )
    )
    var database: String?

    var directory: String {
        data ?? ProcessInfo.processInfo.environment["OUTPOST_DATA"] ?? "outpost-data"
    }

    /// The PostgreSQL URL given, if any.
    var databaseURL: String? {
        database ?? ProcessInfo.processInfo.environment["OUTPOST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Opens the store for an administration command: it must exist.
    func openStore() async throws -> any ServerBackend {
        do {
            return try await ServerBackends.open(
                databaseURL: databaseURL,
                directory: directory,
                create: false,
                logger: Logger(label: "outpost-server")
            )
        } catch {
            throw ServerCommandError.runtime(error.message)
        }
    }
}
