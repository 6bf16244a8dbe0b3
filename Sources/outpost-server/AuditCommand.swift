import ArgumentParser
import Foundation
import OutpostCommandLine
import OutpostModel
import OutpostProtocol
import OutpostServer

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log: every practice added, token issued, rotated or revoked, and purge.",
        discussion: "Each entry says when, which system user, what and on what; never a secret or patient data."
    )
    @OptionGroup var data: DataOptions
    @Option(help: "Only this practice's entries.") var practice: String?
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() async throws {
        let store = try await data.openStore()
        let entries = try await store.auditLog(practice: practice)
        if json {
            try JSONOutput.print(entries)
            return
        }
        TablePrinter.print(
            ["WHEN", "WHO", "ACTION", "PRACTICE", "SUBJECT", "DETAIL"],
            entries.map {
                [
                    CalendarDate.dateTime(millis: $0.atMillis), $0.actor, $0.action, $0.practice ?? "",
                    $0.subject ?? "", $0.detail,
                ]
            }
        )
    }
}
