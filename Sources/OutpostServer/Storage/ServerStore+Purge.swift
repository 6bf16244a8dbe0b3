import Foundation
import GRDB
import HTTPTypes
import OutpostCRDT
import OutpostModel
import OutpostProtocol

/// A legal purge as the audit keeps it: no patient data, only the id, when, why and how much went.
public struct PurgeEntry: Sendable, Hashable, Codable {
    /// The practice.
    public var practice: String
    /// The purged patient's id.
    public var patient: String
    /// Why (as the administrator gave it).
    public var reason: String
    /// How many records went (the patient and the records it owned).
    public var records: Int
    /// When, in milliseconds since the Unix epoch.
    public var atMillis: UInt64
}

extension ServerStore {
    /// Erases a patient and every record that belongs to it (tasks, observations, encounters), with their
    /// changes and conflicts, from the server; every device removes them on its next sync. A purge entry
    /// without patient data remains, and the erased records' ids, so that edits made to them on devices that had
    /// not heard of the purge are not stored.
    ///
    /// - Throws: ``ServerError`` `not_found` when the practice holds no such patient.
    public func purge(practice: String, patient: String, reason: String, now: UInt64) throws(ServerError) -> PurgeEntry
    {
        try purge(practice: practice, patient: patient, reason: reason, now: now, requireHeld: true)
    }

    public func purgeAgain(_ purge: PurgeEntry, now: UInt64) throws(ServerError) {
        _ = try self.purge(
            practice: purge.practice,
            patient: purge.patient,
            reason: purge.reason,
            now: now,
            requireHeld: false
        )
    }

    /// A purge; without `requireHeld`, of a patient the store may not hold (``purgeAgain(_:now:)``): its id is kept
    /// as erased and the purge recorded all the same.
    private func purge(
        practice: String,
        patient: String,
        reason: String,
        now: UInt64,
        requireHeld: Bool
    ) throws(ServerError) -> PurgeEntry {
        let trimmed = try AdminRules.purgeReason(reason)
        var tailRows = 0
        defer { folder.folded(tailRows) }
        return try write { db in
            let held =
                try Bool.fetchOne(
                    db,
                    sql: "SELECT 1 FROM record WHERE type = 'patient' AND id = ? AND practice = ?",
                    arguments: [patient, practice]
                ) == true
            guard held || !requireHeld else {
                throw ServerError.noPatient(patient, practice: practice)
            }
            let refs = try Row.fetchAll(
                db,
                sql: """
                    SELECT type, id FROM record
                    WHERE practice = ? AND ((type = 'patient' AND id = ?) OR owner = ?)
                    """,
                arguments: [practice, patient, patient]
            )
            // The changes in one walk of the practice's feed: they are not indexed by record (migration
            // `v10-changes-by-feed`), and a purge is rare.
            try db.execute(
                sql: """
                    DELETE FROM change WHERE practice = ?1 AND (type, id) IN (
                        SELECT type, id FROM record WHERE practice = ?1 AND ((type = 'patient' AND id = ?2) OR owner = ?2)
                    )
                    """,
                arguments: [practice, patient]
            )
            for ref in refs {
                tailRows += try Self.erase(RecordRef(type: ref["type"], id: ref["id"]), practice: practice, db: db)
                    .tailRows
            }
            // A patient not held is erased by id alone: a device pushing its records again is not stored.
            if !held {
                _ = try Self.erase(
                    RecordRef(type: RecordType.patient.rawValue, id: patient),
                    practice: practice,
                    db: db
                )
            }
            for table in ["patient_scope", "patient_site", "device_patient"] {
                try db.execute(
                    sql: "DELETE FROM \(table) WHERE practice = ? AND patient = ?",
                    arguments: [practice, patient]
                )
            }
            // Every device learns of the purge when it pulls from an earlier position.
            let position = try Self.newPurgePosition(db: db)
            let entry = PurgeEntry(
                practice: practice,
                patient: patient,
                reason: trimmed,
                records: refs.count,
                atMillis: now
            )
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO purge (practice, patient, position, reason, records, at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [practice, patient, position, trimmed, refs.count, Int64(now)]
            )
            // The reason stays in the purge table; the log says that it happened and how much went.
            try Self.audit(
                "purge",
                practice: practice,
                subject: patient,
                detail: "\(refs.count) records erased",
                now: now,
                db: db
            )
            return entry
        }
    }

    /// Erases one record the practice holds, or held: its id kept (ids only), so that an edit made to it on a device
    /// that had not heard of its erasure is acknowledged and not stored (``PushJudge/erasedRecords(of:context:)``);
    /// its row, tail and conflicts deleted. Its change rows are the caller's: a purge deletes a patient's in one walk
    /// of the feed. Returns the tail rows deleted, and whether the practice held the record's row.
    static func erase(_ ref: RecordRef, practice: String, db: Database) throws -> (tailRows: Int, held: Bool) {
        let arguments: StatementArguments = [practice, ref.type, ref.id]
        try db.execute(sql: "INSERT OR IGNORE INTO erased (practice, type, id) VALUES (?, ?, ?)", arguments: arguments)
        var tailRows = 0
        for table in ["conflict", "record_tail", "record"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE practice = ? AND type = ? AND id = ?", arguments: arguments)
            if table == "record_tail" { tailRows = db.changesCount }
        }
        return (tailRows, db.changesCount > 0)
    }

    /// A new feed position for a purge, past every checkpoint ever given out, reserved: the next change takes the
    /// position after it.
    static func newPurgePosition(db: Database) throws -> Int64 {
        let position =
            (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'change'") ?? 0) + 1
        try reserveFeedPosition(atLeast: position, db: db)
        return position
    }

    /// The practice's purges, oldest first.
    public func purges(practice: String) throws(ServerError) -> [PurgeEntry] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM purge WHERE practice = ? ORDER BY at, patient",
                arguments: [practice]
            ).map {
                PurgeEntry(
                    practice: $0["practice"],
                    patient: $0["patient"],
                    reason: $0["reason"],
                    records: $0["records"],
                    atMillis: UInt64($0["at"] as Int64)
                )
            }
        }
    }

    /// What a device must remove for the purges after feed position `since`: the patients purged and, beside each,
    /// the records a push gave it after its purge whose earlier part the store had held without an owner (kept with
    /// the patient in `erased`; ``write(_:practice:tails:partly:now:db:)``), which devices may hold under no patient.
    /// Sorted.
    static func purged(practice: String, since: Int64, db: Database) throws -> [String] {
        let patients = try String.fetchAll(
            db,
            sql: "SELECT patient FROM purge WHERE practice = ? AND position > ? ORDER BY patient",
            arguments: [practice, since]
        )
        guard !patients.isEmpty else { return [] }
        let records = try String.fetchAll(
            db,
            sql: """
                SELECT e.id FROM purge p JOIN erased e ON e.practice = p.practice AND e.patient = p.patient
                WHERE p.practice = ? AND p.position > ?
                """,
            arguments: [practice, since]
        )
        return records.isEmpty ? patients : (patients + records).sorted()
    }

    /// The highest purge position of a practice (0 without purges).
    static func purgeHead(practice: String, db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT MAX(position) FROM purge WHERE practice = ?", arguments: [practice]) ?? 0
    }
}
