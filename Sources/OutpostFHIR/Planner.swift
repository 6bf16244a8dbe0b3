public import OutpostCRDT
public import OutpostModel

/// The records a store holds, as an import needs them: by FHIR key and by reference.
public struct FHIRIndex: Sendable {
    /// FHIR keys (`Patient/pat-01JD…` for every record, and every kept `fhirIDs` entry) to records.
    public private(set) var keys: [String: RecordRef] = [:]
    /// Every record.
    public private(set) var records: [RecordRef: MaterializedRecord] = [:]

    public init() {}

    /// Adds a record the store holds.
    public mutating func add(_ record: MaterializedRecord) {
        let ref = record.ref
        records[ref] = record
        if let resourceType = FHIRVocabulary.resourceType[record.type] {
            keys["\(resourceType)/\(FHIRVocabulary.fhirID(record.id))"] = ref
        }
        for value in record.values("fhirIDs") {
            if let key = value.stringValue { keys[key] = ref }
        }
    }
}

/// What an import fills in when the FHIR data does not say it (`outpost fhir import --subgroup --team --role`).
public struct FHIRDefaults: Sendable, Hashable {
    /// The subgroup for new patients and care teams with none: an id, or a reference into the input (`Group/g1`).
    public var subgroup: String?
    /// The team for new patients with no team: an id, or a reference into the input (`CareTeam/t1`).
    public var team: String?
    /// The role of new staff with no PractitionerRole code Outpost models.
    public var role: String?

    public init(subgroup: String? = nil, team: String? = nil, role: String? = nil) {
        self.subgroup = subgroup
        self.team = team
        self.role = role
    }
}

/// The writes an import makes: records to create and edits to records the store holds.
public struct FHIRImportPlan: Sendable {
    /// A record to create, and the resource it came from.
    public struct Creation: Sendable {
        public var draft: DraftRecord
        public var origin: FHIROrigin
        public var resource: String
    }

    /// One field edit to a record the store holds.
    public struct Update: Sendable {
        public var record: RecordRef
        public var field: String
        public var operation: Operation
        public var value: Value
        public var origin: FHIROrigin
        public var resource: String
    }

    public var creations: [Creation] = []
    public var updates: [Update] = []
    /// What was not kept.
    public var issues = FHIRIssues()
    /// Records created, by type.
    public var created: [RecordType: Int] = [:]
    /// Records the store held that the import changed, by type.
    public var updated: [RecordType: Int] = [:]
    /// Records the store held that the import named and left as they were.
    public var unchanged = 0
    /// New patients created awaiting assignment: neither the data nor the defaults gave a subgroup or a
    /// primary team (``CareModel/isAwaitingAssignment(_:)``).
    public var awaitingAssignment = 0

    /// Whether the import writes nothing.
    public var isEmpty: Bool { creations.isEmpty && updates.isEmpty }
}

/// Resolves a mapper's contributions against a store's records and plans the writes. Pure.
public enum FHIRPlanner {
    private struct Desired {
        var type: RecordType
        var ref: RecordRef
        var isNew: Bool
        var origin: FHIROrigin
        var resource: String
        var assign: [String: Value] = [:]
        var assignOrder: [String] = []
        var add: [String: [Value]] = [:]
        var remove: [String: [Value]] = [:]

        mutating func set(_ field: String, _ value: Value) {
            if assign[field] == nil { assignOrder.append(field) }
            assign[field] = value
        }
    }

    static func referencedType(_ type: RecordType, _ field: String) -> String {
        guard case .reference(let target)? = CareModel.spec(type, field)?.kind else { return "record" }
        return FHIRVocabulary.resourceType[target] ?? target.rawValue
    }

    /// Plans the import of `mapper`'s contributions into a store holding `index`; `makeID` gives new records
    /// their ids.
    ///
    /// - Throws: ``FHIRError`` when a required reference resolves to nothing. New patients that neither the
    ///   data nor `defaults` place are planned awaiting assignment (``FHIRImportPlan/awaitingAssignment``).
    public static func plan(
        _ mapper: FHIRMapper,
        index: FHIRIndex,
        defaults: FHIRDefaults,
        today: CalendarDate,
        makeID: (RecordType) -> String
    ) throws(FHIRError) -> FHIRImportPlan {
        var plan = FHIRImportPlan()
        plan.issues = mapper.issues
        var keyMap: [String: RecordRef] = [:]
        var desired: [RecordRef: Desired] = [:]
        var order: [RecordRef] = []
        var practice = index.records.keys.first { $0.type == RecordType.practice.rawValue }
        var subgroupsByKey: [Value: RecordRef] = [:]
        for (ref, record) in index.records where record.type == .subgroup {
            if let key = record.value("key") { subgroupsByKey[key] = ref }
        }

        // 1. Which record each resource is: one the store holds (by key, kept source id or Outpost id), or new.
        for contribution in mapper.contributions where contribution.isRecord {
            let typeName = contribution.type.rawValue
            let known = ([contribution.key] + contribution.otherKeys).lazy.compactMap { keyMap[$0] ?? index.keys[$0] }
                .first { $0.type == typeName }
            var ref = known
            // A Group with the key of a subgroup the store holds is that subgroup (keys are the practice's own).
            if ref == nil, contribution.type == .subgroup, case .value(let key)? = contribution.assign["key"] {
                ref = subgroupsByKey[key]
            }
            if ref == nil, let id = contribution.outpostID {
                let candidate = RecordRef(type: typeName, id: id)
                if index.records[candidate] != nil || desired[candidate] == nil { ref = candidate }
            }
            let isNew = ref.map { index.records[$0] == nil } ?? true
            if contribution.type == .practice, isNew, let held = practice, held != ref {
                plan.issues.note(.notKept, "Organization (a store holds one practice)")
                continue
            }
            let target = ref ?? RecordRef(type: typeName, id: makeID(contribution.type))
            if contribution.type == .practice { practice = target }
            for key in [contribution.key] + contribution.otherKeys { keyMap[key] = target }
            if desired[target] == nil {
                desired[target] = Desired(
                    type: contribution.type,
                    ref: target,
                    isNew: isNew,
                    origin: contribution.origin,
                    resource: contribution.resource
                )
                order.append(target)
            }
            let ownKey = "\(FHIRVocabulary.resourceType[contribution.type] ?? "")/\(FHIRVocabulary.fhirID(target.id))"
            for key in [contribution.key] + contribution.otherKeys where key != ownKey {
                desired[target]?.add["fhirIDs", default: []].append(.string(key))
            }
        }

        func resolve(_ key: String) -> RecordRef? {
            let key = mapper.aliases[key] ?? key
            return keyMap[key] ?? index.keys[key]
        }

        // 2. What each resource says, references resolved: the records first, then what others add to them.
        for contribution in mapper.contributions.filter(\.isRecord) + mapper.contributions.filter({ !$0.isRecord }) {
            let resourceType = contribution.resource.split(separator: "/").first.map(String.init) ?? "resource"
            let target: RecordRef
            if contribution.isRecord {
                guard let ref = keyMap[contribution.key], desired[ref] != nil else { continue }
                target = ref
            } else {
                guard let ref = resolve(contribution.key), ref.type == contribution.type.rawValue else {
                    if contribution.type == .patient, contribution.assign.isEmpty {
                        throw FHIRError(
                            "\(contribution.origin): \(contribution.resource): names a patient that is neither in the "
                                + "input nor in the store; include the Patient or fix the reference"
                        )
                    }
                    plan.issues.note(.unresolvedReference, "\(resourceType) (\(contribution.type) it adds to)")
                    continue
                }
                target = ref
                if desired[ref] == nil {
                    desired[ref] = Desired(
                        type: contribution.type,
                        ref: ref,
                        isNew: false,
                        origin: contribution.origin,
                        resource: contribution.resource
                    )
                    order.append(ref)
                }
            }
            func value(_ item: FHIRItem, _ field: String, required: Bool) throws(FHIRError) -> Value? {
                switch item {
                case .value(let value): return value
                case .reference(let key, let element):
                    guard case .reference(let type)? = CareModel.spec(contribution.type, field)?.kind,
                        let ref = resolve(key), ref.type == type.rawValue
                    else {
                        if required {
                            throw FHIRError(
                                "\(contribution.origin): \(resourceType).\(element): the reference names no "
                                    + "\(referencedType(contribution.type, field)) in the input or the store; include it "
                                    + "or fix the reference"
                            )
                        }
                        plan.issues.note(.unresolvedReference, "\(resourceType).\(element)")
                        return nil
                    }
                    return .string(ref.id)
                }
            }
            let isNew = desired[target]?.isNew ?? false
            for (field, item) in contribution.assign.sorted(by: { $0.key < $1.key }) {
                let required = CareModel.spec(contribution.type, field)?.isRequired == true && isNew
                if let value = try value(item, field, required: required) { desired[target]?.set(field, value) }
            }
            for (field, items) in contribution.add.sorted(by: { $0.key < $1.key }) {
                for item in items {
                    if let value = try value(item, field, required: false) {
                        desired[target]?.add[field, default: []].append(value)
                    }
                }
            }
            for (field, items) in contribution.remove.sorted(by: { $0.key < $1.key }) {
                for item in items {
                    if let value = try value(item, field, required: false) {
                        desired[target]?.remove[field, default: []].append(value)
                    }
                }
            }
        }

        // 3. What the data does not say: defaults (an id, or a FHIR reference into the input), and a task's team
        // from its patient's.
        func fallback(_ given: String?, _ type: RecordType) throws(FHIRError) -> Value? {
            guard let given else { return nil }
            guard given.contains("/") else { return .string(given) }
            guard let ref = resolve(given), ref.type == type.rawValue else {
                throw FHIRError("\(given) names no \(type) in the input or the store; check the default given")
            }
            return .string(ref.id)
        }
        let defaultSubgroup = try fallback(defaults.subgroup, .subgroup)
        let defaultTeam = try fallback(defaults.team, .team)
        var unplaced = 0
        for ref in order {
            guard var record = desired[ref], record.isNew else { continue }
            switch record.type {
            case .patient:
                if record.assign["subgroup"] == nil, let subgroup = defaultSubgroup { record.set("subgroup", subgroup) }
                if record.assign["primaryTeam"] == nil, let team = defaultTeam { record.set("primaryTeam", team) }
                if CareModel.fields(of: .patient).contains(where: { $0.isPlacement && record.assign[$0.name] == nil }) {
                    unplaced += 1
                }
            case .team:
                if record.assign["subgroup"] == nil, let subgroup = defaultSubgroup { record.set("subgroup", subgroup) }
            case .person:
                if record.assign["role"] == nil {
                    guard let role = defaults.role else {
                        throw FHIRError(
                            "\(record.origin): \(record.resource): no PractitionerRole gives a role Outpost models; "
                                + "add one, or give a default with --role"
                        )
                    }
                    plan.issues.note(.notKept, "Practitioner (no role; --role given)")
                    record.set("role", .string(role))
                }
            case .subgroup:
                if record.assign["monthlyPaymentCents"] == nil { record.set("monthlyPaymentCents", .int(0)) }
                if record.assign["label"] == nil, let key = record.assign["key"] { record.set("label", key) }
            case .task:
                if record.assign["team"] == nil, let patient = record.assign["patient"]?.stringValue {
                    let patientRef = RecordRef(type: RecordType.patient.rawValue, id: patient)
                    if let team = desired[patientRef]?.assign["primaryTeam"]
                        ?? index.records[patientRef]?.value("primaryTeam")
                    {
                        record.set("team", team)
                    }
                }
            default: break
            }
            desired[ref] = record
        }
        // New patients the data and the defaults do not place are created awaiting assignment (docs/fhir.md,
        // "Placement"): never a reason to refuse the file.
        plan.awaitingAssignment = unplaced

        // 4. The writes: whole new records; for held records, only what differs. An optional value the model
        // refuses (a four-digit extension as a phone) is left out and counted, not a reason to refuse the file.
        for ref in order {
            guard var record = desired[ref] else { continue }
            let resourceType = record.resource.split(separator: "/").first.map(String.init) ?? "resource"
            func acceptable(_ field: String, _ value: Value) -> Bool {
                guard let spec = CareModel.spec(record.type, field), !spec.isRequired else { return true }
                do {
                    try CareModel.validate(record.type, field: field, value: value, today: today)
                    return true
                } catch {
                    plan.issues.note(.notKept, "\(resourceType) \(spec.path) (\(spec.rule))")
                    return false
                }
            }
            for (field, value) in record.assign where !acceptable(field, value) { record.assign[field] = nil }
            for (field, values) in record.add { record.add[field] = values.filter { acceptable(field, $0) } }
            if record.isNew {
                var fields: [String: [Value]] = [:]
                for (field, value) in record.assign { fields[field] = [value] }
                for (field, values) in record.add {
                    let isSet = CareModel.spec(record.type, field)?.policy == .set
                    var list: [Value] = []
                    for value in values where !(isSet && list.contains(value)) { list.append(value) }
                    fields[field] = list
                }
                plan.creations.append(
                    .init(
                        draft: DraftRecord(type: record.type, id: ref.id, fields: fields),
                        origin: record.origin,
                        resource: record.resource
                    )
                )
                plan.created[record.type, default: 0] += 1
                continue
            }
            let current = index.records[ref]
            var updates: [FHIRImportPlan.Update] = []
            func update(_ field: String, _ operation: Operation, _ value: Value) {
                updates.append(
                    .init(
                        record: ref,
                        field: field,
                        operation: operation,
                        value: value,
                        origin: record.origin,
                        resource: record.resource
                    )
                )
            }
            for field in record.assignOrder {
                guard let value = record.assign[field] else { continue }
                let held = current?.fields[field]
                if held?.isConflict == true {
                    plan.issues.note(.notKept, "\(record.type).\(field) (in conflict here; left for review)")
                    continue
                }
                if held?.value != value { update(field, .assign, value) }
            }
            for field in record.add.keys.sorted() {
                var held = current?.values(field) ?? []
                let isLog = CareModel.spec(record.type, field)?.policy == .log
                for value in record.add[field] ?? [] {
                    if let index = held.firstIndex(of: value) {
                        if isLog { held.remove(at: index) }
                        continue
                    }
                    update(field, isLog ? .append : .add, value)
                    if !isLog { held.append(value) }
                }
            }
            for field in record.remove.keys.sorted() {
                var held = current?.values(field) ?? []
                for value in record.remove[field] ?? [] where held.contains(value) {
                    update(field, .remove, value)
                    held.removeAll { $0 == value }
                }
            }
            if updates.isEmpty {
                plan.unchanged += 1
            } else {
                plan.updated[record.type, default: 0] += 1
                plan.updates += updates
            }
        }
        return plan
    }
}
