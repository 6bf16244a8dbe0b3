import OutpostCRDT
public import OutpostFHIR
public import OutpostModel

/// What a FHIR import did (or, refused, would have done).
public struct FHIRImportSummary: Sendable {
    /// Records created, by type.
    public var created: [RecordType: Int]
    /// Records held before that the import changed, by type.
    public var updated: [RecordType: Int]
    /// Records held before that the import named and left as they were.
    public var unchanged: Int
    /// Field edits written.
    public var edits: Int
    /// What was not kept, by element path.
    public var issues: FHIRIssues
    /// New patients created awaiting assignment (no subgroup or no primary team in the data or the
    /// defaults); `outpost panel` lists them until someone assigns both.
    public var awaitingAssignment: Int
}

extension CareStore {
    /// Imports FHIR R4 resources (read by `reader`) in one transaction: new resources become new records,
    /// resources imported before (known by their kept FHIR ids) update their records with ordinary edits
    /// that sync, and nothing changes when the data is the same. docs/fhir.md has the mapping.
    ///
    /// - Parameters:
    ///   - strict: refuse the import (nothing written) when anything would not be kept: an element Outpost
    ///     keeps no field for, a code it does not model, a reference it cannot resolve.
    /// - Throws: ``ClientError`` `invalidEdit` naming the file, entry or line and the element; nothing is
    ///   written.
    @discardableResult
    public func importFHIR(
        _ reader: FHIRReader,
        defaults: FHIRDefaults = FHIRDefaults(),
        strict: Bool = false,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws(ClientError) -> FHIRImportSummary {
        try importFHIR(FHIRInputs(reader), defaults: defaults, strict: strict, progress: progress)
    }

    /// Imports FHIR R4 resources read from `inputs` a resource at a time, so that neither the input nor the
    /// store is ever held whole; otherwise the same as importing a reader. `inputs` is read twice in one write
    /// transaction: once for every resource's identity (validating every resource: any error writes nothing),
    /// once to write the records a page at a time (`pageSize` resources' records at a time), in creation rank
    /// (``CareModel/creationRank``: an input not in that order is read again per rank, only the parts holding it).
    /// `progress` is told how many resources have been written.
    ///
    /// - Throws: ``ClientError`` `invalidEdit` naming the file, entry or line and the element; nothing is
    ///   written. An error `inputs` throws is passed on as it is when it is a ``ClientError``.
    @discardableResult
    public func importFHIR(
        _ inputs: FHIRInputs,
        defaults: FHIRDefaults = FHIRDefaults(),
        strict: Bool = false,
        pageSize: Int = 512,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws(ClientError) -> FHIRImportSummary {
        let today = today
        let millis = store.configuration.wallClock.nowMillis()
        let role = try store.setting(SyncEngine.roleSetting)
        var summary: FHIRImportSummary?
        func invalid(_ error: any Error) -> any Error {
            if let error = error as? FHIRError { return ClientError(code: .invalidEdit, message: error.message) }
            return error
        }
        try store.create(author: try author(), site: try site(), totalEdits: 0) { context, creator in
            // The store's records, by what names them (not the records themselves).
            var index = FHIRIndex()
            try context.forEachHeldRecord { ref, state in
                guard let type = RecordType(rawValue: ref.type) else { return }
                index.addKeys(of: MaterializedRecord(type: type, id: ref.id, state: state))
            }
            // Pass 1: every resource mapped (and so validated), only the identities and references kept.
            // On a replica whose token may not change the practice's structure, the import leaves it out (noted
            // as not kept) and imports the rest, instead of writing changes the server would refuse.
            var session = FHIRImportSession(
                index: index,
                defaults: defaults,
                today: today,
                keepsStructure: !Self.refusesStructure(role: role)
            )
            var mapper = FHIRMapper()
            var generator = SystemRandomNumberGenerator()
            // The ranks (CareModel.creationRank) of each part's records, whether the input gives its records in rank
            // order (every record before those that may name it: a bundle or a dump written so), and how many
            // resources only add to other records (a Condition: planned with the record it adds to).
            var partRanks: [Set<Int>] = []
            var order = CareModel.CreationOrder()
            var additionsOnly = 0
            do {
                for part in inputs.parts {
                    partRanks.append([])
                    try part { resource, fullURLs in
                        let contributions = try mapper.map(resource, fullURLs: fullURLs)
                        if !contributions.contains(where: \.isRecord) { additionsOnly += 1 }
                        for contribution in contributions {
                            session.identify(contribution) { $0.makeID(millis: millis, using: &generator) }
                            guard contribution.isRecord else { continue }
                            partRanks[partRanks.count - 1].insert(CareModel.creationRank(of: contribution.type))
                            order.note(contribution.type)
                        }
                    }
                }
                try session.resolve(aliases: mapper.aliases)
            } catch {
                throw invalid(error)
            }
            if strict, !mapper.issues.isEmpty || !session.issues.isEmpty {
                var issues = mapper.issues
                issues.merge(session.issues)
                throw Self.strictRefusal(issues)
            }
            // Pass 2: mapped again and written a page at a time.
            let total = mapper.resourceCount
            let incoming = session.incoming
            let exists: (RecordRef) -> Bool = { incoming.contains($0) || context.exists($0) }
            let load: (RecordRef) throws -> MaterializedRecord? = { ref in
                guard let type = RecordType(rawValue: ref.type),
                    let state = try context.storedState(of: ref), !state.isEmpty
                else { return nil }
                return MaterializedRecord(type: type, id: ref.id, state: state)
            }
            var totals = FHIRImportPlan()
            var edits = 0
            func write(_ plan: FHIRImportPlan) throws {
                for creation in plan.creations {
                    // The planner left the structure out; refused here too, as every write of this replica is.
                    try refuseStructure(creation.draft.ref, role: role, isNew: true)
                    do throws(ModelError) {
                        // A patient the data and the defaults do not place is created awaiting assignment.
                        try CareModel.validate(creation.draft, today: today, exists: exists, awaitingAssignment: true)
                    } catch {
                        // Named by its resource: the record's id was made for a record that is not created.
                        var error = error
                        error.record = nil
                        throw ClientError(
                            code: .invalidEdit,
                            message: "\(creation.origin): \(creation.resource): \(error.description)",
                            cause: error
                        )
                    }
                    let created = Self.edits(creating: creation.draft)
                    try creator.create(creation.draft.ref, created)
                    edits += created.count
                }
                for update in plan.updates {
                    guard let type = RecordType(rawValue: update.record.type) else { continue }
                    try refuseStructure(update.record, role: role)
                    do {
                        try CareModel.validateEdit(
                            type,
                            field: update.field,
                            operation: update.operation,
                            value: update.value,
                            current: try context.state(of: update.record)[update.field],
                            today: today,
                            exists: exists
                        )
                    } catch let error as ModelError {
                        throw ClientError(
                            code: .invalidEdit,
                            message: "\(update.origin): \(update.resource): \(error.description)",
                            cause: error
                        )
                    }
                    try creator.edit([
                        Edit(
                            record: update.record,
                            field: update.field,
                            operation: update.operation,
                            value: update.value
                        )
                    ])
                    edits += 1
                }
                var counts = plan
                counts.creations = []
                counts.updates = []
                totals.add(counts)
            }
            // Written in rank order, so that each new record's references name records written (and pushed) before
            // it: in one reading of the input when it gives them so, else in one reading per rank, of the parts
            // holding records of that rank.
            let passes = order.passes
            var page: [FHIRContribution] = []
            // Read once per rank, a resource is counted in the reading of its record's rank; one that only adds to
            // other records is never read again.
            var done = order.isInOrder ? 0 : additionsOnly
            do {
                for pass in passes {
                    var pass2 = FHIRMapper()
                    var rank = pass ?? 0
                    func flush() throws {
                        try write(try session.plan(page: page, load: load))
                        page = []
                        progress?(done, total)
                    }
                    for (index, part) in inputs.parts.enumerated() where pass.map(partRanks[index].contains) ?? true {
                        try part { resource, fullURLs in
                            let records = try pass2.map(resource, fullURLs: fullURLs).filter(\.isRecord)
                            let ranks = records.map { CareModel.creationRank(of: $0.type) }
                            if let pass {
                                page += zip(records, ranks).filter { $0.1 == pass }.map(\.0)
                                if ranks.max() == pass { done += 1 }
                            } else {
                                // In rank order: the records named by more than one resource of the ranks below are
                                // all read; they are written before the first record of a higher rank.
                                if let next = ranks.max(), next > rank {
                                    try flush()
                                    try write(try session.planDeferred(upTo: rank, load: load))
                                    rank = next
                                }
                                page += records
                                done += 1
                            }
                            if page.count >= max(pageSize, 1) { try flush() }
                        }
                    }
                    try flush()
                    try write(try session.planDeferred(upTo: pass ?? order.highest, load: load))
                }
                try write(try session.finish(load: load))
                // Every record pass 1 found new was created: an input read several times must give the same records.
                guard totals.created.values.reduce(0, +) == session.incoming.count else {
                    throw ClientError(
                        code: .invalidEdit,
                        message: "the input changed while it was imported (\(session.incoming.count) new records, then "
                            + "\(totals.created.values.reduce(0, +))); import it again"
                    )
                }
            } catch {
                throw invalid(error)
            }
            progress?(total, total)
            var issues = mapper.issues
            issues.merge(session.issues)
            issues.merge(totals.issues)
            if strict, !issues.isEmpty { throw Self.strictRefusal(issues) }
            summary = FHIRImportSummary(
                created: totals.created,
                updated: totals.updated,
                unchanged: totals.unchanged,
                edits: edits,
                issues: issues,
                awaitingAssignment: totals.awaitingAssignment
            )
        }
        guard let summary else { throw ClientError(code: .invalidEdit, message: "the FHIR import planned nothing") }
        return summary
    }

    static func strictRefusal(_ issues: FHIRIssues) -> ClientError {
        ClientError(
            code: .invalidEdit,
            message: "--strict: the import would not keep everything (" + issues.lines.joined(separator: "; ")
                + "); nothing written"
        )
    }

    /// The FHIR R4 resources of every record, by resource type (``FHIRVocabulary/exportedTypes``), each
    /// list sorted by id: records written at or after `since` (milliseconds), of the given resource `types`
    /// (all when `nil`; Practitioner brings its PractitionerRole). Holds every resource: large stores export
    /// with ``exportFHIR(types:since:to:)``.
    public func exportFHIR(types: Set<String>? = nil, since: UInt64? = nil) throws(ClientError) -> [String: [JSON]] {
        var out: [String: [JSON]] = [:]
        try exportFHIR(types: types, since: since) { type, json in out[type, default: []].append(json) }
        return out
    }

    /// Hands each FHIR R4 resource of ``exportFHIR(types:since:)`` to `write` as it is made, reading the records
    /// a few hundred at a time, so that the whole practice is never in memory at once: each resource type's
    /// resources come in the order of that method's lists. An error `write` throws stops the export and is
    /// passed on inside a ``ClientError``.
    public func exportFHIR(
        types: Set<String>? = nil,
        since: UInt64? = nil,
        to write: (_ type: String, _ resource: JSON) throws -> Void
    ) throws(ClientError) {
        for type in RecordType.allCases.sorted() {
            try store.forEachRecord(ofType: type.rawValue) { id, state in
                let lastUpdated = state.sortedFields.flatMap(\.state.live).map(\.clock.millis).max()
                if let since, (lastUpdated ?? 0) < since { return }
                let record = MaterializedRecord(type: type, id: id, state: state)
                for resource in FHIRExporter.resources(of: record, lastUpdated: lastUpdated)
                where types.map({
                    $0.contains(resource.type) || (resource.type == "PractitionerRole" && $0.contains("Practitioner"))
                }) ?? true {
                    try write(resource.type, resource.json)
                }
            }
        }
    }
}
