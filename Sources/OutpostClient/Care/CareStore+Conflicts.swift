import Foundation
public import OutpostCRDT
import OutpostModel

/// A conflict in the inbox, with everything a reviewer needs to decide.
///
/// Its id, `RECORD-ID.field` (for example `pat_01J….birthDate`), is the same on every replica.
public struct ConflictEntry: Sendable, Hashable {
    /// The conflict's id: the record id, a dot, the field.
    public var id: String
    /// The record.
    public var record: RecordRef
    /// The field.
    public var field: String
    /// The concurrent values, oldest first (by clock, then change id); `outpost conflicts resolve --pick N`
    /// counts from 1 in this order.
    public var values: [Write]
    /// The index in ``values`` of the value shown until someone decides.
    public var provisionalWinner: Int
    /// What the field held before the concurrent writes (the values they replaced), as far as this
    /// replica's history reaches.
    public var before: [Write]
    /// When this replica first saw the conflict (milliseconds since 1970).
    public var detectedAtMillis: UInt64
    /// The patient the record belongs to (itself for a patient), if any.
    public var patient: String?

    /// The device (replica) that wrote each value.
    public func device(of write: Write) -> String { write.id.replica.rawValue }
}

/// How a conflict is resolved.
public enum ConflictChoice: Sendable, Hashable {
    /// One of the concurrent values, counted from 1.
    case pick(Int)
    /// A new value (it must pass the field's validation).
    case value(Value)
}

/// The rule of a bulk resolution.
public enum ResolutionRule: Sendable, Hashable {
    /// The value with the latest clock.
    case newest
    /// The value with the earliest clock.
    case oldest
    /// The value written at this site (conflicts with no value from it are left open).
    case site(String)
}

extension CareStore {
    /// Makes a conflict id.
    public static func conflictID(_ record: RecordRef, _ field: String) -> String { "\(record.id).\(field)" }

    /// Every open conflict, sorted by record and field.
    public func conflictEntries() throws(ClientError) -> [ConflictEntry] {
        try store.conflicts().map { stored throws(ClientError) in try entry(stored) }
    }

    /// One open conflict.
    ///
    /// - Throws: ``ClientError`` `unknownRecord` when no open conflict has this id.
    public func conflict(_ id: String) throws(ClientError) -> ConflictEntry {
        guard
            let stored = try store.conflicts().first(where: {
                Self.conflictID($0.conflict.record, $0.conflict.field) == id
            })
        else {
            throw ClientError(
                code: .unknownRecord,
                message: "no open conflict '\(id)' on this replica; list them with 'outpost conflicts list'"
            )
        }
        return try entry(stored)
    }

    private func entry(_ stored: StoredConflict) throws(ClientError) -> ConflictEntry {
        let conflict = stored.conflict
        let values = conflict.values.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) }
        let history = try store.history(of: conflict.record).filter { $0.field == conflict.field }
        let ids = Set(values.map(\.id))
        let replaced = Set(history.filter { ids.contains($0.id) }.flatMap(\.replaces))
        let before = history.filter { replaced.contains($0.id) }.map(\.write)
        var patient: String?
        if conflict.record.type == RecordType.patient.rawValue {
            patient = conflict.record.id
        } else if let field = CareModel.ownerField[conflict.record.type],
            let state = try store.record(conflict.record)
        {
            patient = state[field].resolution(under: .lww).winner?.value.stringValue
        }
        return ConflictEntry(
            id: Self.conflictID(conflict.record, conflict.field),
            record: conflict.record,
            field: conflict.field,
            values: values,
            provisionalWinner: values.firstIndex { $0.id == conflict.provisionalWinner.id } ?? 0,
            before: before,
            detectedAtMillis: stored.detectedAtMillis,
            patient: patient
        )
    }

    /// Resolves a conflict with one write that replaces every concurrent value, and records the decision
    /// (field, value, reason) in the record's `resolutions` log, in the same transaction. The resolution
    /// syncs like any edit and clears the conflict on every replica that receives it.
    ///
    /// - Throws: ``ClientError`` `unknownRecord` for an unknown conflict, `invalidEdit` for an index out of
    ///   range or a value the field refuses; nothing is written.
    @discardableResult
    public func resolve(_ id: String, choice: ConflictChoice, reason: String?) throws(ClientError) -> [Change] {
        let entry = try conflict(id)
        let value: Value
        switch choice {
        case .pick(let index):
            guard entry.values.indices.contains(index - 1) else {
                throw ClientError(
                    code: .invalidEdit,
                    message: "conflict \(id) has \(entry.values.count) values; --pick takes 1 to \(entry.values.count)"
                )
            }
            value = entry.values[index - 1].value
        case .value(let chosen):
            value = chosen
        }
        let note =
            "\(entry.field): resolved \(entry.values.count) concurrent values"
            + (reason.map { $0.isEmpty ? "" : "; reason: \($0)" } ?? "")
        return try update([
            .assign(entry.record, entry.field, value),
            .append(entry.record, "resolutions", .string(note)),
        ])
    }

    /// What a bulk resolution would do: each open conflict of `field` (a field name, or `type.field`) with
    /// the value `rule` picks, or `nil` when the rule picks none.
    public func plan(field: String, rule: ResolutionRule) throws(ClientError) -> [(ConflictEntry, Int?)] {
        try conflictEntries().filter { $0.field == field || "\($0.record.type).\($0.field)" == field }.map { entry in
            let pick: Int? =
                switch rule {
                case .newest: entry.values.indices.last
                case .oldest: entry.values.indices.first
                case .site(let site): entry.values.lastIndex { $0.site == site }
                }
            return (entry, pick)
        }
    }
}
