import Foundation
import GRDB
import OutpostCRDT
public import OutpostModel

extension CareStore {
    /// What the scorecard reads, without decoding a patient, task, observation or encounter: subgroups, teams
    /// and sites whole (a few records); patients (primary team, sites, subgroup, status, date of death, care
    /// gaps, conditions, merge link), tasks (patient, status, kind, due date, a referral's sent and result
    /// dates), observations (patient, code, time, value, status) and encounters (patient, kind, time, status,
    /// cost) from the projection; and the changes of the fields ``ScorecardData/historyFields`` names (a
    /// patient's subgroup, status and care gaps; the status of a completed task whose status was written more
    /// than once, the only ones `Scorecard.completionDay` can date), so the computation itself stays pure.
    ///
    /// The scorecard computed from this equals the one computed from every record whole
    /// (`ProjectionTests`, after random writes on plain and encrypted stores): it reads no other field.
    ///
    /// - Throws: ``ClientError`` when the store cannot be read.
    public func scorecardData() throws(ClientError) -> ScorecardData {
        var records: [MaterializedRecord] = []
        for type in [RecordType.subgroup, .team, .site] {
            records.append(contentsOf: try self.records(type))
        }
        records.append(contentsOf: try store.projectedPatients(sites: true))
        records.append(
            contentsOf: try store.projectedRecords(
                .task,
                Projection.task,
                fields: ["patient", "status", "kind", "dueDate", "referralSentOn", "resultReceivedOn"]
            )
        )
        records.append(
            contentsOf: try store.projectedRecords(
                .observation,
                Projection.observation,
                fields: ["patient", "code", "effectiveAt", "status", "value"]
            )
        )
        records.append(
            contentsOf: try store.projectedRecords(
                .encounter,
                Projection.encounter,
                fields: ["patient", "kind", "occurredAt", "status", "costCents"]
            )
        )
        var changes: [Change] = []
        for (type, fields) in ScorecardData.historyFields {
            changes.append(
                contentsOf: try store.changes(
                    ofType: type.rawValue,
                    fields: fields,
                    datedCompletionsOnly: type == .task
                )
            )
        }
        return ScorecardData(records: records, changes: changes)
    }
}

extension LocalStore {
    /// Every record of `type` as `table` of the projection holds it: the columns `fields` (named as the
    /// record's fields) as registers, a text column's text, an integer column's number; sorted by id.
    func projectedRecords(
        _ type: RecordType,
        _ table: Projection.Table,
        fields: [String]
    ) throws(ClientError) -> [MaterializedRecord] {
        try read(doing: "read the \(type.rawValue) records") { db in
            var result: [MaterializedRecord] = []
            try forEachProjectedRow(of: table, columns: ["id"] + fields, side: nil, db: db) { values, _ in
                var projected = [String: FieldValue](minimumCapacity: fields.count)
                for (offset, name) in fields.enumerated() {
                    switch values[offset + 1].storage {
                    case .string(let text): projected[name] = .single(.string(text), isConflict: false)
                    case .int64(let number): projected[name] = .single(.int(number), isConflict: false)
                    default: continue
                    }
                }
                result.append(
                    MaterializedRecord(type: type, id: String.fromDatabaseValue(values[0]) ?? "", fields: projected)
                )
            }
            return result
        }
    }

    /// Every change this replica has seen to `fields` of records of `type`, in log order; with
    /// `datedCompletionsOnly`, only of the tasks whose projected status is `completed` and whose status was
    /// written more than once (`type` must then be `task`): the only ones whose completion has a date.
    func changes(
        ofType type: String,
        fields: Set<String>,
        datedCompletionsOnly: Bool = false
    ) throws(ClientError) -> [Change] {
        try read(doing: "read the change log") { db in
            var sql = "SELECT id, payload FROM change WHERE type = ?"
            var arguments: [(any DatabaseValueConvertible)?] = [type]
            if datedCompletionsOnly {
                sql += " AND id IN (SELECT id FROM task_view WHERE status = ? AND statusHistory = ?)"
                arguments.append(codec.projection.match("completed", table: Projection.task, column: "status"))
                arguments.append(codec.projection.match(true, table: Projection.task, column: "statusHistory"))
            }
            let rows = try Row.fetchCursor(db, sql: sql + " ORDER BY seq", arguments: StatementArguments(arguments))
            var changes: [Change] = []
            while let row = try rows.next() {
                let record = RecordRef(type: type, id: row["id"])
                changes.append(contentsOf: try codec.decodeChanges(row["payload"], of: record, fields: fields))
            }
            return changes
        }
    }
}
