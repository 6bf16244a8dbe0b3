import ArgumentParser
import Foundation
import Logging
import OutpostClient
import OutpostCommandLine
import OutpostProtocol
import Synchronization

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
    @Option(help: "With --watch, how long each live request waits, in seconds (default: 25).") var wait: Int?
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(
        help: ArgumentHelp(
            "Print a progress line on stderr each time a push is answered or a page written, even when it is not a "
                + "terminal.",
            discussion: "On a terminal, a sync whose push holds, or that moves, over 10,000 changes and records "
                + "always shows its progress on one updating line. With --watch, for its first round (the catch-up "
                + "of a new laptop or of days offline); each later round is said by its report."
        )
    )
    var progress = false

    func validate() throws {
        if let wait, !(1...30).contains(wait) { throw ValidationError("--wait must be 1 to 30 seconds") }
        if !watch && wait != nil {
            throw ValidationError("--wait is for --watch: how long each live request waits")
        }
    }

    func run() async throws {
        try checkSyncEnvironment()
        let store = try storeOptions.open()
        var options = SyncEngine.Options()
        let line = SyncProgressLine(lines: progress)
        // Under --watch, the first round only: a new laptop's bootstrap, a backlog after days offline. Later rounds
        // are a live change or a few, each said by its report.
        let firstRound = Mutex(true)
        options.progress = { progress in
            if firstRound.withLock({ $0 }) { line.report(progress) }
        }
        options.retrying = { line.retrying($0) }
        let engine = try SyncEngine(store: store.store, options: options, logger: syncLogger(line))
        line.endLineOnInterrupt()
        let json = json
        if watch {
            do {
                try await engine.watch(wait: wait ?? 25) { report in
                    firstRound.withLock { $0 = false }
                    line.finish()
                    Self.print(report, json: json)
                }
            } catch {
                line.finish()
                throw error
            }
        } else {
            let report: SyncReport
            do {
                report = try await engine.sync()
            } catch {
                line.finish()
                throw error
            }
            line.finish()
            Self.print(report, json: json)
        }
    }

    static func print(_ report: SyncReport, json: Bool) {
        // Said once, on stderr, when the device's clock is found too far from the server's (or fixed).
        if let notice = report.clockNotice { Terminal.error(notice) }
        if json {
            // One line a round, so `sync --watch --json` is a stream of JSON lines.
            if let line = try? JSONOutput.line(report) {
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
            return
        }
        var parts = ["pushed \(report.pushed)", "pulled \(report.pulled)"]
        if report.serverRestored {
            parts.insert("the server was restored from a backup: sent again \(report.resent) changes it lacked", at: 0)
        }
        if report.bootstrapped { parts.append("bootstrapped \(report.snapshotRecords) records") }
        if report.purged > 0 {
            parts.append("removed \(report.purged) patients that left this device's scope or were purged")
        }
        if report.erased > 0 {
            parts.append("dropped \(report.erased) edits to patients purged on the server (legal erasure)")
        }
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
