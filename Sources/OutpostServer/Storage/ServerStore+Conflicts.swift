import Foundation
import GRDB
public import OutpostCRDT
import OutpostModel

/// An open conflict as the umbrella store holds it.
public struct ServerConflict: Sendable, Hashable {
    /// The conflict's id, `RECORD-ID.field`, the same as on every replica.
    public var id: String
    /// The practice it belongs to.
    public var practice: String
    /// The conflict: every concurrent value with its provenance.
    public var conflict: FieldConflict
    /// When the server first saw it.
    public var detectedAtMillis: UInt64
}

extension ServerStore {
    /// The open conflicts of one practice, sorted by record and field; with `id`, only that one.
    public func conflicts(practice: String, id: String? = nil) throws(ServerError) -> [ServerConflict] {
        try read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.type, c.id, c.field, c.detectedAt, r.state FROM conflict c
                    JOIN record r ON r.practice = c.practice AND r.type = c.type AND r.id = c.id
                    WHERE c.practice = ? ORDER BY c.type, c.id, c.field
                    """,
                arguments: [practice]
            )
            var result: [ServerConflict] = []
            for row in rows {
                let ref = RecordRef(type: row["type"], id: row["id"])
                let field: String = row["field"]
                if let id, id != "\(ref.id).\(field)" { continue }
                if let conflict = try AdminRules.conflict(
                    practice: practice,
                    record: ref,
                    field: field,
                    state: try Self.mergedBytes(
                        Array(row["state"] as Data),
                        payloads: Self.tailPayloads(practice: practice, ref: ref, db: db)
                    ),
                    detectedAt: row["detectedAt"]
                ) {
                    result.append(conflict)
                }
            }
            return result
        }
    }
}
