import OutpostCRDT

/// One assignment of a patient to a subgroup, from the change log.
public struct SubgroupAssignment: Sendable, Hashable {
    /// The subgroup assigned (a subgroup id).
    public var subgroup: String
    /// The day the assignment was made (UTC), from the change's clock.
    public var from: CalendarDate
    /// The change's timestamp.
    public var clock: Timestamp
    /// The change.
    public var change: ChangeID
    /// Who made it (a person id).
    public var author: String
}

extension CareModel {
    /// A patient's subgroup over time (payments are per member-month), read from the change log, which
    /// keeps every change: every `assign` to `patient.subgroup` of one patient, earliest first by clock
    /// then change id. The field's merged state holds only the current value; its history is the log.
    ///
    /// Concurrent assignments (a `review` conflict) both appear until a resolving assignment follows.
    ///
    /// - Parameter changes: changes of one patient record; others are ignored.
    public static func subgroupHistory(_ changes: some Sequence<Change>) -> [SubgroupAssignment] {
        changes
            .filter {
                $0.record.type == RecordType.patient.rawValue && $0.field == "subgroup" && $0.operation == .assign
            }
            .sorted { $1.write.isLater(than: $0.write) }
            .compactMap { change in
                guard let subgroup = change.value.stringValue else { return nil }
                return SubgroupAssignment(
                    subgroup: subgroup,
                    from: CalendarDate(millis: change.clock.millis),
                    clock: change.clock,
                    change: change.id,
                    author: change.author
                )
            }
    }
}
