import ArgumentParser
import Foundation
import Logging
import OutpostClient
import OutpostProtocol

/// `--server URL --token TOKEN`, for `outpost init` and `outpost remote set`.
struct RemoteOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The sync server's URL, e.g. http://127.0.0.1:8787.", valueName: "url"))
    var server: String?
    @Option(
        help: ArgumentHelp(
            "The token an administrator issued for this device (default: $OUTPOST_TOKEN).",
            valueName: "token"
        )
    )
    var token: String?
    @Option(
        help: ArgumentHelp(
            "PEM certificates of the private CA that alone is trusted for an https server (default: the system's).",
            valueName: "file"
        )
    )
    var caFile: String?

    var resolvedToken: String? {
        token ?? ProcessInfo.processInfo.environment["OUTPOST_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The remote these options name, `nil` when no server was given.
    func remote() throws -> Remote? {
        guard let server else {
            if token != nil { throw CLIError.input("--token needs --server URL") }
            if caFile != nil { throw CLIError.input("--ca-file needs --server URL") }
            return nil
        }
        guard let url = URL(string: server), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil
        else {
            throw CLIError.input("--server must be an http:// or https:// URL, e.g. http://127.0.0.1:8787")
        }
        guard let token = resolvedToken else {
            throw CLIError.input("--server needs --token TOKEN (or $OUTPOST_TOKEN); ask an administrator for one")
        }
        return Remote(url: url, token: token)
    }

    /// The PEM certificates of `--ca-file`, checked, or `nil` without it.
    func trustedCertificates() throws -> String? {
        guard let caFile else { return nil }
        guard let data = FileManager.default.contents(atPath: caFile) else {
            throw CLIError.input("cannot read --ca-file \(caFile); check the path and its permissions")
        }
        let pem = String(decoding: data, as: UTF8.self)
        do {
            try TrustedCertificates.check(pem)
        } catch {
            throw CLIError.input("--ca-file \(caFile): \(error.message)")
        }
        return pem
    }
}

/// The sync engine's logger for the CLI: warnings and errors only, so a failed sync is one line on stderr
/// (its retries are logged at info).
func syncLogger() -> Logger {
    var logger = Logger(label: "outpost")
    logger.logLevel = .warning
    return logger
}

/// Checks a remote by asking it for the token's session; an unreachable server is only a warning (the
/// device may be offline), a refused token is an error and nothing is saved.
func checkRemote(_ remote: Remote, trusting certificates: String?, store: LocalStore) async throws -> SessionInfo? {
    var options = SyncEngine.Options()
    options.retries = 1
    let engine = SyncEngine(
        store: store,
        transport: HTTPTransport(baseURL: remote.url, token: remote.token, trustedCertificates: certificates),
        options: options,
        logger: syncLogger()
    )
    do {
        return try await engine.fetchSession()
    } catch let error where error.code == .unreachable {
        Terminal.error("warning: \(error.message)")
        return nil
    } catch {
        throw CLIError(message: error.message, exitCode: CLIError.badInput)
    }
}

struct RemoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "Show or set the sync server of this replica.",
        subcommands: [Show.self, Set.self],
        defaultSubcommand: Show.self
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the server and the token's id.")
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
            print("server: \(remote.url.absoluteString)")
            if kept { print("token:  \(remote.token.prefix(8))… (kept: no new token given)") }
            if let session { print("practice: \(session.practice) (role \(session.role.rawValue))") }
        }
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Push this replica's outbox to the server, then pull until caught up.",
        discussion: """
            Every page is applied in one transaction with its checkpoint, so an interrupted sync resumes where \
            it stopped; transient failures are retried with backoff. An unreachable server exits 1 and loses \
            nothing. With --watch, stays connected and applies other devices' changes as they arrive, until \
            interrupted (Ctrl-C).
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Stay connected and apply live changes until interrupted.") var watch = false
    @Option(help: "With --watch, how long each live request waits, in seconds.") var wait = 25
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        guard (1...30).contains(wait) else { throw ValidationError("--wait must be 1 to 30 seconds") }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let engine = try SyncEngine(store: store.store, logger: syncLogger())
        let json = json
        if watch {
            try await engine.watch(wait: wait) { report in
                Self.print(report, json: json)
            }
        } else {
            Self.print(try await engine.sync(), json: json)
        }
    }

    static func print(_ report: SyncReport, json: Bool) {
        // Said once, on stderr, when the device's clock is found too far from the server's (or fixed).
        if let notice = report.clockNotice { Terminal.error(notice) }
        if json {
            var object: [String: Any] = [
                "pushed": report.pushed, "pushedDuplicates": report.pushedDuplicates, "pulled": report.pulled,
                "snapshotRecords": report.snapshotRecords, "bootstrapped": report.bootstrapped,
                "restamped": report.restamped, "newConflicts": report.newConflicts,
                "resolvedConflicts": report.resolvedConflicts, "openConflicts": report.openConflicts,
                "pending": report.pending, "purged": report.purged, "refused": report.refused,
                "heldAside": report.heldAside, "serverRestored": report.serverRestored, "resent": report.resent,
            ]
            if let notice = report.clockNotice { object["clockNotice"] = notice }
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
            return
        }
        var parts = ["pushed \(report.pushed)", "pulled \(report.pulled)"]
        if report.serverRestored {
            parts.insert("the server was restored from a backup: sent again \(report.resent) changes it lacked", at: 0)
        }
        if report.bootstrapped { parts.append("bootstrapped \(report.snapshotRecords) records") }
        if report.purged > 0 { parts.append("removed \(report.purged) patients that left this device's scope") }
        if report.restamped > 0 {
            parts.append("re-stamped \(report.restamped) changes (this device's clock runs ahead: fix it)")
        }
        parts.append("new conflicts \(report.newConflicts)")
        if report.resolvedConflicts > 0 { parts.append("resolved \(report.resolvedConflicts)") }
        parts.append("open conflicts \(report.openConflicts)")
        parts.append("pending \(report.pending)")
        var text = parts.joined(separator: ", ") + "\n"
        if report.heldAside > 0 {
            text += "refused: \(OutboxCommand.refusedLine(report.heldAside, new: report.refused))\n"
        }
        // Unbuffered, so `sync --watch` shows each round at once even when its output is a file or a pipe.
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
