import Foundation
import GRDB
import HTTPTypes
public import OutpostCRDT
import OutpostModel
public import OutpostProtocol

/// A page of the changes feed for a scoped device: changes in scope, plus the full state of patients that
/// entered its scope and the ids of patients that left it.
public struct ScopedFeedPage: Sendable {
    /// The page of changes (structure and in-scope patients).
    public var feed: FeedPage
    /// The current records of patients that entered the scope (each patient and the records it owns).
    public var records: [SnapshotRecord]
    /// Patients that left the scope: the device purges them.
    public var removed: [String]
}

extension ServerStore {
    /// The patients of a practice in `scope`: primary team among its teams, or a site among its sites.
    static func patients(in scope: Scope, practice: String, db: Database) throws -> Set<String> {
        var result = Set<String>()
        if !scope.teams.isEmpty {
            let marks = Array(repeating: "?", count: scope.teams.count).joined(separator: ",")
            result.formUnion(
                try String.fetchAll(
                    db,
                    sql: "SELECT patient FROM patient_scope WHERE practice = ? AND team IN (\(marks))",
                    arguments: StatementArguments([practice] + scope.teams)
                )
            )
        }
        if !scope.sites.isEmpty {
            let marks = Array(repeating: "?", count: scope.sites.count).joined(separator: ",")
            result.formUnion(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT patient FROM patient_site WHERE practice = ? AND site IN (\(marks))
                        """,
                    arguments: StatementArguments([practice] + scope.sites)
                )
            )
        }
        return result
    }

    /// Whether a record is visible to a scope: the practice's structure always, a patient and its records
    /// when the patient is in scope.
    static func isVisible(type: String, id: String, owner: String?, inScope: Set<String>) -> Bool {
        if type == RecordType.patient.rawValue { return inScope.contains(id) }
        guard let owner else { return CareModel.ownerField[type] == nil }
        return inScope.contains(owner)
    }

    /// One page of the feed for a device with a scoped token: see ``ScopedFeedPage``. Records which patients
    /// the device was sent or told to purge, so entering and leaving are sent once the device has applied
    /// them, and again until then.
    public func scopedPull(
        practice: String,
        scope: Scope,
        replica: ReplicaID,
        since: Int64,
        limit: Int
    )
        throws(ServerError) -> ScopedFeedPage
    {
        try write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, replica, type, id, owner, payload FROM change WHERE practice = ? AND seq > ?
                    ORDER BY seq LIMIT ?
                    """,
                arguments: [practice, since, limit + 1]
            )
            let scanned = rows.prefix(limit)
            var checkpoint: Int64 = scanned.last.map { $0["seq"] } ?? since
            if rows.count <= limit { checkpoint = max(checkpoint, try Self.feedHead(practice: practice, db: db)) }
            let inScope = try Self.patients(in: scope, practice: practice, db: db)
            var known: [String: (state: String, at: Int64, atSince: Int64)] = [:]
            for row in try Row.fetchAll(
                db,
                sql: "SELECT patient, state, at, atSince FROM device_patient WHERE practice = ? AND replica = ?",
                arguments: [practice, replica.rawValue]
            ) {
                known[row["patient"]] = (row["state"], row["at"], row["atSince"])
            }
            func isApplied(_ entry: (state: String, at: Int64, atSince: Int64)) -> Bool {
                since >= entry.at && since > entry.atSince
            }
            var entering: [String] = []
            for patient in inScope.sorted() {
                if let entry = known[patient], entry.state == "in", isApplied(entry) { continue }
                entering.append(patient)
            }
            var removed: [String] = []
            for (patient, entry) in known.sorted(by: { $0.key < $1.key }) where !inScope.contains(patient) {
                if entry.state == "in" || !isApplied(entry) {
                    removed.append(patient)
                } else {
                    try db.execute(
                        sql: "DELETE FROM device_patient WHERE practice = ? AND replica = ? AND patient = ?",
                        arguments: [practice, replica.rawValue, patient]
                    )
                }
            }
            for (patients, state) in [(entering, "in"), (removed, "out")] {
                for patient in patients {
                    try db.cachedStatement(
                        sql: """
                            INSERT INTO device_patient (practice, replica, patient, state, at, atSince)
                            VALUES (?, ?, ?, ?, ?, ?)
                            ON CONFLICT (practice, replica, patient) DO UPDATE
                            SET state = excluded.state, at = excluded.at, atSince = excluded.atSince
                            """
                    ).execute(arguments: [practice, replica.rawValue, patient, state, checkpoint, since])
                }
            }
            var records: [SnapshotRecord] = []
            for patient in entering {
                for row in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT type, id, state FROM record
                        WHERE practice = ? AND ((type = 'patient' AND id = ?) OR owner = ?) ORDER BY type, id
                        """,
                    arguments: [practice, patient, patient]
                ) {
                    var reader = BinaryReader(Array(row["state"] as Data))
                    records.append(
                        SnapshotRecord(
                            record: RecordRef(type: row["type"], id: row["id"]),
                            state: try reader.readRecordState()
                        )
                    )
                }
            }
            let fresh = Set(entering)
            let payloads: [Data] = scanned.compactMap { row in
                // The device holds its own changes already.
                if row["replica"] as String == replica.rawValue { return nil }
                let owner: String? = row["owner"]
                let type: String = row["type"]
                let id: String = row["id"]
                guard Self.isVisible(type: type, id: id, owner: owner, inScope: inScope) else { return nil }
                if let patient = type == RecordType.patient.rawValue ? id : owner, fresh.contains(patient) {
                    return nil
                }
                return row["payload"]
            }
            let purged = try Self.purged(practice: practice, since: since, db: db)
            return ScopedFeedPage(
                feed: FeedPage(payloads: payloads, checkpoint: checkpoint, hasMore: rows.count > limit),
                records: records,
                removed: Array(Set(removed + purged)).sorted()
            )
        }
    }

    /// Records, for the first snapshot page of a scoped device, that it is being sent every patient now in
    /// its scope, as of the snapshot's checkpoint.
    public func registerSnapshot(
        practice: String,
        scope: Scope,
        replica: ReplicaID,
        checkpoint: Int64
    )
        throws(ServerError)
    {
        try write { db in
            try db.execute(
                sql: "DELETE FROM device_patient WHERE practice = ? AND replica = ?",
                arguments: [practice, replica.rawValue]
            )
            for patient in try Self.patients(in: scope, practice: practice, db: db) {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO device_patient (practice, replica, patient, state, at, atSince)
                        VALUES (?, ?, ?, 'in', ?, ?)
                        """
                ).execute(arguments: [practice, replica.rawValue, patient, checkpoint, checkpoint - 1])
            }
        }
    }

    /// The patients in a scope now (for filtering a snapshot).
    public func patients(in scope: Scope, practice: String) throws(ServerError) -> Set<String> {
        try read { db in try Self.patients(in: scope, practice: practice, db: db) }
    }

    /// Checks that `replica` may pull with `token`, binding a new device's replica id to the token on its first
    /// pull: a replica id bound to another token is `403 replica_mismatch` (see ``bindDevice(_:token:now:db:)``).
    public func claimReplica(_ replica: ReplicaID, token: TokenEntry, now: UInt64) throws(ServerError) {
        try write { db in try Self.bindDevice(replica, token: token, now: now, db: db) }
    }
}
