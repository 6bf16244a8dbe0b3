public import OutpostCRDT
public import OutpostModel

/// What a merge did.
public struct MergeSummary: Sendable, Hashable {
    /// The patient kept.
    public var survivor: String
    /// The duplicate, now retired with a link to the survivor.
    public var duplicate: String
    /// `review` fields whose differing values now wait in the conflict inbox (on the survivor).
    public var conflicts: [String]
    /// `review` fields the survivor had no value for and took from the duplicate.
    public var filled: [String]
    /// The changes written (they sync like any other, and the store's history audits them).
    public var changes: [Change]
}

extension CareStore {
    /// The merges of duplicate patients as this replica resolves them now (``PatientMerges``).
    public func patientMerges() throws(ClientError) -> PatientMerges {
        PatientMerges(try records(.patient))
    }

    /// Merges the patient `duplicate` into `keep`, in one transaction (docs/model.md, "Duplicate merges"):
    /// the duplicate is retired with a link to the survivor (`mergedInto`), its tasks, observations,
    /// encounters and notes follow the survivor when read (``records(_:followingPatient:)``,
    /// ``notes(followingPatient:)``, the scorecard and the panel), and `review` values that differ go to the
    /// conflict inbox. The merge is audited (who, where, when and `reason`) and undone with
    /// ``unmerge(_:reason:)``.
    ///
    /// - Throws: ``ClientError`` `unknownRecord` when a patient is not held here; `invalidEdit` when the
    ///   merge makes no sense (the same patient twice, a duplicate already merged, a survivor itself merged,
    ///   no reason); nothing is written.
    @discardableResult
    public func merge(keep: String, duplicate: String, reason: String) throws(ClientError) -> MergeSummary {
        var summary: MergeSummary?
        let changes = try store.commit(author: try author(), site: try site()) { context in
            var patients: [MaterializedRecord] = []
            for id in try context.ids(ofType: RecordType.patient.rawValue) {
                let ref = RecordRef(type: RecordType.patient.rawValue, id: id)
                patients.append(MaterializedRecord(type: .patient, id: id, state: try context.state(of: ref)))
            }
            let held = Dictionary(uniqueKeysWithValues: patients.map { ($0.id, $0) })
            guard let kept = held[keep], let duplicated = held[duplicate] else {
                let missing = held[keep] == nil ? keep : duplicate
                throw ClientError(
                    code: .unknownRecord,
                    message: "no patient with id \(missing) on this replica; check the id with 'outpost patient list'"
                )
            }
            let writes: [Edit]
            do {
                writes = try CareModel.mergeWrites(
                    keep: kept,
                    duplicate: duplicated,
                    reason: reason,
                    merges: PatientMerges(patients)
                )
            } catch let error as ModelError {
                throw Self.invalid(error)
            }
            let copied = writes.filter { $0.record == kept.ref }
            summary = MergeSummary(
                survivor: keep,
                duplicate: duplicate,
                conflicts: copied.filter(\.isConcurrent).map(\.field),
                filled: copied.filter { !$0.isConcurrent }.map(\.field),
                changes: []
            )
            return writes
        }
        guard var summary else { throw ClientError(code: .invalidEdit, message: "the merge planned nothing") }
        summary.changes = changes
        return summary
    }

    /// Undoes the merge of `duplicate`: its link is cleared, so it is a patient of its own again and its
    /// records follow it again; `reason` is kept in its `merges` log. Values the merge copied onto the
    /// survivor stay there (resolve them in the conflict inbox).
    ///
    /// - Throws: ``ClientError`` `unknownRecord` when the patient is not held here, `invalidEdit` when it is
    ///   not merged or no reason is given; nothing is written.
    @discardableResult
    public func unmerge(_ duplicate: String, reason: String) throws(ClientError) -> [Change] {
        try store.commit(author: try author(), site: try site()) { context in
            let ref = RecordRef(type: RecordType.patient.rawValue, id: duplicate)
            guard context.exists(ref) else {
                throw ClientError(
                    code: .unknownRecord,
                    message: "no patient with id \(duplicate) on this replica; check the id with 'outpost patient list'"
                )
            }
            let record = MaterializedRecord(type: .patient, id: duplicate, state: try context.state(of: ref))
            do {
                return try CareModel.unmergeWrites(duplicate: record, reason: reason)
            } catch let error as ModelError {
                throw Self.invalid(error)
            }
        }
    }

    /// The records of `type` (tasks, observations, encounters) of `patient` and of every duplicate merged
    /// into it, sorted by id: what "follows the survivor" means when reading.
    public func records(
        _ type: RecordType,
        followingPatient patient: String
    ) throws(ClientError)
        -> [MaterializedRecord]
    {
        let merges = try patientMerges()
        var out: [MaterializedRecord] = []
        for owner in [patient] + merges.duplicates(of: patient) {
            out += try records(type, owner: owner)
        }
        return out.sorted { $0.id < $1.id }
    }

    /// The notes of `patient` and of every duplicate merged into it, earliest first (clock, then change id).
    public func notes(followingPatient patient: String) throws(ClientError) -> [Write] {
        let merges = try patientMerges()
        var out: [Write] = []
        for id in [patient] + merges.duplicates(of: patient) {
            let ref = RecordRef(type: RecordType.patient.rawValue, id: id)
            guard case .log(let entries)? = try record(ref)?.fields["notes"] else { continue }
            out += entries
        }
        return out.sorted { ($0.clock, $0.id) < ($1.clock, $1.id) }
    }
}
