import Foundation
import GRDB
import OutpostCRDT
public import OutpostModel

extension CareStore {
    /// What the scorecard reads, without decoding most tasks: subgroups, teams, sites and patients whole;
    /// tasks from the projection (patient, status, kind, due date), decoded only when they are referrals (the
    /// scorecard reads a referral's sent and result dates, which are not projected); observations and
    /// encounters whole; and the changes of the fields ``ScorecardData/historyFields`` names (a patient's
    /// subgroup, status and care gaps; a completed task's status), so the computation itself stays pure.
    ///
    /// The scorecard computed from this equals the one computed from every record whole
    /// (`ScorecardProjectionTests`): it reads no other field of a task.
    ///
    /// - Throws: ``ClientError`` when the store cannot be read.
    public func scorecardData() throws(ClientError) -> ScorecardData {
        var records: [MaterializedRecord] = []
        for type in [RecordType.subgroup, .team, .site, .patient, .observation, .encounter] {
            records.append(contentsOf: try self.records(type))
        }
        records.append(contentsOf: try store.projectedTasks(decodingKind: "referral"))
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
    /// Every task as the projection holds its patient, status, kind and due date, sorted by id; the tasks of
    /// kind `decodingKind` decoded whole instead (selected on the projection).
    func projectedTasks(decodingKind: String) throws(ClientError) -> [MaterializedRecord] {
        let table = Projection.task
        let whole = try records(
            ofType: RecordType.task.rawValue,
            selectedBy: "SELECT id FROM task_view WHERE kind = ? ORDER BY id",
            arguments: [codec.projection.match(decodingKind, table: table, column: "kind")]
        )
        let decoded = Dictionary(uniqueKeysWithValues: whole.map { ($0.id, $0.state) })
        return try read(doing: "read the tasks") { db in
            let names = ["patient", "status", "kind", "dueDate"]
            var result: [MaterializedRecord] = []
            try forEachProjectedRow(of: table, columns: ["id"] + names, side: nil, db: db) { values, _ in
                let id = String.fromDatabaseValue(values[0]) ?? ""
                if let state = decoded[id] {
                    result.append(MaterializedRecord(type: .task, id: id, state: state))
                    return
                }
                var fields: [String: FieldValue] = [:]
                for (offset, name) in names.enumerated() {
                    if let text = String.fromDatabaseValue(values[offset + 1]) {
                        fields[name] = .single(.string(text), isConflict: false)
                    }
                }
                result.append(MaterializedRecord(type: .task, id: id, fields: fields))
            }
            return result
        }
    }

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
