import ArgumentParser
import Foundation
import Logging
import OutpostServer

/// `outpost-server migrate`: copies a SQLite umbrella store into PostgreSQL.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy a SQLite umbrella store into an empty PostgreSQL database.",
        discussion: """
            Stop the server first. Feed positions, tokens and device bindings are copied as they are, so devices \
            keep syncing without bootstrapping again; then serve with --database. The SQLite store's records take \
            in the edits they held apart (record tails); nothing else in it changes.

            Example:
              outpost-server migrate --from outpost-data \\
                --to postgres://outpost@db.example/outpost
            """
    )

    @Option(help: ArgumentHelp("The SQLite server's data directory.", valueName: "dir")) var from: String
    @Option(help: ArgumentHelp("The PostgreSQL database (see serve --database).", valueName: "url")) var to: String

    func run() async throws {
        let logger = Logger(label: "outpost-server")
        // Held until the copy ends: a server that still served the store would acknowledge pushes the copy lacks.
        let lock = try ServerLock(directory: from, exclusive: true, action: "migrate")
        defer { lock.release() }
        let source = try ServerStore(directory: from, create: false, logger: logger, foldingTails: false)
        let target = try await PostgresStore.open(try PostgresLocation(url: to), logger: logger)
        defer { target.close() }
        for (table, rows) in try await target.copy(from: source) {
            print("\(table): \(rows) rows")
        }
    }
}
