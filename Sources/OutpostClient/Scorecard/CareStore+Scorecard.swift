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
            changes.append(contentsOf: try store.changes(ofType: type.rawValue, fields: fields))
        }
        return ScorecardData(records: records, changes: changes)
    }
}

extension LocalStore {
    /// Every change this replica has seen to `fields` of records of `type`, in log order.
    func changes(ofType type: String, fields: Set<String>) throws(ClientError) -> [Change] {
        try read(doing: "read the change log") { db in
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT id, payload FROM change WHERE type = ? ORDER BY seq",
                arguments: [type]
            )
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
