import OutpostCRDT

/// A one-step status change of a care task: what `outpost task start|hold|done|cancel` and an app's buttons do.
///
/// Only an open task moves by a transition. A closed one (completed, cancelled, failed, entered-in-error) stays
/// closed until someone reopens it deliberately by setting its status, so a late "start" from a second device
/// never reopens finished work by accident.
public enum TaskTransition: String, Sendable, Hashable, CaseIterable {
    /// Work has begun: `in-progress`.
    case start
    /// Work is paused: `on-hold`.
    case hold
    /// Work is finished: `completed`.
    case done
    /// Work will not be done: `cancelled`.
    case cancel

    /// The FHIR Task status the transition sets.
    public var status: String {
        switch self {
        case .start: "in-progress"
        case .hold: "on-hold"
        case .done: "completed"
        case .cancel: "cancelled"
        }
    }
}

extension TaskView {
    /// Whether `transition` may be made now: only while the task is open (``isClosed`` is false).
    public func allows(_ transition: TaskTransition) -> Bool { !isClosed }

    /// The status `transition` sets on this task.
    ///
    /// For example, `start` on a requested task gives `in-progress`; `start` on a completed task throws.
    ///
    /// - Throws: ``ModelError`` `closedTask` when the task is closed; its message says how to reopen it.
    public func status(after transition: TaskTransition) throws(ModelError) -> String {
        guard allows(transition) else {
            throw ModelError(
                code: .closedTask,
                field: "task.status",
                rule: "start, hold, done and cancel move an open task; a closed task is reopened by setting its status",
                message: "the task is \(status ?? "closed"); to reopen it deliberately, set its status to in-progress",
                record: RecordRef(type: RecordType.task.rawValue, id: id.rawValue)
            )
        }
        return transition.status
    }
}
