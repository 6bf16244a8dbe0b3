public import OutpostCRDT
public import OutpostModel

extension CareStore {
    /// Moves a task's status by `transition` (start, hold, done, cancel), by the model's rule
    /// (``TaskView/status(after:)``): only an open task moves; a closed one is reopened by setting its status.
    ///
    /// For example, `try store.transition(task, .done)` marks a task completed and returns the edit's changes.
    ///
    /// - Throws: ``ClientError`` `unknownRecord` when the task is not held here; `invalidEdit` (its cause the
    ///   model's `closedTask`) when the task is closed. Nothing is written then.
    @discardableResult
    public func transition(_ task: TaskID, _ transition: TaskTransition) throws(ClientError) -> [Change] {
        let ref = RecordRef(type: RecordType.task.rawValue, id: task.rawValue)
        guard let view = try record(ref).flatMap(TaskView.init) else {
            throw ClientError(
                code: .unknownRecord,
                message: "no task with id \(task.rawValue) on this replica; check the id with 'outpost task list'"
            )
        }
        let status: String
        do {
            status = try view.status(after: transition)
        } catch {
            throw Self.invalid(error)
        }
        return try update([.assign(ref, "status", .string(status))])
    }
}
