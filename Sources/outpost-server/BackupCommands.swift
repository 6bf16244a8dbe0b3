import ArgumentParser
import Foundation
import Logging
import OutpostModel
import OutpostServer

/// `outpost-server backup --out FILE`: a consistent copy of the whole store, taken while the server serves.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a consistent copy of the server store to a file, while the server runs.",
        discussion: """
            Example: outpost-server backup --out /backups/outpost-2026-12-02.backup
            SQLite: SQLite's online backup of one instant; PostgreSQL (--database): every table read in one \
            snapshot. Either way one file (a SQLite database, readable by its owner only), written beside FILE and \
            renamed when whole. It holds patient data and token hashes: keep it as safe as the store. Restore it \
            with 'outpost-server restore FILE'. See docs/backup.md.
            """
    )

    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("The backup file to write; it must not exist.", valueName: "file")) var out: String

    func run() async throws {
        let started = ContinuousClock.now
        let store = try await data.openStore()
        let now = SystemWallClock().nowMillis()
        let summary: BackupSummary
        switch store {
        case let store as ServerStore:
            summary = try await store.backup(to: out, now: now)
        case let store as PostgresStore:
            defer { store.close() }
            summary = try await store.backup(to: out, now: now)
        default:
            throw ServerCommandError.runtime("this store cannot be backed up")
        }
        let elapsed = (ContinuousClock.now - started).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        print(
            "backed up \(summary.practices) practice\(summary.practices == 1 ? "" : "s"), \(summary.changes) "
                + "changes and \(summary.records) records to \(summary.path) (\(summary.bytes) bytes) in "
                + String(format: "%.1f", seconds) + " s"
        )
    }
}

/// `outpost-server restore FILE`: replaces the store with a backup, in a new epoch.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Replace the server store with a backup; devices then push again what it lacks.",
        discussion: """
            Example: outpost-server restore /backups/outpost-2026-12-02.backup --force
            Stop the server first (refused while one runs on the store). Refused over an existing store without \
            --force, and for a file that is not a backup; in either case nothing is changed. The restored store \
            starts a new epoch: on their next sync, devices bootstrap again and push again every change of \
            theirs it lacks. What the replaced store recorded after the backup is kept: tokens revoked since are \
            revoked again, purges made since are made again, its audit entries are appended. See docs/backup.md.
            """
    )

    @OptionGroup var data: DataOptions
    @Argument(help: ArgumentHelp("The backup file (written by 'outpost-server backup').", valueName: "file"))
    var file: String
    @Flag(help: "Replace the store that is there.") var force = false

    func run() async throws {
        let summary: RestoreSummary
        let place: String
        let backup = try BackupFile(path: file)
        let now = SystemWallClock().nowMillis()
        // What the store being replaced recorded after the backup and a restore must not undo (revocations, purges,
        // their audit): read before it is replaced. A store that cannot be read (the reason for a restore, perhaps)
        // is replaced all the same, with a warning.
        let (replaced, unreadable) = await readReplaced(takenAtMillis: backup.takenAtMillis)
        if let url = data.databaseURL {
            var location = try PostgresLocation(url: url)
            // One connection: any other one is another process, and the restore is refused.
            location.poolSize = 1
            place = location.description
            let store = try await PostgresStore.open(location, logger: Logger(label: "outpost-server"))
            defer { store.close() }
            summary = try await store.restore(from: backup, force: force, now: now)
        } else {
            place = data.directory
            summary = try ServerStore.restore(from: backup, directory: data.directory, force: force, now: now)
        }
        let taken = CalendarDate.dateTime(millis: summary.takenAtMillis)
        print(
            "restored \(file) (taken \(taken)) into \(place): \(summary.practices) practice"
                + "\(summary.practices == 1 ? "" : "s"), \(summary.changes) changes; new epoch \(summary.epoch)"
        )
        var carried = RestoreCarryOver()
        if let replaced {
            let store = try await data.openStore()
            defer { store.close() }
            carried = try await RestoreCarryOver.plan(replaced, for: store)
            for failure in await carried.apply(to: store, now: SystemWallClock().nowMillis()) {
                FileHandle.standardError.write(Data("outpost-server: warning: \(failure)\n".utf8))
            }
            for purge in carried.outsidePractices {
                FileHandle.standardError.write(
                    Data(
                        ("outpost-server: note: the purge of \(purge.patient) was of practice \(purge.practice), which "
                            + "the backup does not hold: nothing of it was restored\n").utf8
                    )
                )
            }
        }
        if !carried.isEmpty {
            print(
                "kept from the store it replaced: \(carried.audit.count) audit entr"
                    + "\(carried.audit.count == 1 ? "y" : "ies") recorded after the backup, "
                    + "\(carried.revoke.count) token\(carried.revoke.count == 1 ? "" : "s") revoked again"
                    + carried.revoke.map { " " + $0 }.joined(separator: ",") + ", "
                    + "\(carried.purges.count) purge\(carried.purges.count == 1 ? "" : "s") made again"
                    + carried.purges.map { " " + $0.patient }.joined(separator: ",")
            )
        }
        print(
            "devices bootstrap again on their next sync and push again their changes it lacks"
                + (unreadable
                    ? "; revoke again any token revoked and make again any purge made after the backup was taken" : "")
        )
    }

    /// The revocations, purges and audit entries of the store about to be replaced (``RestoreCarryOver``); `nil`
    /// when there is none, or it cannot be read (`unreadable`, said on stderr: the administrator makes them again
    /// by hand).
    private func readReplaced(takenAtMillis: UInt64) async -> (RestoreCarryOver.Replaced?, unreadable: Bool) {
        if data.databaseURL == nil,
            !FileManager.default.fileExists(
                atPath: (data.directory as NSString).appendingPathComponent("outpost-server.sqlite")
            )
        {
            return (nil, false)
        }
        do {
            // The SQLite file is known to exist; a PostgreSQL database with no tables yet gets them (the restore
            // would make them) and holds no practice.
            let store = try await ServerBackends.open(
                databaseURL: data.databaseURL,
                directory: data.directory,
                create: true,
                logger: Logger(label: "outpost-server")
            )
            defer { store.close() }
            guard !(try await store.practices().isEmpty) else { return (nil, false) }
            return (try await RestoreCarryOver.read(from: store, takenAtMillis: takenAtMillis), false)
        } catch {
            FileHandle.standardError.write(
                Data(
                    ("outpost-server: warning: the store being replaced cannot be read (\(error.message)): revoke "
                        + "again any token revoked, and make again any purge made, after the backup was taken\n").utf8
                )
            )
            return (nil, true)
        }
    }
}
