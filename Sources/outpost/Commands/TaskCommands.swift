import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost task ...`
struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Create, track and close care tasks.",
        subcommands: [
            AddTask.self, ListTasks.self, ShowRecord<TaskKind>.self, SetFields<TaskKind>.self,
            Transition<StartTask>.self, Transition<HoldTask>.self, Transition<DoneTask>.self,
            Transition<CancelTask>.self, AssignTask.self, NoteTask.self,
        ]
    )
}

struct AddTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a care task for a patient and print its id.",
        discussion: "The team defaults to the patient's primary team, status to requested, priority to routine.\n\n"
            + FieldArguments.help(for: .task)
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The patient's id.", valueName: "patient-id")) var patient: String
    @Argument(
        help: ArgumentHelp(
            "Field values, for example kind=outreach title=\"Call about A1c\".",
            valueName: "field=value"
        )
    )
    var fields: [String] = []

    mutating func run() throws {
        let store = try storeOptions.open()
        let owner = try RecordOutput.require(patient, .patient, in: store)
        var values: [String: [Value]] = ["patient": [.string(owner.id)]]
        for assignment in try FieldArguments.parse(fields, type: .task) {
            values[assignment.field.name, default: []].append(assignment.value)
        }
        if values["team"] == nil, let team = owner.value("primaryTeam") { values["team"] = [team] }
        for (name, value) in TaskKind.defaults where values[name] == nil { values[name] = [value] }
        print(try store.create(.task, fields: values).id)
    }
}

struct ListTasks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List care tasks.")

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Only this patient's tasks.", valueName: "patient-id")) var patient: String?
    @Option(help: ArgumentHelp("Only tasks with this status.", valueName: "status")) var status: String?
    @Option(help: ArgumentHelp("Only this team's tasks.", valueName: "team-id")) var team: String?
    @Option(help: ArgumentHelp("Only tasks assigned to this person.", valueName: "person-id")) var assignee: String?

    mutating func validate() throws {
        try RecordOutput.validateAllowed(status, field: "status", of: .task, option: "--status")
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        try RecordOutput.requireFilters([(patient, .patient), (team, .team), (assignee, .person)], in: store)
        // A patient's tasks include those of duplicates merged into it (docs/model.md, "Duplicate merges"):
        // TaskQuery's patient follows merges.
        // The table is printed from the projection (no task decoded); JSON gives whole records.
        let query = TaskQuery(patient: patient, status: status, team: team, assignee: assignee)
        let tasks = try output.json ? store.tasks(query) : store.taskRows(query)
        try RecordOutput.printList(tasks, columns: TaskKind.columns, json: output.json)
    }
}

/// A status change of a task: `start`, `hold`, `done`, `cancel`.
protocol TaskTransition {
    static var name: String { get }
    static var abstract: String { get }
    static var status: String { get }
}

enum StartTask: TaskTransition {
    static let name = "start"
    static let abstract = "Mark a task in progress."
    static let status = "in-progress"
}

enum HoldTask: TaskTransition {
    static let name = "hold"
    static let abstract = "Put a task on hold."
    static let status = "on-hold"
}

enum DoneTask: TaskTransition {
    static let name = "done"
    static let abstract = "Mark a task completed."
    static let status = "completed"
}

enum CancelTask: TaskTransition {
    static let name = "cancel"
    static let abstract = "Cancel a task."
    static let status = "cancelled"
}

struct Transition<Kind: TaskTransition>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: Kind.name, abstract: Kind.abstract)
    }

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The task's id.", valueName: "task-id")) var id: String

    mutating func run() throws {
        let store = try storeOptions.open()
        let task = try RecordOutput.require(id, .task, in: store)
        let current = task.string("status") ?? ""
        if CareModel.taskStatusRules.terminal.contains(current)
            || CareModel.taskStatusRules.overriding.contains(current)
        {
            throw CLIError.input(
                "task \(id) is \(current); to reopen it deliberately, run 'outpost task set \(id) status=in-progress'"
            )
        }
        try store.update([.assign(task.ref, "status", .string(Kind.status))])
        print("\(id): \(Kind.status)")
    }
}

struct AssignTask: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "assign", abstract: "Assign a task to a person.")

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The task's id.", valueName: "task-id")) var id: String
    @Argument(help: ArgumentHelp("The person's id.", valueName: "person-id")) var person: String

    mutating func run() throws {
        let store = try storeOptions.open()
        let task = try RecordOutput.require(id, .task, in: store)
        try store.update([.assign(task.ref, "assignee", .string(person))])
        print("\(id): assigned to \(person)")
    }
}

struct NoteTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "note",
        abstract: "Append a note to a task (notes are never edited)."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The task's id.", valueName: "task-id")) var id: String
    @Argument(help: ArgumentHelp("The note.", valueName: "text")) var text: String

    mutating func run() throws {
        let store = try storeOptions.open()
        let task = try RecordOutput.require(id, .task, in: store)
        try store.update([.append(task.ref, "notes", .string(text))])
        print("\(id): note added")
    }
}

/// `outpost worklist`: open tasks, overdue first, then by priority and due date.
struct Worklist: ParsableCommand {
    static let configuration = CommandConfiguration(
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
            print("[" + entries.map { $0.record.canonicalJSON() }.joined(separator: ",\n") + "]")
            return
        }
        // The table is printed from the projection alone: no task's state is decoded.
        let sorted = try store.worklistViews(team: team, person: person, site: site, today: day)
        Terminal.table(
            ["id", "due", "priority", "status", "patient", "kind", "title"],
            sorted.map { task in
                let overdue = task.dueDate.map { $0 < day } ?? false
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
