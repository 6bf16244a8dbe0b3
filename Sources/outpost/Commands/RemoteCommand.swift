import ArgumentParser
import Foundation
import Logging
import OutpostClient
import OutpostProtocol

struct RemoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "Show or set the sync server of this replica.",
        subcommands: [Show.self, Set.self],
        defaultSubcommand: Show.self
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show the server and the token's id."
        )
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            let store = try storeOptions.open()
            guard let remote = try store.store.remote() else {
                print("server: (none: offline only); set one with 'outpost remote set URL --token TOKEN'")
                return
            }
            print("server: \(remote.url.absoluteString)")
            print("token:  \(remote.token.prefix(8))… (kept in the store)")
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set the server and token; the outbox is kept and pushed on the next sync.",
            discussion: """
                Checks the token with the server when it can be reached; a refused token changes nothing. \
                Without --token (and $OUTPOST_TOKEN), the token this replica already holds is kept.
                """
        )
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: ArgumentHelp("The sync server's URL.", valueName: "url")) var url: String
        @Option(
            help: ArgumentHelp(
                "The device's token (default: $OUTPOST_TOKEN, else the token this replica holds).",
                valueName: "token"
            )
        )
        var token: String?
        @Option(
            help: ArgumentHelp(
                "PEM certificates of the private CA that alone is trusted for an https server (default: the ones "
                    + "this replica already trusts, else the system's).",
                valueName: "file"
            )
        )
        var caFile: String?

        func run() async throws {
            var options = try RemoteOptions.parse(
                ["--server", url] + (token.map { ["--token", $0] } ?? []) + (caFile.map { ["--ca-file", $0] } ?? [])
            )
            let store = try storeOptions.open()
            let kept = options.resolvedToken == nil
            if kept {
                guard let stored = try store.store.remote()?.token else {
                    throw CLIError.input(
                        "this replica holds no token yet; give one with --token TOKEN (or $OUTPOST_TOKEN)"
                    )
                }
                options.token = stored
            }
            guard let remote = try options.remote() else { return }
            let certificates = try options.trustedCertificates() ?? store.store.trustedCertificates()
            let session = try await checkRemote(remote, trusting: certificates, store: store.store)
            try store.store.setRemote(remote)
            try store.store.setTrustedCertificates(certificates)
            // The new token's session, read above: setRemote forgot the old one's.
            if let session { try SyncEngine.remember(session, in: store.store) }
            print("server: \(remote.url.absoluteString)")
            if kept { print("token:  \(remote.token.prefix(8))… (kept: no new token given)") }
            if let session { print("practice: \(session.practice) (role \(session.role.rawValue))") }
        }
    }
}
