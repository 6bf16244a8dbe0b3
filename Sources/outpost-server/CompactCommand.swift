import ArgumentParser
import Foundation
import Logging
import OutpostCommandLine
import OutpostModel
import OutpostProtocol
import OutpostServer

/// `outpost-server compact`: coordinated compaction (docs/sync.md, "Compaction").
struct CompactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Drop superseded values every active device has pulled, and move the feed floor.",
        discussion: """
            For each practice, the feed floor moves to the lowest position an active device has pulled to (a \
            device is active when it is not retired and was seen within --horizon); changes at or below it whose \
            value is superseded are dropped, except in fields with an open conflict and the fields the scorecard \
            dates (subgroup, patient status, care gaps, task status). A device whose checkpoint is below the \
            floor is told 'checkpoint_expired' on its next sync and bootstraps again, keeping its unsent changes. \
            Safe while the server runs; recorded in the audit log. 'outpost-server serve --compact-every 24h' \
            runs it on a schedule.
            Example: outpost-server compact --horizon 90d
            """
    )
    @OptionGroup var data: DataOptions
    @Option(help: "Only this practice.") var practice: String?
    @Option(
        help: ArgumentHelp("Devices not seen for this long no longer hold compaction back: 90d, 12h.", valueName: "age")
    )
    var horizon = "90d"
    @Flag(help: "Print JSON instead of lines.") var json = false

    func validate() throws {
        guard DevicesCommand.millis(horizon) != nil else {
            throw ValidationError("--horizon takes an age like 90d, 12h or 30m, not '\(horizon)'")
        }
    }

    func run() async throws {
        let store = try await data.openStore()
        let started = ContinuousClock.now
        let reports = try await store.compact(
            practice: practice,
            now: SystemWallClock().nowMillis(),
            horizonMillis: DevicesCommand.millis(horizon) ?? 0
        )
        let elapsed = ContinuousClock.now - started
        if json {
            try JSONOutput.print(reports)
            return
        }
        for report in reports { print(Self.line(report)) }
        let seconds = Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)
        print("compacted \(reports.count) practice(s) in \(String(format: "%.2f", seconds)) s")
    }

    /// One practice's compaction in one line.
    static func line(_ report: CompactionReport) -> String {
        var text =
            "\(report.practice): floor \(report.previousFloor) -> \(report.floor) (head \(report.head)); dropped "
            + "\(report.dropped) of \(report.examined) changes at or below it"
        if !report.heldBy.isEmpty { text += "; held back by \(report.heldBy.joined(separator: ", "))" }
        if !report.expired.isEmpty {
            text += "; expired (bootstrap again on their next sync): \(report.expired.joined(separator: ", "))"
        }
        return text
    }

    /// Runs compaction every `interval` until the task is cancelled (`serve --compact-every`): failures are logged
    /// and the next run tries again.
    static func schedule(
        store: any ServerBackend,
        intervalMillis: UInt64,
        horizonMillis: UInt64,
        logger: Logger
    ) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .milliseconds(Int64(intervalMillis)))
                } catch {
                    return
                }
                do {
                    let reports = try await store.compact(
                        practice: nil,
                        now: SystemWallClock().nowMillis(),
                        horizonMillis: horizonMillis
                    )
                    for report in reports {
                        logger.notice("compacted", metadata: ["report": "\(CompactCommand.line(report))"])
                    }
                } catch {
                    logger.error(
                        "scheduled compaction failed; it runs again at the next interval",
                        metadata: ["error": "\(error)"]
                    )
                }
            }
        }
    }
}
