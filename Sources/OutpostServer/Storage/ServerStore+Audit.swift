import Foundation
import GRDB
import OutpostProtocol

/// One administrator's act, as the audit log keeps it: who, when, what, on which practice and object; never a
/// secret or patient data.
public struct AuditEntry: Sendable, Hashable, Codable {
    /// Its position in the log.
    public var seq: Int64
    /// When, in milliseconds since 1970.
    public var atMillis: UInt64
    /// Who: the system user who ran the command.
    public var actor: String
    /// What: `practice.add`, `token.issue`, `token.revoke`, `token.rotate`, `purge`.
    public var action: String
    /// The practice acted on.
    public var practice: String?
    /// The object acted on: a token id, a patient id.
    public var subject: String?
    /// Details in words (a token's role and scope, a purge's record count), without secrets or patient data.
    public var detail: String
}

extension ServerStore {
    /// Appends to the audit log, in the transaction of the act it records.
    static func audit(
        _ action: String,
        practice: String?,
        subject: String?,
        detail: String,
        now: UInt64,
        db: Database
    ) throws {
        try db.execute(
            sql: "INSERT INTO audit (at, actor, action, practice, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [Int64(now), AdminRules.currentActor, action, practice, subject, detail]
        )
    }

    /// The audit log, oldest first, of one practice or of all.
    public func auditLog(practice: String? = nil) throws(ServerError) -> [AuditEntry] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM audit WHERE ? IS NULL OR practice = ? ORDER BY seq
                    """,
                arguments: [practice, practice]
            ).map { row in
                AuditEntry(
                    seq: row["seq"],
                    atMillis: UInt64(row["at"] as Int64),
                    actor: row["actor"],
                    action: row["action"],
                    practice: row["practice"],
                    subject: row["subject"],
                    detail: row["detail"]
                )
            }
        }
    }
}

extension ServerStore {
    public func carryOver(audit entries: [AuditEntry], now: UInt64) throws(ServerError) {
        try write { db in
            for entry in entries {
                try db.execute(
                    sql: "INSERT INTO audit (at, actor, action, practice, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        Int64(entry.atMillis), entry.actor, entry.action, entry.practice, entry.subject, entry.detail,
                    ]
                )
            }
            try Self.audit(
                "restore.carry-over",
                practice: nil,
                subject: nil,
                detail: RestoreCarryOver.carryOverDetail(entries.count),
                now: now,
                db: db
            )
        }
    }
}
