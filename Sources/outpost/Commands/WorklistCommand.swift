import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost worklist`: open tasks, overdue first, then by priority and due date.
struct Worklist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worklist",
        abstract: "Open tasks for a team, person or site: overdue first, then by priority, then by due date."
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Tasks of this team.", valueName: "team-id")) var team: String?
    @Option(help: ArgumentHelp("Tasks assigned to this person.", valueName: "person-id")) var person: String?
    @Option(help: ArgumentHelp("Tasks of patients seen at this site.", valueName: "site-id")) var site: String?
    @Option(help: ArgumentHelp("Today's date (default: today, UTC).", valueName: "YYYY-MM-DD")) var today: String?

    mutating func run() throws {
        let store = try storeOptions.open()
        let day: CalendarDate
        if let today {
            guard let parsed = CalendarDate(today) else { throw CLIError.input("--today must be a date YYYY-MM-DD") }
            day = parsed
        } else {
            day = CalendarDate(millis: SystemWallClock().nowMillis())
        }
        try RecordOutput.requireFilters([(team, .team), (person, .person), (site, .site)], in: store)
        if output.json {
            let entries = try store.worklist(team: team, person: person, site: site, today: day)
            RecordOutput.printJSON(entries.map(\.record))
            return
        }
        // The table is printed from the projection alone: no task's state is decoded.
        let sorted = try store.worklistViews(team: team, person: person, site: site, today: day)
        Terminal.table(
            ["id", "due", "priority", "status", "patient", "kind", "title"],
            sorted.map { task in
                let overdue = task.isOverdue(today: day)
                return [
                    task.id.rawValue, (task.dueDate?.description ?? "") + (overdue ? " OVERDUE" : ""),
                    task.priority ?? "", task.status ?? "", task.patient?.rawValue ?? "", task.kind ?? "",
                    task.title ?? "",
                ]
            },
            empty: "no open tasks"
        )
    }
}
