/// The worklist's order: the rule `outpost worklist` and any app embedding the model show open tasks in.
extension TaskView {
    /// How priorities rank on a worklist, most pressing first; a task without a known priority comes after
    /// every ranked one.
    public static let worklistPriorityRank = ["stat": 0, "asap": 1, "urgent": 2, "routine": 3]

    /// Whether `self` comes before `other` on a worklist as of `today`: overdue tasks first, then by
    /// priority (stat, asap, urgent, routine), then by due date (tasks without one last), then by id.
    public func precedesOnWorklist(_ other: TaskView, today: CalendarDate) -> Bool {
        let overdue = dueDate.map { $0 < today } ?? false
        let otherOverdue = other.dueDate.map { $0 < today } ?? false
        if overdue != otherOverdue { return overdue }
        let rank = Self.worklistPriorityRank[priority ?? ""] ?? 4
        let otherRank = Self.worklistPriorityRank[other.priority ?? ""] ?? 4
        if rank != otherRank { return rank < otherRank }
        switch (dueDate, other.dueDate) {
        case (let due?, let otherDue?) where due != otherDue: return due < otherDue
        case (.some, nil): return true
        case (nil, .some): return false
        default: return id < other.id
        }
    }
}
