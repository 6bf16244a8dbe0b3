import Foundation
import GRDB
import HTTPTypes
import OutpostCRDT
import OutpostModel
import OutpostProtocol

/// The records one push touches, loaded once, checked and merged in memory, written back at the end.
struct PushBatch {
    let practice: String
    let db: Database
    private var states: [RecordRef: RecordState] = [:]
    private var isNew: Set<RecordRef> = []
    private var touched: Set<FieldKey> = []
    private var touchedRecords: Set<RecordRef> = []
    /// The owner column of the records loaded from the store, to notice an owner learnt by this push.
    private var storedOwners: [RecordRef: String?] = [:]
    /// Every record this push writes, known before the first change is checked: a change may name as its
    /// author or site a person or site that a later change of the same push creates.
    var written: Set<RecordRef> = []

    private struct FieldKey: Hashable {
        var record: RecordRef
        var field: String
    }

    /// For a scoped token, the patients in its scope when the push began; `nil` for the whole practice.
    var patientsInScope: Set<String>?

    init(practice: String, db: Database) {
        self.practice = practice
        self.db = db
    }

    /// The record types only an administrator may write: the practice's structure.
    static let structureTypes: Set<RecordType> = [.practice, .site, .person, .team, .subgroup]

    /// Checks one change against the role and the care model, in the context of the batch so far.
    mutating func check(_ change: Change, index: Int, token: TokenEntry, today: CalendarDate) throws {
        let role = token.role
        guard let type = RecordType(rawValue: change.record.type) else {
            throw ServerError(
                .invalidChange,
                .unprocessableContent,
                "change \(index) names record type '\(change.record.type)', which is not one of the care model's",
                field: "record.type",
                index: index
            )
        }
        guard type.isValidID(change.record.id) else {
            throw ServerError(
                .invalidChange,
                .unprocessableContent,
                "change \(index) names '\(change.record.id)', which is not a \(type) id",
                field: "record.id",
                index: index
            )
        }
        if Self.structureTypes.contains(type) && role != .admin {
            throw ServerError.forbidden(
                "change \(index) edits a \(type), part of the practice's structure, which only an admin token may "
                    + "change",
                index: index
            )
        }
        try checkProvenance(change, index: index, person: token.person)
        let state = try state(of: change.record)
        if let patientsInScope, let patient = scopedPatient(of: change),
            !patientsInScope.contains(patient),
            !isNew.contains(RecordRef(type: RecordType.patient.rawValue, id: patient))
        {
            throw ServerError(
                .outOfScope,
                .forbidden,
                "change \(index) edits \(change.record), whose patient is outside this token's scope; the change "
                    + "stays in the device's outbox for an administrator",
                field: "record",
                index: index
            )
        }
        if role == .siteDevice && CareModel.closesConflict(change, in: state) {
            throw ServerError.forbidden(
                "change \(index) resolves a conflict on \(change.record.type).\(change.field); a site-device token "
                    + "cannot resolve conflicts, ask a clinician or an administrator",
                index: index
            )
        }
        do {
            try CareModel.validateEdit(
                type,
                field: change.field,
                operation: change.operation,
                value: change.value,
                current: state[change.field],
                today: today,
                exists: { ref in exists(ref) }
            )
        } catch {
            throw ServerError(
                .invalidChange,
                .unprocessableContent,
                "change \(index): \(error.description)",
                field: error.field,
                index: index
            )
        }
    }

    /// The patient whose scope decides whether a change is allowed: the record's owner, or, for a new
    /// record, the patient its owner field is being set to.
    private func scopedPatient(of change: Change) -> String? {
        if isNew.contains(change.record) {
            if change.record.type == RecordType.patient.rawValue { return nil }
            if CareModel.ownerField[change.record.type] == change.field { return change.value.stringValue }
            return owner(of: change.record)
        }
        return owner(of: change.record)
    }

    /// Checks who and where a change says it was made: the author is a person of the practice (the token's
    /// person, for a token bound to one) or this replica (`replica:<id>`), and the site a site of the practice.
    private func checkProvenance(_ change: Change, index: Int, person: String?) throws {
        func refuse(_ field: String, _ message: String) -> ServerError {
            ServerError(
                .invalidChange,
                .unprocessableContent,
                "change \(index): \(message)",
                field: field,
                index: index
            )
        }
        let author = change.author
        if let person {
            guard author == person else {
                throw refuse(
                    "author",
                    "the author must be \(person), the person this token is issued to; a token signs only its "
                        + "person's edits"
                )
            }
        } else if author.hasPrefix("replica:") {
            guard author == "replica:\(change.id.replica)" else {
                throw refuse(
                    "author",
                    "a replica signs as replica:\(change.id.replica), its own id; set a person with 'outpost use "
                        + "--person'"
                )
            }
        }
        if !author.hasPrefix("replica:") {
            let ref = RecordRef(type: RecordType.person.rawValue, id: author)
            guard RecordType.person.isValidID(author), written.contains(ref) || exists(ref) else {
                throw refuse(
                    "author",
                    "the author must be a person of this practice (per_...) or replica:<replica id>; "
                        + (RecordType.person.isValidID(author)
                            ? "\(author) is not a person of this practice" : "this one is not a person id")
                )
            }
        }
        if let site = change.site {
            let ref = RecordRef(type: RecordType.site.rawValue, id: site)
            guard RecordType.site.isValidID(site), written.contains(ref) || exists(ref) else {
                throw refuse(
                    "site",
                    RecordType.site.isValidID(site)
                        ? "\(site) is not a site of this practice"
                        : "the site must be a site id of this practice (sit_...)"
                )
            }
        }
    }

    /// The record's state in this batch: loaded from the store, or empty for a record this practice does not
    /// hold yet. Ids are per practice: another practice's record of the same id is another record.
    private mutating func state(of ref: RecordRef) throws -> RecordState {
        if let state = states[ref] { return state }
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT owner, state FROM record WHERE practice = ? AND type = ? AND id = ?"),
                arguments: [practice, ref.type, ref.id]
            )
        else {
            states[ref] = RecordState()
            isNew.insert(ref)
            return RecordState()
        }
        var reader = BinaryReader(Array(row["state"] as Data))
        let state = try reader.readRecordState()
        states[ref] = state
        storedOwners[ref] = row["owner"] as String?
        return state
    }

    /// Whether the practice holds `ref`, in the store or written earlier in this push.
    func exists(_ ref: RecordRef) -> Bool {
        if states[ref] != nil, !isNew.contains(ref) || touchedRecords.contains(ref) { return true }
        return
            (try? Bool.fetchOne(
                db.cachedStatement(sql: "SELECT 1 FROM record WHERE practice = ? AND type = ? AND id = ?"),
                arguments: [practice, ref.type, ref.id]
            )) == true
    }

    /// Merges a checked change into its record.
    mutating func apply(_ change: Change) throws {
        // In place: a copy of the state would copy the field's whole history on every change (a log of n
        // entries would cost n per append).
        states[change.record, default: RecordState()].apply(change)
        touched.insert(FieldKey(record: change.record, field: change.field))
        touchedRecords.insert(change.record)
    }

    /// The patient a record belongs to (itself for a patient), for scoping the feed.
    func owner(of ref: RecordRef) -> String? {
        if ref.type == RecordType.patient.rawValue { return ref.id }
        guard let field = CareModel.ownerField[ref.type], let state = states[ref] else { return nil }
        return state[field].resolution(under: .lww).winner?.value.stringValue
    }

    /// Writes the touched records back and updates the conflict table.
    func finish(now: UInt64) throws -> (opened: Int, resolved: Int) {
        var records = Set<RecordRef>()
        for key in touched { records.insert(key.record) }
        for ref in records.sorted() {
            guard let state = states[ref] else { continue }
            var writer = BinaryWriter(capacity: 512)
            writer.write(state)
            let owner = owner(of: ref)
            try db.cachedStatement(
                sql: """
                    INSERT INTO record (practice, type, id, owner, state) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (practice, type, id) DO UPDATE SET owner = excluded.owner, state = excluded.state
                    """
            ).execute(
                arguments: [practice, ref.type, ref.id, owner, Data(writer.bytes)]
            )
            if let owner, ref.type != RecordType.patient.rawValue, case .some(.none) = storedOwners[ref] {
                try learnOwner(owner, of: ref)
            }
        }
        for ref in records where ref.type == RecordType.patient.rawValue {
            guard let state = states[ref] else { continue }
            let team = state["primaryTeam"].resolution(under: .review).winner?.value.stringValue
            try db.cachedStatement(
                sql: """
                    INSERT INTO patient_scope (practice, patient, team) VALUES (?, ?, ?)
                    ON CONFLICT (practice, patient) DO UPDATE SET team = excluded.team
                    """
            ).execute(arguments: [practice, ref.id, team])
            try db.cachedStatement(sql: "DELETE FROM patient_site WHERE practice = ? AND patient = ?")
                .execute(arguments: [practice, ref.id])
            for site in Set(state["sites"].elements.compactMap(\.stringValue)) {
                try db.cachedStatement(sql: "INSERT INTO patient_site (practice, patient, site) VALUES (?, ?, ?)")
                    .execute(arguments: [practice, ref.id, site])
            }
        }
        var opened = 0
        var resolved = 0
        for key in touched {
            guard let policy = CareModel.schema.policy(type: key.record.type, field: key.field), policy.isRegister,
                let state = states[key.record]
            else { continue }
            if state[key.field].resolution(under: policy).isConflict {
                try db.execute(
                    sql: """
                        INSERT INTO conflict (practice, type, id, field, detectedAt) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT DO NOTHING
                        """,
                    arguments: [practice, key.record.type, key.record.id, key.field, Int64(now)]
                )
                opened += db.changesCount
            } else {
                try db.cachedStatement(
                    sql: "DELETE FROM conflict WHERE practice = ? AND type = ? AND id = ? AND field = ?"
                ).execute(arguments: [practice, key.record.type, key.record.id, key.field])
                resolved += db.changesCount
            }
        }
        return (opened, resolved)
    }

    /// A record stored without its patient learnt it in this push (its creation was split across pushes): its
    /// earlier changes now belong to that patient, and every scoped device holding the patient, which skipped
    /// them as ownerless, is sent the patient whole again on its next pull.
    private func learnOwner(_ owner: String, of ref: RecordRef) throws {
        try db.cachedStatement(
            sql: "UPDATE change SET owner = ? WHERE practice = ? AND type = ? AND id = ? AND owner IS NULL"
        ).execute(arguments: [owner, practice, ref.type, ref.id])
        try db.cachedStatement(
            sql: """
                UPDATE device_patient SET at = \(Int64.max) WHERE practice = ? AND patient = ? AND state = 'in'
                """
        ).execute(arguments: [practice, owner])
    }
}
