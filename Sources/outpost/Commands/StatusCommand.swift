import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// `outpost status`
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show this replica: id, pending changes, open conflicts, records held, last sync."
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var replica: String
        var store: String
        var author: String
        var site: String?
        var pendingChanges: Int
        var refusedChanges: Int
        var openConflicts: Int
        var newConflicts: Int
        var records: [String: Int]
        var server: String?
        var lastSync: String?
        /// The last sync stopped before its end with no checkpoint (``StoreStatus/syncUnfinished``).
        var syncUnfinished: Bool
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        let status = try store.store.status()
        // New: detected since the last sync started (by that sync or after it).
        let since = try store.store.setting(SyncEngine.syncStartedSetting).flatMap { UInt64($0) } ?? 0
        let newConflicts = try store.store.conflicts().filter { $0.detectedAtMillis >= since }.count
        let report = Report(
            replica: status.replicaID.rawValue,
            store: storeOptions.path,
            author: try store.author(),
            site: try store.site(),
            pendingChanges: status.pendingChanges,
            refusedChanges: status.refusedChanges,
            openConflicts: status.openConflicts,
            newConflicts: newConflicts,
            records: status.recordCounts,
            server: status.serverURL,
            lastSync: status.lastSyncAtMillis.map(Format.millis),
            syncUnfinished: status.syncUnfinished
        )
        if output.json {
            try Terminal.json(report)
            return
        }
        print("replica:         \(report.replica)")
        print("store:           \(report.store)")
        print("author:          \(report.author)\(report.site.map { " at \($0)" } ?? "")")
        print("pending changes: \(report.pendingChanges)")
        if report.refusedChanges > 0 {
            print("refused changes: \(OutboxCommand.refusedLine(report.refusedChanges))")
        }
        print(
            "open conflicts:  \(report.openConflicts)"
                + (report.openConflicts > 0
                    ? " (\(report.newConflicts) new since the last sync; 'outpost conflicts list')" : "")
        )
        print("server:          \(report.server ?? "(none: offline only)")")
        print("last sync:       \(report.lastSync ?? "never")")
        if report.syncUnfinished {
            // A new laptop's first sync stopped part way shows part of the practice until a sync ends.
            print("sync:            not finished (the last sync stopped before its end): run 'outpost sync'")
        }
        let counts = RecordType.allCases.compactMap { type in
            report.records[type.rawValue].map { "\($0) \(type)" }
        }
        print("records:         \(counts.isEmpty ? "none" : counts.joined(separator: ", "))")
    }
}
