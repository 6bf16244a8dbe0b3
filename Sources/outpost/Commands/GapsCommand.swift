import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost gaps`: outreach worklists from documented rules; `--create-tasks` creates the care tasks.
struct GapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gaps",
        abstract: "Find patients due for a screening or a follow-up; with --create-tasks, create their care tasks.",
        discussion: """
            Rules: a1c-due (diabetes, no HbA1c in 182 days), bp-due (hypertension, no blood pressure in 365 \
            days), ed-follow-up and discharge-follow-up (an ED visit or admission 2 to 30 days ago with no \
            follow-up task since). A created task's title ends with [gap:KEY]; a finding whose key is already \
            on a task creates nothing, so running twice creates nothing new. See docs/scorecard.md.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("The day the rules are checked as of (default: today, UTC).", valueName: "YYYY-MM-DD"))
    var today: String?
    @Flag(help: "Create a care task for each finding that has none yet.") var createTasks = false

    mutating func run() throws {
        let day: CalendarDate
        if let today {
            guard let parsed = CalendarDate(today) else {
                throw CLIError.input("--today: '\(today)' is not a date; use YYYY-MM-DD")
            }
            day = parsed
        } else {
            day = CalendarDate(millis: SystemWallClock().nowMillis())
        }
        let store = try storeOptions.open()
        var findings = GapRules.find(try store.gapsData(), today: day)
        var created = 0
        var skipped = 0
        if createTasks {
            for index in findings.indices where findings[index].existingTask == nil {
                let finding = findings[index]
                guard let team = finding.team else {
                    skipped += 1
                    continue
                }
                let ref = try store.create(
                    .task,
                    fields: [
                        "patient": [.string(finding.patient)], "team": [.string(team)], "kind": [.string(finding.kind)],
                        "title": [.string(finding.title)], "status": ["requested"],
                        "priority": [.string(finding.priority)], "dueDate": [.string(finding.dueDate.description)],
                    ]
                )
                findings[index].existingTask = ref.id
                created += 1
            }
        }
        if output.json {
            try Terminal.json(findings)
        } else {
            Terminal.table(
                ["rule", "patient", "kind", "due", "task", "key"],
                findings.map {
                    [$0.rule, $0.patient, $0.kind, $0.dueDate.description, $0.existingTask ?? "-", $0.key]
                }
            )
        }
        if createTasks {
            Terminal.note(
                "created \(created) task(s); \(findings.count - created - skipped) already had one"
                    + (skipped > 0 ? "; \(skipped) skipped (patient has no team)" : "")
            )
        }
    }
}
