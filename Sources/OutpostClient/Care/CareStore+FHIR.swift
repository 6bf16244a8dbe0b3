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
        let mapper: FHIRMapper
        do {
            mapper = try FHIRMapper(reader)
        } catch {
            throw ClientError(code: .invalidEdit, message: error.message)
        }
        return try importFHIR(mapper, defaults: defaults, strict: strict, progress: progress)
    }

    /// Imports what `mapper` mapped (inputs mapped one at a time, so large imports hold the JSON of one
    /// input at a time); otherwise the same as importing a reader.
    @discardableResult
    public func importFHIR(
        _ mapper: FHIRMapper,
        defaults: FHIRDefaults = FHIRDefaults(),
        strict: Bool = false,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws(ClientError) -> FHIRImportSummary {
        let today = today
        let millis = store.configuration.wallClock.nowMillis()
        var summary: FHIRImportSummary?
        try store.commit(author: try author(), site: try site(), progress: progress) { context in
            var index = FHIRIndex()
            for type in RecordType.allCases {
                for id in try context.ids(ofType: type.rawValue) {
                    let ref = RecordRef(type: type.rawValue, id: id)
                    index.add(MaterializedRecord(type: type, id: id, state: try context.state(of: ref)))
                }
            }
            var generator = SystemRandomNumberGenerator()
            let plan: FHIRImportPlan
            do throws(FHIRError) {
                plan = try FHIRPlanner.plan(mapper, index: index, defaults: defaults, today: today) {
                    $0.makeID(millis: millis, using: &generator)
                }
            } catch {
                throw ClientError(code: .invalidEdit, message: error.message)
            }
            if strict, !plan.issues.isEmpty {
                throw ClientError(
                    code: .invalidEdit,
                    message: "--strict: the import would not keep everything ("
                        + plan.issues.lines.joined(separator: "; ") + "); nothing written"
                )
            }
            let incoming = Set(plan.creations.map(\.draft.ref))
            let exists: (RecordRef) -> Bool = { incoming.contains($0) || context.exists($0) }
            var edits: [Edit] = []
            for creation in plan.creations {
                do {
                    // A patient the data and the defaults do not place is created awaiting assignment.
                    try CareModel.validate(creation.draft, today: today, exists: exists, awaitingAssignment: true)
                } catch let error as ModelError {
                    throw ClientError(
                        code: .invalidEdit,
                        message: "\(creation.origin): \(creation.resource): \(error.description)",
                        cause: error
                    )
                }
                edits += Self.edits(creating: creation.draft)
            }
            for update in plan.updates {
                guard let type = RecordType(rawValue: update.record.type) else { continue }
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
                edits.append(
                    Edit(record: update.record, field: update.field, operation: update.operation, value: update.value)
                )
            }
            summary = FHIRImportSummary(
                created: plan.created,
                updated: plan.updated,
                unchanged: plan.unchanged,
                edits: edits.count,
                issues: plan.issues,
                awaitingAssignment: plan.awaitingAssignment
            )
            return edits
        }
        guard let summary else { throw ClientError(code: .invalidEdit, message: "the FHIR import planned nothing") }
        return summary
    }

    /// The FHIR R4 resources of every record, by resource type (``FHIRVocabulary/exportedTypes``), each
    /// list sorted by id: records written at or after `since` (milliseconds), of the given resource `types`
    /// (all when `nil`; Practitioner brings its PractitionerRole).
    public func exportFHIR(types: Set<String>? = nil, since: UInt64? = nil) throws(ClientError) -> [String: [JSON]] {
        var out: [String: [JSON]] = [:]
        for type in RecordType.allCases.sorted() {
            for (id, state) in try store.records(ofType: type.rawValue, owner: nil) {
                let lastUpdated = state.fields.values.flatMap(\.live).map(\.clock.millis).max()
                if let since, (lastUpdated ?? 0) < since { continue }
                let record = MaterializedRecord(type: type, id: id, state: state)
                for resource in FHIRExporter.resources(of: record, lastUpdated: lastUpdated)
                where types.map({
                    $0.contains(resource.type) || (resource.type == "PractitionerRole" && $0.contains("Practitioner"))
                }) ?? true {
                    out[resource.type, default: []].append(resource.json)
                }
            }
        }
        return out
    }
}
