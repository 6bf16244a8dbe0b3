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
    mutating func check(_ change: Change, index: Int, role: Role, today: CalendarDate) throws {
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
        guard let state = try state(of: change.record) else {
            throw ServerError(
                .notFound,
                .notFound,
                "change \(index) names \(change.record), which does not exist in this practice",
                field: "record",
                index: index
            )
        }
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
        if role == .siteDevice && Self.resolvesConflict(change, state: state) {
            throw ServerError.forbidden(
                "change \(index) resolves a conflict on \(change.record.type).\(change.field); a site-device token "
                    + "cannot resolve conflicts, ask a clinician or an administrator",
                index: index
            )
        }
        let practice = practice
        let db = db
        let states = states
        do {
            try CareModel.validateEdit(
                type,
                field: change.field,
                operation: change.operation,
                value: change.value,
                current: state[change.field],
                today: today,
                exists: { ref in
                    if states[ref] != nil { return true }
                    return
                        (try? Bool.fetchOne(
                            db.cachedStatement(sql: "SELECT 1 FROM record WHERE type = ? AND id = ? AND practice = ?"),
                            arguments: [ref.type, ref.id, practice]
                        )) == true
                }
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

    /// Whether a change settles a conflict: it records a resolution, or it replaces two or more of the
    /// concurrent values of a field in conflict.
    static func resolvesConflict(_ change: Change, state: RecordState) -> Bool {
        if change.field == "resolutions" { return true }
        guard let policy = CareModel.schema.policy(type: change.record.type, field: change.field), policy.isRegister
        else { return false }
        let field = state[change.field]
        guard field.resolution(under: policy).isConflict else { return false }
        let live = Set(field.live.map(\.id))
        return change.replaces.filter { live.contains($0) }.count >= 2
    }

    /// The record's state in this batch: loaded from the store, empty for a new record, `nil` when the id
    /// belongs to another practice (indistinguishable, to the caller, from a record that does not exist).
    private mutating func state(of ref: RecordRef) throws -> RecordState? {
        if let state = states[ref] { return state }
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT practice, state FROM record WHERE type = ? AND id = ?"),
                arguments: [ref.type, ref.id]
            )
        else {
            states[ref] = RecordState()
            isNew.insert(ref)
            return RecordState()
        }
        guard row["practice"] as String == practice else { return nil }
        var reader = BinaryReader(Array(row["state"] as Data))
        let state = try reader.readRecordState()
        states[ref] = state
        return state
    }

    /// Merges a checked change into its record.
    mutating func apply(_ change: Change) throws {
        var state = states[change.record] ?? RecordState()
        _ = state.apply(change)
        states[change.record] = state
        touched.insert(FieldKey(record: change.record, field: change.field))
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
            try db.cachedStatement(
                sql: """
                    INSERT INTO record (type, id, practice, owner, state) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (type, id) DO UPDATE SET owner = excluded.owner, state = excluded.state
                    """
            ).execute(
                arguments: [ref.type, ref.id, practice, owner(of: ref), Data(writer.bytes)]
            )
        }
        for ref in records where ref.type == RecordType.patient.rawValue {
            guard let state = states[ref] else { continue }
            let team = state["primaryTeam"].resolution(under: .review).winner?.value.stringValue
            try db.cachedStatement(
                sql: """
                    INSERT INTO patient_scope (patient, practice, team) VALUES (?, ?, ?)
                    ON CONFLICT (patient) DO UPDATE SET team = excluded.team
                    """
            ).execute(arguments: [ref.id, practice, team])
            try db.cachedStatement(sql: "DELETE FROM patient_site WHERE patient = ?").execute(arguments: [ref.id])
            for site in Set(state["sites"].elements.compactMap(\.stringValue)) {
                try db.cachedStatement(sql: "INSERT INTO patient_site (patient, site) VALUES (?, ?)")
                    .execute(arguments: [ref.id, site])
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
                try db.cachedStatement(sql: "DELETE FROM conflict WHERE type = ? AND id = ? AND field = ?").execute(
                    arguments: [key.record.type, key.record.id, key.field]
                )
                resolved += db.changesCount
            }
        }
        return (opened, resolved)
    }
}
