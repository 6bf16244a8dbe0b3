import ArgumentParser
import Foundation
import OutpostCommandLine
import OutpostModel
import OutpostProtocol
import OutpostServer

struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "Replication health: which devices sync, how far behind they are, what waits in their outboxes.",
        subcommands: [List.self, Show.self, Retire.self],
        defaultSubcommand: List.self
    )

    /// A duration like `7d`, `12h` or `30m`, in milliseconds.
    static func millis(_ text: String) -> UInt64? {
        guard let unit = text.last, let number = UInt64(text.dropLast()), number > 0 else { return nil }
        switch unit {
        case "d": return number * 86_400_000
        case "h": return number * 3_600_000
        case "m": return number * 60_000
        default: return nil
        }
    }

    /// The one device of `replica` (in `practice`, when given).
    static func find(_ replica: String, practice: String?, in store: any AdminStorage) async throws -> DeviceEntry {
        let matches = try await store.devices(practice: practice).filter { $0.replica == replica }
        guard let device = matches.first else {
            throw ValidationError("no device \(replica); list them with 'outpost-server devices'")
        }
        guard matches.count == 1 else {
            throw ValidationError("replica \(replica) is in several practices; name one with --practice")
        }
        return device
    }

    /// A time ago in words: `3 d`, `5 h`, `12 min`, `now`.
    static func ago(_ millis: UInt64?, now: UInt64) -> String {
        guard let millis else { return "never" }
        let age = now > millis ? now - millis : 0
        if age >= 86_400_000 { return "\(age / 86_400_000) d ago" }
        if age >= 3_600_000 { return "\(age / 3_600_000) h ago" }
        if age >= 60_000 { return "\(age / 60_000) min ago" }
        return "now"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List devices, most recently seen first.",
            discussion: """
                BEHIND counts other devices' changes the device has not pulled yet; OUTBOX is what it reported \
                waiting to be pushed at its last sync, REFUSED the changes the server refused that it holds aside \
                ('outpost outbox list' on the device). Example: outpost-server devices --stale 7d
                """
        )
        @OptionGroup var data: DataOptions
        @Option(help: "Only this practice's devices.") var practice: String?
        @Option(help: ArgumentHelp("Only devices not seen for this long: 7d, 12h, 30m.", valueName: "age"))
        var stale: String?
        @Flag(help: "Include retired devices.") var all = false
        @Flag(help: "Print JSON instead of a table.") var json = false

        func validate() throws {
            if let stale, DevicesCommand.millis(stale) == nil {
                throw ValidationError("--stale takes an age like 7d, 12h or 30m, not '\(stale)'")
            }
        }

        func run() async throws {
            let store = try await data.openStore()
            let now = SystemWallClock().nowMillis()
            var devices = try await store.devices(practice: practice)
            if !all { devices.removeAll { $0.retiredAtMillis != nil } }
            if let age = stale.flatMap(DevicesCommand.millis) {
                devices.removeAll { now < $0.lastSeenMillis || now - $0.lastSeenMillis < age }
            }
            if json {
                try JSONOutput.print(devices)
                return
            }
            // Devices of several practices (an umbrella store listed whole) say whose they are.
            let practices = Set(devices.map(\.practice)).count > 1
            TablePrinter.print(
                (practices ? ["PRACTICE"] : []) + [
                    "REPLICA", "TOKEN", "ROLE", "SCOPE", "LAST PUSH", "LAST PULL", "BEHIND", "OUTBOX", "REFUSED",
                    "CLIENT",
                ],
                devices.map {
                    (practices ? [$0.practice] : []) + [
                        $0.replica + ($0.retiredAtMillis == nil ? "" : " (retired)"),
                        $0.token + ($0.tokenRevokedAtMillis == nil ? "" : " (revoked)"), $0.role, $0.scope,
                        DevicesCommand.ago($0.lastPushMillis, now: now),
                        DevicesCommand.ago($0.lastPullMillis, now: now), String($0.behindChanges),
                        $0.outbox.map(String.init) ?? "?", $0.refused.map(String.init) ?? "?", $0.client ?? "?",
                    ]
                }
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Everything known of one device."
        )
        @OptionGroup var data: DataOptions
        @Argument(help: "The device's replica id.") var replica: String
        @Option(help: "The practice (default: any that has this replica).") var practice: String?
        @Flag(help: "Print JSON instead of one field a line.") var json = false

        func run() async throws {
            let store = try await data.openStore()
            let device = try await DevicesCommand.find(replica, practice: practice, in: store)
            if json {
                try JSONOutput.print(device)
                return
            }
            // One field a line, in the JSON's (sorted) order, with the same names.
            let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(device)) as? [String: Any] ?? [:]
            let width = object.keys.map(\.count).max() ?? 0
            for key in object.keys.sorted() {
                let value = object[key].map { "\($0)" } ?? ""
                print(
                    key + ":" + String(repeating: " ", count: width - key.count + 1) + (value == "<null>" ? "" : value)
                )
            }
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retire",
            abstract: "Retire a device: its replica id may no longer sync; its changes stay.",
            discussion: "For a lost or given-up device. Recorded in the audit log."
        )
        @OptionGroup var data: DataOptions
        @Argument(help: "The device's replica id.") var replica: String
        @Option(help: "The practice (default: the only one that has this replica).") var practice: String?

        func run() async throws {
            let store = try await data.openStore()
            let device = try await DevicesCommand.find(replica, practice: practice, in: store)
            try await store.retireDevice(
                practice: device.practice,
                replica: replica,
                now: SystemWallClock().nowMillis()
            )
            print("retired \(replica) of \(device.practice)")
        }
    }
}
