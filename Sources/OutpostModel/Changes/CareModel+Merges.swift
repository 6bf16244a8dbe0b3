public import OutpostCRDT

extension CareModel {
    /// The `review` fields of a patient whose differing values a merge sends to the conflict inbox: every
    /// `review` field but `status` (the duplicate is retired by its link, not by its status) and
    /// `mergedInto` itself.
    public static let mergedReviewFields: [String] = fields(of: .patient).filter {
        $0.policy == .review && $0.name != "status" && $0.name != "mergedInto"
    }.map(\.name)

    /// The writes that merge `duplicate` into `keep` (docs/model.md, "Duplicate merges"):
    ///
    /// - the duplicate's `mergedInto` is set to the survivor (this retires it; its tasks, observations,
    ///   encounters and notes follow the survivor when read, through ``PatientMerges``);
    /// - an entry `merged into ID: REASON` is appended to the duplicate's `merges` log (the audit trail, with
    ///   who, where and when like every change);
    /// - for each of ``mergedReviewFields``, a value the duplicate holds and the survivor does not is
    ///   assigned to the survivor; a value that differs from the survivor's is written to the survivor as
    ///   a concurrent value, so both are kept and the field waits in the conflict inbox for a person.
    ///
    /// - Parameter merges: the merges as this replica resolves them now.
    /// - Throws: ``ModelError`` when the merge would make no sense: the same patient twice, a duplicate
    ///   already merged, a survivor that is itself merged (merge into its survivor), an empty reason.
    public static func mergeWrites(
        keep: MaterializedRecord,
        duplicate: MaterializedRecord,
        reason: String,
        merges: PatientMerges
    ) throws(ModelError) -> [Edit] {
        func refuse(_ message: String) -> ModelError {
            ModelError(
                code: .invalidMerge,
                field: "patient.mergedInto",
                rule: "a duplicate is merged once, into a patient that is not itself merged",
                message: message
            )
        }
        guard keep.type == .patient, duplicate.type == .patient else {
            throw refuse("only patients are merged; give two patient ids")
        }
        guard keep.id != duplicate.id else {
            throw refuse("\(keep.id) cannot be merged into itself; give two different patients")
        }
        if merges.isMerged(duplicate.id) {
            throw refuse(
                "\(duplicate.id) is already merged into \(merges.survivor(of: duplicate.id)); unmerge it first "
                    + "('outpost patient unmerge \(duplicate.id)')"
            )
        }
        if merges.isMerged(keep.id) {
            throw refuse(
                "\(keep.id) is itself merged into \(merges.survivor(of: keep.id)); merge into that patient instead"
            )
        }
        let reason = reason.trimmingWhitespace
        guard !reason.isEmpty else { throw refuse("a merge needs a reason; give --reason TEXT") }
        var writes = [
            Edit(record: duplicate.ref, field: "mergedInto", operation: .assign, value: .string(keep.id)),
            Edit(
                record: duplicate.ref,
                field: "merges",
                operation: .append,
                value: .string("merged into \(keep.id): \(reason)")
            ),
        ]
        for field in mergedReviewFields {
            guard let value = duplicate.value(field), !value.isNull else { continue }
            let held = keep.value(field)
            if held == value { continue }
            writes.append(
                Edit(record: keep.ref, field: field, operation: .assign, value: value, isConcurrent: held != nil)
            )
        }
        return writes
    }

    /// The writes that undo the merge of `duplicate`: its `mergedInto` is cleared (it is a patient of its
    /// own again, its records follow it again) and `unmerged from ID: REASON` appended to its `merges` log.
    /// Values a merge copied onto the survivor stay there (they are ordinary edits: resolve or change them).
    ///
    /// - Throws: ``ModelError`` when `duplicate` has no merge link, or the reason is empty.
    public static func unmergeWrites(duplicate: MaterializedRecord, reason: String) throws(ModelError) -> [Edit] {
        guard duplicate.type == .patient, let survivor = duplicate.string("mergedInto") else {
            throw ModelError(
                code: .invalidMerge,
                field: "patient.mergedInto",
                rule: "only a merged patient is unmerged",
                message: "\(duplicate.id) is not merged into another patient; nothing to undo"
            )
        }
        let reason = reason.trimmingWhitespace
        guard !reason.isEmpty else {
            throw ModelError(
                code: .invalidMerge,
                field: "patient.mergedInto",
                rule: "an unmerge needs a reason",
                message: "an unmerge needs a reason; give --reason TEXT"
            )
        }
        return [
            Edit(record: duplicate.ref, field: "mergedInto", operation: .assign, value: .null),
            Edit(
                record: duplicate.ref,
                field: "merges",
                operation: .append,
                value: .string("unmerged from \(survivor): \(reason)")
            ),
        ]
    }

    /// Whether `patient` awaits assignment: it is not retired and its subgroup or primary team is unset, as
    /// when `outpost fhir import` creates a FHIR Patient that names neither and no default was given.
    /// Assigning both ends the state; `outpost panel` lists such patients (merged duplicates left out, see
    /// ``PatientMerges``).
    public static func isAwaitingAssignment(_ patient: MaterializedRecord) -> Bool {
        guard patient.type == .patient, !patient.isRetired else { return false }
        return placementFields.contains { patient.value($0) == nil }
    }

    /// ``isAwaitingAssignment(_:)-(MaterializedRecord)`` of a patient read from its state.
    public static func isAwaitingAssignment(_ patient: RecordFields) -> Bool {
        guard patient.type == .patient, !patient.isRetired else { return false }
        return placementFields.contains { patient.value($0) == nil }
    }

    /// The patient's fields that place it in a subgroup and a team.
    private static let placementFields = fields(of: .patient).filter(\.isPlacement).map(\.name)
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}
