import ArgumentParser
import OutpostServer

/// `outpost-server`: the sync server and its administration commands on a data directory.
///
/// Exit codes: 0 ok, 1 runtime error (the store cannot be opened, the port is taken), 2 bad usage or input.
struct OutpostServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost-server",
        abstract: "The Outpost sync server: the umbrella store a network of practices shares.",
        discussion: """
            Start it with 'outpost-server serve' (SQLite in ./outpost-data, port 8787). The first start creates \
            a practice and writes an admin token to DATA/admin-token; issue tokens for devices with \
            'outpost-server token issue'.
            Exit codes: 0 ok, 1 runtime error, 2 bad usage or input.
            """,
        version: ServerInfo.versionLine,
        subcommands: [
            Serve.self, PracticeCommand.self, TokenCommand.self, ConflictsCommand.self, PurgeCommand.self,
            DevicesCommand.self, AuditCommand.self, MigrateCommand.self, BackupCommand.self, RestoreCommand.self,
            CompactCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}
