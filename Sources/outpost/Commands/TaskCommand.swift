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
        guard !output.json else {
            RecordOutput.printJSON(try store.tasks(query))
            return
        }
        // Cells straight from the projection's text, formatted as a record's register is.
        let rows = try store.taskCells(query, columns: TaskKind.columns) { text, isConflict in
            RecordOutput.cell(.single(text.map(Value.string), isConflict: isConflict))
        }
        Terminal.table(["id"] + TaskKind.columns, rows)
    }
}

/// A status change of a task: `start`, `hold`, `done`, `cancel` (``TaskTransition``, the model's rule).
protocol TaskTransitionCommand {
    static var transition: TaskTransition { get }
    static var abstract: String { get }
}

enum StartTask: TaskTransitionCommand {
    static let transition = TaskTransition.start
    static let abstract = "Mark a task in progress."
}

enum HoldTask: TaskTransitionCommand {
    static let transition = TaskTransition.hold
    static let abstract = "Put a task on hold."
}

enum DoneTask: TaskTransitionCommand {
    static let transition = TaskTransition.done
    static let abstract = "Mark a task completed."
}

enum CancelTask: TaskTransitionCommand {
    static let transition = TaskTransition.cancel
    static let abstract = "Cancel a task."
}

struct Transition<Kind: TaskTransitionCommand>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: Kind.transition.rawValue, abstract: Kind.abstract)
    }

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The task's id.", valueName: "task-id")) var id: String

    mutating func run() throws {
        let store = try storeOptions.open()
        let record = try RecordOutput.require(id, .task, in: store)
        guard let task = TaskView(record) else { throw CLIError.input("'\(id)' is not a task id") }
        guard task.allows(Kind.transition) else {
            throw CLIError.input(
                "task \(id) is \(task.status ?? ""); to reopen it deliberately, run "
                    + "'outpost task set \(id) status=in-progress'"
            )
        }
        try store.transition(task.id, Kind.transition)
        print("\(id): \(Kind.transition.status)")
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
