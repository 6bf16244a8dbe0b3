import GRDB

extension LocalStore {
    /// The server epoch this replica last synced with (protocol/README.md, "Epochs"), or `nil` before its first
    /// sync with a server that has epochs.
    public func serverEpoch() throws(ClientError) -> String? {
        try read(doing: "read the server epoch") { db in
            try String.fetchOne(db, sql: "SELECT serverEpoch FROM replica WHERE id = 1")
        }
    }

    /// Records `epoch` as the server's. With `serverHolds`, the server is in a new epoch (restored from a
    /// backup): in the same transaction the checkpoint is forgotten, so the next sync bootstraps again, and
    /// every change of this replica above `serverHolds` (the highest counter the server holds of it) is put back
    /// in the outbox, so the next push sends again what the server lacks (what it holds already is counted as a
    /// duplicate). Changes held aside after a refusal stay aside. A refused change that was retried and stored
    /// may lie below `serverHolds` (later changes went past it while it was held) yet be missing from the
    /// backup: every such change (`retried_change`) is sent again too, at the head of the next push, never shown
    /// as refused, and so is every change of this replica above `serverHolds` to a patient that left its scope, which
    /// the device removed with the patient and keeps only there (``applyPage(changes:records:removed:leftScope:checkpoint:)``).
    /// Returns how many changes were put back.
    @discardableResult
    public func adoptServerEpoch(_ epoch: String, serverHolds: UInt64?) throws(ClientError) -> Int {
        try write(doing: "record the server epoch") { db in
            try db.execute(sql: "UPDATE replica SET serverEpoch = ? WHERE id = 1", arguments: [epoch])
            guard let serverHolds else { return 0 }
            try db.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1")
            let acked = try Int64.fetchOne(db, sql: "SELECT ackedCounter FROM replica WHERE id = 1") ?? 0
            let holds = Int64(clamping: serverHolds)
            // Sent from their own copies (the change log may have dropped them: LocalStore+Compaction.swift), at the
            // head of the next push, and left out of the outbox proper (pendingChanges) when above `holds`. A retried
            // change may lie below `holds` and be missing from the backup; a change kept of a patient that left the
            // scope (`sealed`) at or below it is in the backup (or was compacted there, superseded), so only those
            // above it go: sent again, the others would be judged against today's scope, and refused.
            // (Set again at each restore: a sealed change marked by another one may be held by this one's store.)
            try db.execute(
                sql: "UPDATE retried_change SET resend = (sealed = 0 OR counter > ?)",
                arguments: [holds]
            )
            // Those the outbox does not hold already (a sealed change still in it is sent once, from its copy).
            let retried =
                try Int.fetchOne(
                    db,
                    sql: "SELECT count(*) FROM retried_change WHERE resend = 1 AND counter <= ?",
                    arguments: [acked]
                ) ?? 0
            guard holds < acked else { return retried }
            try db.execute(sql: "UPDATE replica SET ackedCounter = ? WHERE id = 1", arguments: [holds])
            let aside =
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT (SELECT count(*) FROM refused_change WHERE counter > ?1 AND counter <= ?2)
                            + (SELECT count(*) FROM retried_change WHERE counter > ?1 AND counter <= ?2)
                        """,
                    arguments: [holds, acked]
                ) ?? 0
            return Int(acked - holds) - aside + retried
        }
    }
}
