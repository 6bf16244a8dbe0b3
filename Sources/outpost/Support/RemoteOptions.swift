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

/// Refuses an `OUTPOST_SYNC_TIMEOUT` the engine would not take (``SyncEngine/Options/requestTimeout``), rather than
/// syncing with the default as if it were not set.
func checkSyncEnvironment() throws {
    guard let text = ProcessInfo.processInfo.environment["OUTPOST_SYNC_TIMEOUT"] else { return }
    guard SyncEngine.Options.requestTimeout(from: text) != nil else {
        throw CLIError.input(
            "OUTPOST_SYNC_TIMEOUT is '\(text)': give a whole number of seconds from 1 to 3600, e.g. OUTPOST_SYNC_TIMEOUT=120"
        )
    }
}

/// The sync engine's logger for the CLI: warnings and errors only (its retries are logged at info), one line each
/// on stderr, written through `line` (``SyncLogHandler``).
func syncLogger(_ line: SyncProgressLine) -> Logger {
    Logger(label: "outpost") { _ in SyncLogHandler(line: line) }
}

/// Checks a remote by asking it for the token's session; an unreachable server is only a warning (the
/// device may be offline), a refused token is an error and nothing is saved.
func checkRemote(_ remote: Remote, trusting certificates: String?, store: LocalStore) async throws -> SessionInfo? {
    try checkSyncEnvironment()
    var options = SyncEngine.Options()
    options.retries = 1
    let line = SyncProgressLine(lines: false)
    options.retrying = { line.retrying($0) }
    let engine = SyncEngine(
        store: store,
        transport: HTTPTransport(baseURL: remote.url, token: remote.token, trustedCertificates: certificates),
        options: options,
        logger: syncLogger(line)
    )
    do {
        return try await engine.fetchSession()
    } catch let error where error.code == .unreachable {
        Terminal.error("warning: \(error.message)")
        return nil
    } catch {
        throw CLIError.input(error.message)
    }
}
