import OutpostCRDT

/// The fields of a care task that worklists show, read from a ``MaterializedRecord``.
public struct TaskView: Sendable, Hashable {
    /// The task's id.
    public var id: TaskID
    /// The patient the task is for.
    public var patient: PatientID?
    /// The owning team.
    public var team: TeamID?
    /// What sort of work it is (`outreach`, `referral`, …).
    public var kind: String?
    /// What to do (patient data: never log it).
    public var title: String?
    /// FHIR Task status.
    public var status: String?
    /// FHIR priority.
    public var priority: String?
    /// When it is due.
    public var dueDate: CalendarDate?
    /// Who is doing it.
    public var assignee: PersonID?
    /// How the patient is reached.
    public var channel: String?
    /// Referral loop status, for referrals.
    public var referralStatus: String?
    /// Fields with concurrent values awaiting review.
    public var conflictedFields: [String]

    /// Reads a task; `nil` when `record` is not a task with a well-formed id.
    public init?(_ record: MaterializedRecord) {
        guard record.type == .task, let id = TaskID(record.id) else { return nil }
        self.id = id
        patient = record.string("patient").flatMap { PatientID($0) }
        team = record.string("team").flatMap { TeamID($0) }
        kind = record.string("kind")
        title = record.string("title")
        status = record.string("status")
        priority = record.string("priority")
        dueDate = record.string("dueDate").flatMap { CalendarDate($0) }
        assignee = record.string("assignee").flatMap { PersonID($0) }
        channel = record.string("channel")
        referralStatus = record.string("referralStatus")
        conflictedFields = record.conflictedFields
    }

    /// Whether the task's status ends the work (completed, cancelled, failed) or voids it
    /// (entered-in-error).
    public var isClosed: Bool {
        status.map(Self.isClosed(status:)) ?? false
    }

    /// Whether a task of status `status` is closed (``isClosed``), for readers that hold only the status.
    public static func isClosed(status: String) -> Bool {
        CareModel.taskStatusRules.terminal.contains(status) || CareModel.taskStatusRules.overriding.contains(status)
    }

    /// Whether the task is open and its due date is before `today`.
    public func isOverdue(today: CalendarDate) -> Bool {
        guard !isClosed, let dueDate else { return false }
        return dueDate < today
    }
}
