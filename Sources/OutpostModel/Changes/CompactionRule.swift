public import OutpostCRDT

/// Which stored changes a store may forget: the one rule the server's `compact` and a device's `outpost compact`
/// share (docs/sync.md, "Compaction").
///
/// A change may be dropped from a change log (the server's feed, a device's log) when all of these hold:
/// - every replica that must see it has: on the server, it is at or below the practice's feed floor (every
///   active device has pulled past it); on a device, the server has acknowledged it (a change received from the
///   server, or a local change the server stored; never an unsent, refused or retried one);
/// - its value is superseded: its write is not live in its record's current state (another write replaced it,
///   or it is a set removal, which never holds a value). The record's state keeps the ids of superseded writes,
///   so merging stays idempotent and a late duplicate of a dropped change changes nothing;
/// - its field is not in conflict: an open conflict keeps every change of its field, its history included;
/// - its field's history is not read: the fields whose past values the scorecard dates
///   (``ScorecardData/historyFields``: a patient's subgroup, status and care gaps, a task's status) keep every
///   change, so member-months and completion days read the same after compaction.
///
/// Current values (live writes, log entries, set elements) are never dropped: a snapshot carries them, and the
/// audit of who wrote what is current is kept.
public enum CompactionRule {
    /// Whether `change` may be dropped, given its record's current state (`nil` when the store no longer holds the
    /// record), whether every replica that must see it has, and the fields of its record with an open conflict.
    public static func mayDrop(
        _ change: Change,
        acknowledged: Bool,
        state: RecordState?,
        conflicted: Set<String>
    ) -> Bool {
        guard acknowledged else { return false }
        if conflicted.contains(change.field) { return false }
        if let type = RecordType(rawValue: change.record.type),
            ScorecardData.historyFields[type]?.contains(change.field) == true
        {
            return false
        }
        guard let state else { return true }
        return !state[change.field].live.contains { $0.id == change.id }
    }
}
