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
        // The tasks, the largest part, are read while the rest is.
        let store = store
        let (tasks, (records, observations, encounters, changes)) = try bothAtOnce { () throws(ClientError) in
            try store.projectedRows(
                of: Projection.task,
                columns: ["patient", "status", "kind", "dueDate", "referralSentOn", "resultReceivedOn"]
            ) { id, values, _ in
                ScorecardTask(
                    id: id,
                    patient: values[0].text,
                    status: values[1].text,
                    kind: values[2].text,
                    dueDate: values[3].text,
                    referralSentOn: values[4].text,
                    resultReceivedOn: values[5].text
                )
            }
        } _: { () throws(ClientError) in
            var records: [MaterializedRecord] = []
            for type in [RecordType.subgroup, .team, .site] {
                records.append(contentsOf: try self.records(type))
            }
            records.append(contentsOf: try store.projectedPatients(sites: true))
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
            return (
                records, try store.projectedObservations(values: true), try store.projectedEncounters(costs: true),
                changes
            )
        }
        return ScorecardData(
            records: records,
            tasks: tasks,
            observations: observations,
            encounters: encounters,
            changes: changes
        )
    }
}

extension LocalStore {
    /// Every row of `table` of the projection made into a `Row` by `make` from its id, the values of `columns`
    /// and its extra list from the side table `side` (as ``forEachProjectedRow(of:columns:side:filter:db:_:)``
    /// gives them), in id order.
    func projectedRows<Row>(
        of table: Projection.Table,
        columns: [String],
        side: (table: String, owner: String, value: String)? = nil,
        _ make: (String, [DatabaseValue], [String]) throws -> Row
    ) throws(ClientError) -> [Row] {
        try read(doing: "read the \(table.name) rows") { db in
            var result: [Row] = []
            try forEachProjectedRow(of: table, columns: ["id"] + columns, side: side, db: db) { values, extra in
                result.append(try make(values[0].text ?? "", Array(values[1...]), extra))
            }
            return result
        }
    }

    /// Every encounter as the projection holds it (with `costs`, its cost; without, none).
    func projectedEncounters(costs withCosts: Bool) throws(ClientError) -> [ScorecardEncounter] {
        let columns = ["patient", "kind", "occurredAt", "status"] + (withCosts ? ["costCents"] : [])
        return try projectedRows(of: Projection.encounter, columns: columns) { id, values, _ in
            ScorecardEncounter(
                id: id,
                patient: values[0].text,
                kind: values[1].text,
                occurredAt: values[2].text,
                status: values[3].text,
                costCents: withCosts ? Int64.fromDatabaseValue(values[4]) : nil
            )
        }
    }

    /// Every observation as the projection holds it (with `values`, its value and unit; without, neither).
    func projectedObservations(values withValues: Bool) throws(ClientError) -> [ScorecardObservation] {
        let columns = ["patient", "code", "effectiveAt", "status"] + (withValues ? ["value", "unit"] : [])
        return try projectedRows(of: Projection.observation, columns: columns) { id, values, _ in
            ScorecardObservation(
                id: id,
                patient: values[0].text,
                code: values[1].text,
                effectiveAt: values[2].text,
                status: values[3].text,
                value: withValues ? values[4].text : nil,
                unit: withValues ? values[5].text : nil
            )
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
