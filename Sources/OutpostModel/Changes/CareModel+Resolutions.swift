import OutpostCRDT

extension CareModel {
    /// Whether `change` settles a conflict of the record whose state is `state`: it records a resolution (the
    /// `resolutions` log), or its field is in conflict before it and not after it, whatever the change's shape
    /// (replacing every concurrent value, or only some of them with one of the others' values). Site devices
    /// may not make such changes; the server refuses them and a client should too, before they enter its outbox.
    ///
    /// For example, with `birthDate` holding `1961-07-24` (write a) and `1961-07-25` (write b), an assign of
    /// `1961-07-25` that replaces only `a` leaves one distinct value: it closes the conflict.
    public static func closesConflict(_ change: Change, in state: RecordState) -> Bool {
        if change.field == "resolutions" { return true }
        guard let policy = schema.policy(type: change.record.type, field: change.field), policy.isRegister else {
            return false
        }
        var field = state[change.field]
        guard field.resolution(under: policy).isConflict else { return false }
        field.apply(change)
        return !field.resolution(under: policy).isConflict
    }
}
