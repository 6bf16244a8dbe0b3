import OutpostCRDT

extension CareModel {
    /// The changes that create `record`: one `assign` per register field, one `add` per set element, one
    /// `append` per log entry, fields in name order. `null` register values and fields the table does
    /// not know are left out (validate the draft first: ``validate(_:today:exists:)``).
    ///
    /// - Parameters:
    ///   - nextID: called once per change, in order, for its id (the replica's next counter).
    ///   - clock: the timestamp every change carries.
    ///   - author: the person making the record (a person id).
    ///   - site: where it is made (a site id), if known.
    public static func creationChanges(
        for record: DraftRecord,
        nextID: () -> ChangeID,
        clock: Timestamp,
        author: String,
        site: String?
    ) -> [Change] {
        var changes: [Change] = []
        let ref = record.ref
        for name in record.fields.keys.sorted() {
            guard let spec = spec(record.type, name), let values = record.fields[name] else { continue }
            let operation: Operation =
                switch spec.policy {
                case .lww, .review, .status: .assign
                case .set: .add
                case .log: .append
                }
            for value in values where !(operation == .assign && value.isNull) {
                changes.append(
                    Change(
                        id: nextID(),
                        record: ref,
                        field: name,
                        operation: operation,
                        value: value,
                        clock: clock,
                        author: author,
                        site: site
                    )
                )
            }
        }
        return changes
    }

    /// The change that edits one field of an existing record, naming what it replaces as the CRDT needs:
    /// `assign` replaces every live value (``FieldState/liveIDs``), which also resolves a conflict;
    /// `remove` names the tags of the removed element (``FieldState/tags(of:)``); `add` and `append`
    /// replace nothing.
    ///
    /// - Parameter current: the field's state as the writer sees it.
    public static func editChange(
        _ operation: Operation,
        record: RecordRef,
        field: String,
        value: Value,
        current: FieldState,
        id: ChangeID,
        clock: Timestamp,
        author: String,
        site: String?
    ) -> Change {
        let replaces: [ChangeID] =
            switch operation {
            case .assign: current.liveIDs
            case .remove: current.tags(of: value)
            case .add, .append: []
            }
        return Change(
            id: id,
            record: record,
            field: field,
            operation: operation,
            value: value,
            replaces: replaces,
            clock: clock,
            author: author,
            site: site
        )
    }
}
