import Foundation
import GRDB
import OutpostCRDT
public import OutpostModel

extension CareStore {
    /// What the scorecard, panel and gap rules read: every record, and the changes of the fields
    /// ``ScorecardData/historyFields`` names (a patient's subgroup, status and care gaps; a task's
    /// status), so the computation itself stays pure.
    ///
    /// - Throws: ``ClientError`` when the store cannot be read.
    public func scorecardData() throws(ClientError) -> ScorecardData {
        var records: [MaterializedRecord] = []
        for type in RecordType.allCases {
            records.append(contentsOf: try self.records(type))
        }
        var changes: [Change] = []
        for (type, fields) in ScorecardData.historyFields {
            // A task's history is read only for completed tasks (selected on the projection): the scorecard
            // dates a completion from it (Scorecard.completionDay) and reads no other task's history.
            let completedTasks = type == .task ? "completed" : nil
            changes.append(contentsOf: try store.changes(ofType: type.rawValue, fields: fields, status: completedTasks))
        }
        return ScorecardData(records: records, changes: changes)
    }
}

extension LocalStore {
    /// Every change this replica has seen to `fields` of records of `type`, in log order; with `status`, only
    /// of the tasks whose projected status it is (`type` must then be `task`).
    func changes(ofType type: String, fields: Set<String>, status: String? = nil) throws(ClientError) -> [Change] {
        try read(doing: "read the change log") { db in
            var sql = "SELECT id, payload FROM change WHERE type = ?"
            var arguments: [(any DatabaseValueConvertible)?] = [type]
            if let status {
                sql += " AND id IN (SELECT id FROM task_view WHERE status = ?)"
                arguments.append(codec.projection.match(status, table: Projection.task, column: "status"))
            }
            let rows = try Row.fetchCursor(db, sql: sql + " ORDER BY seq", arguments: StatementArguments(arguments))
            var changes: [Change] = []
            while let row = try rows.next() {
                let record = RecordRef(type: type, id: row["id"])
                changes.append(
                    contentsOf: try codec.decodeChanges(row["payload"], of: record).filter {
                        fields.contains($0.field)
                    }
                )
            }
            return changes
        }
    }
}
