import Foundation
import GRDB
public import OutpostCRDT

extension LocalStore {
    /// Every change this replica holds, oldest first (by clock, then change id): of every record, or, with
    /// `owner`, of that patient and the records that belong to it; with `sinceMillis`, only changes made
    /// from then on. The change log is append-only: no API edits or removes an entry.
    public func changes(owner: String? = nil, sinceMillis: UInt64? = nil) throws(ClientError) -> [Change] {
        try read(doing: "read the change log") { db in
            let rows: [Row]
            if let owner {
                rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT type, id, payload FROM change
                        WHERE (type = 'patient' AND id = ?)
                           OR (type, id) IN (SELECT type, id FROM record WHERE owner = ?)
                        ORDER BY seq
                        """,
                    arguments: [owner, owner]
                )
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT type, id, payload FROM change ORDER BY seq")
            }
            var changes: [Change] = []
            for row in rows {
                let record = RecordRef(type: row["type"], id: row["id"])
                changes.append(contentsOf: try codec.decodeChanges(row["payload"], of: record))
            }
            if let sinceMillis { changes.removeAll { $0.clock.millis < sinceMillis } }
            return changes.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) }
        }
    }
}
