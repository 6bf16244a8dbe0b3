public import OutpostCRDT
public import OutpostModel

/// The records a store holds, as an import needs them: by FHIR key and by reference.
public struct FHIRIndex: Sendable {
    /// FHIR keys (`Patient/pat-01JD…` for every record, and every kept `fhirIDs` entry) to records.
    public private(set) var keys: [String: RecordRef] = [:]
    /// Every record added with ``add(_:)`` (not those added with ``addKeys(of:)``).
    public private(set) var records: [RecordRef: MaterializedRecord] = [:]
    /// Every record the store holds.
    public private(set) var held: Set<RecordRef> = []
    /// The store's practice.
    public private(set) var practice: RecordRef?
    /// The store's subgroups, by key.
    public private(set) var subgroupsByKey: [Value: RecordRef] = [:]

    public init() {}

    /// Adds a record the store holds, kept whole (the planner reads it from here).
    public mutating func add(_ record: MaterializedRecord) {
        records[record.ref] = record
        addKeys(of: record)
    }

    /// Adds what names a record the store holds, without keeping the record: for large stores, where the
    /// planner is given the records it needs a page at a time.
    public mutating func addKeys(of record: MaterializedRecord) {
        let ref = record.ref
        held.insert(ref)
        if record.type == .practice, practice == nil { practice = ref }
        if record.type == .subgroup, let key = record.value("key") { subgroupsByKey[key] = ref }
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

    /// An empty plan.
    public init() {}

    /// Whether the import writes nothing.
    public var isEmpty: Bool { creations.isEmpty && updates.isEmpty }
}

/// Resolves a mapper's contributions against a store's records and plans the writes. Pure.
public enum FHIRPlanner {
    static func referencedType(_ type: RecordType, _ field: String) -> String {
        guard case .reference(let target)? = CareModel.spec(type, field)?.kind else { return "record" }
        return FHIRVocabulary.resourceType[target] ?? target.rawValue
    }

    /// Plans the import of `mapper`'s contributions into a store holding `index` (records added whole with
    /// ``FHIRIndex/add(_:)``); `makeID` gives new records their ids. Holds every contribution: large inputs are
    /// planned a page at a time with ``FHIRImportSession``. `keepsStructure` is the session's.
    ///
    /// - Throws: ``FHIRError`` when a required reference resolves to nothing. New patients that neither the
    ///   data nor `defaults` place are planned awaiting assignment (``FHIRImportPlan/awaitingAssignment``).
    public static func plan(
        _ mapper: FHIRMapper,
        index: FHIRIndex,
        defaults: FHIRDefaults,
        today: CalendarDate,
        keepsStructure: Bool = true,
        makeID: (RecordType) -> String
    ) throws(FHIRError) -> FHIRImportPlan {
        var session = FHIRImportSession(
            index: index,
            defaults: defaults,
            today: today,
            keepsStructure: keepsStructure
        )
        for contribution in mapper.contributions { session.identify(contribution, makeID: makeID) }
        do {
            try session.resolve(aliases: mapper.aliases)
            var plan = try session.plan(page: mapper.contributions.filter(\.isRecord)) { index.records[$0] }
            plan.add(try session.finish { index.records[$0] })
            plan.issues.merge(mapper.issues)
            plan.issues.merge(session.issues)
            return plan
        } catch let error as FHIRError {
            throw error
        } catch {
            throw FHIRError("the FHIR import could not be planned: \(error)")
        }
    }
}

extension FHIRImportPlan {
    /// Adds `other`'s writes and counts (a later page of the same import).
    public mutating func add(_ other: FHIRImportPlan) {
        creations += other.creations
        updates += other.updates
        issues.merge(other.issues)
        created.merge(other.created, uniquingKeysWith: +)
        updated.merge(other.updated, uniquingKeysWith: +)
        unchanged += other.unchanged
        awaitingAssignment += other.awaitingAssignment
    }
}

/// Plans an import a page at a time, so that neither the input nor the store is held whole.
///
/// Pass 1: ``identify(_:makeID:)`` every contribution (only the records' identities, the contributions that add
/// to other records and the patients' teams are kept), then ``resolve(aliases:)``. Pass 2: map the input again
/// and ``plan(page:load:)`` the records' contributions a page at a time, writing each page's plan; then
/// ``finish(load:)`` plans what is left (records named by more than one resource, records of the store that the
/// input only adds to). References resolve against the whole input, in any order. Pure.
public struct FHIRImportSession {
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

    /// Why a resource of the practice's structure is left out of an import that does not keep structure.
    public static let structureLeftOut = "the practice's structure: only an admin token may add or change it"

    /// The store's records as the import needs them.
    public let index: FHIRIndex
    public let defaults: FHIRDefaults
    public let today: CalendarDate
    /// Whether the import may add or change the practice's structure (``CareModel/structureTypes``): `false` on a
    /// replica whose token is not an admin's. Then new resources of the structure are left out (references to them
    /// too) and changes to the structure the store holds are not made, each noted as not kept.
    public let keepsStructure: Bool
    /// What was not kept, noted while identifying and resolving (each page's plan has its own).
    public private(set) var issues = FHIRIssues()
    /// The records the import creates.
    public private(set) var incoming: Set<RecordRef> = []
    /// FHIR keys of the input to the records they are.
    private var keyMap: [String: RecordRef] = [:]
    /// How many of the input's resources are each record.
    private var counts: [RecordRef: Int] = [:]
    /// Keys of resources not imported (a second practice, the structure an import does not keep).
    private var skipped: Set<String> = []
    /// Keys of the structure's resources left out (``keepsStructure``), which references to them name.
    private var leftOut: Set<String> = []
    private var practice: RecordRef?
    private var aliases: [String: String] = [:]
    /// Contributions that add to other records (a Group's members, a Condition), in input order.
    private var patches: [FHIRContribution] = []
    private var patchesByTarget: [RecordRef: [Int]] = [:]
    /// Patients' primary teams as the input gives them (for tasks with no team).
    private var patientTeams: [RecordRef: FHIRItem] = [:]
    private var defaultSubgroup: Value?
    private var defaultTeam: Value?
    /// Records that the input adds to, planned so far.
    private var planned: Set<RecordRef> = []
    /// Record contributions of records named by more than one resource, planned by ``finish(load:)``.
    private var deferred: [FHIRContribution] = []

    public init(index: FHIRIndex, defaults: FHIRDefaults, today: CalendarDate, keepsStructure: Bool = true) {
        self.index = index
        self.defaults = defaults
        self.today = today
        self.keepsStructure = keepsStructure
        practice = index.practice
    }

    /// The resource type of a resource's key (`Practitioner/p1`).
    private static func resourceType(_ resource: String) -> String {
        resource.split(separator: "/").first.map(String.init) ?? "resource"
    }

    /// Whether the import leaves out changes to a record of `type`.
    private func leavesOut(_ type: RecordType) -> Bool {
        !keepsStructure && CareModel.structureTypes.contains(type)
    }

    /// Pass 1: which record `contribution` is (one the store holds, by key, kept source id or Outpost id, or a
    /// new one with an id from `makeID`); contributions that add to other records are kept for pass 2.
    public mutating func identify(_ contribution: FHIRContribution, makeID: (RecordType) -> String) {
        guard contribution.isRecord else {
            patches.append(contribution)
            return
        }
        let typeName = contribution.type.rawValue
        let keys = [contribution.key] + contribution.otherKeys
        var ref: RecordRef?
        for key in keys {
            if let known = keyMap[key] ?? index.keys[key], known.type == typeName {
                ref = known
                break
            }
        }
        // A Group with the key of a subgroup the store holds is that subgroup (keys are the practice's own).
        if ref == nil, contribution.type == .subgroup, case .value(let key)? = contribution.assign["key"] {
            ref = index.subgroupsByKey[key]
        }
        if ref == nil, let id = contribution.outpostID {
            let candidate = RecordRef(type: typeName, id: id)
            if index.held.contains(candidate) || counts[candidate] == nil { ref = candidate }
        }
        let isNew = ref.map { !index.held.contains($0) } ?? true
        if contribution.type == .practice, isNew, let held = practice, held != ref {
            issues.note(.notKept, "Organization (a store holds one practice)")
            skipped.insert(contribution.key)
            return
        }
        if isNew, leavesOut(contribution.type) {
            issues.note(.notKept, "\(Self.resourceType(contribution.resource)) (\(Self.structureLeftOut))")
            skipped.insert(contribution.key)
            leftOut.formUnion(keys)
            return
        }
        let target = ref ?? RecordRef(type: typeName, id: makeID(contribution.type))
        if contribution.type == .practice { practice = target }
        for key in keys { keyMap[key] = target }
        counts[target, default: 0] += 1
        if isNew { incoming.insert(target) }
        if contribution.type == .patient, let team = contribution.assign["primaryTeam"] { patientTeams[target] = team }
    }

    /// Whether `key` (or what it is an alias of) names a resource of the structure this import leaves out.
    private func isLeftOut(_ key: String) -> Bool {
        leftOut.contains(aliases[key] ?? key)
    }

    /// Why a reference to a left-out `type` refuses the import, and what to do (`remedy`).
    private static func leftOutRefusal(_ what: String, _ type: String, remedy: String) -> FHIRError {
        FHIRError(
            "\(what) names a \(type) this import leaves out (\(structureLeftOut), and this replica's token is not an "
                + "admin's); \(remedy)"
        )
    }

    private func resolve(_ key: String) -> RecordRef? {
        let key = aliases[key] ?? key
        return keyMap[key] ?? index.keys[key]
    }

    /// The end of pass 1: resolves the defaults and what adds to other records (`aliases`: the mapper's
    /// ``FHIRMapper/aliases``).
    ///
    /// - Throws: ``FHIRError`` when a default names nothing, or a Condition names a patient neither in the input
    ///   nor in the store.
    public mutating func resolve(aliases: [String: String]) throws(FHIRError) {
        self.aliases = aliases
        func fallback(_ given: String?, _ type: RecordType) throws(FHIRError) -> Value? {
            guard let given else { return nil }
            guard given.contains("/") else { return .string(given) }
            guard let ref = resolve(given), ref.type == type.rawValue else {
                if isLeftOut(given) {
                    throw Self.leftOutRefusal(given, "\(type)", remedy: "give a \(type) the store holds")
                }
                throw FHIRError("\(given) names no \(type) in the input or the store; check the default given")
            }
            return .string(ref.id)
        }
        for (position, contribution) in patches.enumerated() {
            guard let ref = resolve(contribution.key), ref.type == contribution.type.rawValue else {
                if contribution.type == .patient, contribution.assign.isEmpty {
                    throw FHIRError(
                        "\(contribution.origin): \(contribution.resource): names a patient that is neither in the "
                            + "input nor in the store; include the Patient or fix the reference"
                    )
                }
                let resourceType = Self.resourceType(contribution.resource)
                if isLeftOut(contribution.key) {
                    issues.note(.notKept, "\(resourceType) (\(Self.structureLeftOut))")
                } else {
                    issues.note(.unresolvedReference, "\(resourceType) (\(contribution.type) it adds to)")
                }
                continue
            }
            patchesByTarget[ref, default: []].append(position)
        }
        defaultSubgroup = try fallback(defaults.subgroup, .subgroup)
        defaultTeam = try fallback(defaults.team, .team)
    }

    /// Pass 2: plans the records of `page` (the record contributions of some resources, in input order) and
    /// what the input adds to them; `load` gives a record the store holds.
    ///
    /// - Throws: ``FHIRError`` when a required reference resolves to nothing, or the page names a record pass 1
    ///   did not see (the input changed); an error `load` throws.
    public mutating func plan(
        page: [FHIRContribution],
        load: (RecordRef) throws -> MaterializedRecord?
    ) throws -> FHIRImportPlan {
        var records: [FHIRContribution] = []
        for contribution in page where contribution.isRecord {
            guard let target = keyMap[contribution.key] else {
                if skipped.contains(contribution.key) { continue }
                throw FHIRError(
                    "\(contribution.origin): \(contribution.resource): not there when the input was first read; the "
                        + "input changed while it was imported: import it again"
                )
            }
            if (counts[target] ?? 0) > 1 {
                deferred.append(contribution)
            } else {
                records.append(contribution)
            }
        }
        return try plan(records, patchOnly: false, load: load)
    }

    /// Plans the records named by more than one resource whose type's ``CareModel/creationRank`` is at most `rank`,
    /// once every resource of those ranks has been planned: written before the records of higher ranks, which may name
    /// them.
    public mutating func planDeferred(
        upTo rank: Int,
        load: (RecordRef) throws -> MaterializedRecord?
    ) throws -> FHIRImportPlan {
        var ready: [FHIRContribution] = []
        var later: [FHIRContribution] = []
        for contribution in deferred {
            if CareModel.creationRank(of: contribution.type) <= rank {
                ready.append(contribution)
            } else {
                later.append(contribution)
            }
        }
        guard !ready.isEmpty else { return FHIRImportPlan() }
        deferred = later
        return try plan(ready, patchOnly: false, load: load)
    }

    /// The end of pass 2: plans the records named by more than one resource not planned yet, and the store's records
    /// that the input only adds to.
    public mutating func finish(load: (RecordRef) throws -> MaterializedRecord?) throws -> FHIRImportPlan {
        let records = deferred
        deferred = []
        return try plan(records, patchOnly: true, load: load)
    }

    private mutating func plan(
        _ records: [FHIRContribution],
        patchOnly: Bool,
        load: (RecordRef) throws -> MaterializedRecord?
    ) throws -> FHIRImportPlan {
        var plan = FHIRImportPlan()
        var desired: [RecordRef: Desired] = [:]
        var order: [RecordRef] = []
        /// Required references of new records to the structure left out, by record and field: the element, and
        /// the type it names (step 3 may still fill the field from the defaults).
        var requiredLeftOut: [RecordRef: [String: (element: String, type: String)]] = [:]

        // 1. The records, and the Outpost ids of the FHIR keys they are known by.
        for contribution in records {
            guard let target = keyMap[contribution.key] else { continue }
            if desired[target] == nil {
                desired[target] = Desired(
                    type: contribution.type,
                    ref: target,
                    isNew: incoming.contains(target),
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
        // Records the input only adds to (the store's): after every page, in the order of their first addition.
        if patchOnly {
            let rest = patchesByTarget.filter { !planned.contains($0.key) && desired[$0.key] == nil }
            for (ref, positions) in rest.sorted(by: { $0.value[0] < $1.value[0] }) {
                let first = patches[positions[0]]
                desired[ref] = Desired(
                    type: first.type,
                    ref: ref,
                    isNew: incoming.contains(ref),
                    origin: first.origin,
                    resource: first.resource
                )
                order.append(ref)
            }
        }
        for ref in order where patchesByTarget[ref] != nil { planned.insert(ref) }

        // 2. What each resource says, references resolved: the records first, then what others add to them.
        var contributions = records
        for ref in order { contributions += (patchesByTarget[ref] ?? []).map { patches[$0] } }
        for contribution in contributions {
            let resourceType = Self.resourceType(contribution.resource)
            let target: RecordRef
            if contribution.isRecord {
                guard let ref = keyMap[contribution.key], desired[ref] != nil else { continue }
                target = ref
            } else {
                guard let ref = resolve(contribution.key), desired[ref] != nil else { continue }
                target = ref
            }
            func value(_ item: FHIRItem, _ field: String, required: Bool) throws(FHIRError) -> Value? {
                switch item {
                case .value(let value): return value
                case .reference(let key, let element):
                    guard case .reference(let type)? = CareModel.spec(contribution.type, field)?.kind,
                        let ref = resolve(key), ref.type == type.rawValue
                    else {
                        if isLeftOut(key) {
                            plan.issues.note(.notKept, "\(resourceType).\(element) (\(Self.structureLeftOut))")
                            // A patient's placement left out leaves it awaiting assignment, as no placement does.
                            if required, CareModel.spec(contribution.type, field)?.isPlacement != true {
                                requiredLeftOut[target, default: [:]][field] = (
                                    element: "\(resourceType).\(element)",
                                    type: FHIRPlanner.referencedType(contribution.type, field)
                                )
                            }
                            return nil
                        }
                        if required {
                            throw FHIRError(
                                "\(contribution.origin): \(resourceType).\(element): the reference names no "
                                    + "\(FHIRPlanner.referencedType(contribution.type, field)) in the input or the "
                                    + "store; include it or fix the reference"
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
        func teamOf(_ patient: RecordRef) throws -> Value? {
            switch patientTeams[patient] {
            case .value(let value)?: return value
            case .reference(let key, _)?:
                if let ref = resolve(key), ref.type == RecordType.team.rawValue { return .string(ref.id) }
            case nil: break
            }
            if incoming.contains(patient) { return defaultTeam }
            return try load(patient)?.value("primaryTeam")
        }
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
                    let patient = RecordRef(type: RecordType.patient.rawValue, id: patient)
                    if let team = try teamOf(patient) {
                        record.set("team", team)
                    } else if case .reference(let key, let element)? = patientTeams[patient],
                        isLeftOut(key)
                    {
                        // Its patient's team is one left out: the task has none to be filed under.
                        requiredLeftOut[ref, default: [:]]["team"] = (
                            element: "Patient.\(element) (the task's patient's team)",
                            type: FHIRPlanner.referencedType(.task, "team")
                        )
                    }
                }
            default: break
            }
            desired[ref] = record
        }
        for ref in order {
            guard let record = desired[ref], let fields = requiredLeftOut[ref] else { continue }
            for (field, reference) in fields.sorted(by: { $0.key < $1.key }) where record.assign[field] == nil {
                // Only a task's team is a required reference to the structure outside it: --team gives one.
                throw Self.leftOutRefusal(
                    "\(record.origin): \(reference.element):",
                    reference.type,
                    remedy: "import the file on an administrator's replica, or give a team the store holds with --team"
                )
            }
        }
        // A new task with no team (no owner care team, and no team for its patient in the data, the store or the
        // defaults) cannot be created: said here with what to do, rather than as the model's bare "required".
        for ref in order {
            guard let record = desired[ref], record.isNew, record.type == .task, record.assign["team"] == nil else {
                continue
            }
            // --team places the input's new patients; a patient the store holds is given a team there.
            let patient = record.assign["patient"]?.stringValue.map {
                RecordRef(type: RecordType.patient.rawValue, id: $0)
            }
            let remedy =
                patient.map { !incoming.contains($0) } == true
                ? "assign its patient a team first ('outpost patient set \(patient?.id ?? "ID") primaryTeam=…')"
                : "give one with --team"
            throw FHIRError(
                "\(record.origin): \(record.resource): no team to file the task under: it names no care team as its "
                    + "owner, and its patient has no team in the input or the store; \(remedy)"
            )
        }
        // New patients the data and the defaults do not place are created awaiting assignment (docs/fhir.md,
        // "Placement"): never a reason to refuse the file.
        plan.awaitingAssignment = unplaced

        // 4. The writes: whole new records; for held records, only what differs. An optional value the model
        // refuses (a four-digit extension as a phone) is left out and counted, not a reason to refuse the file.
        for ref in order {
            guard var record = desired[ref] else { continue }
            let resourceType = Self.resourceType(record.resource)
            // Held structure an import does not keep: what differs is noted once, as the record left out.
            let leftAsItIs = !record.isNew && leavesOut(record.type)
            func acceptable(_ field: String, _ value: Value) -> Bool {
                guard let spec = CareModel.spec(record.type, field), !spec.isRequired else { return true }
                do {
                    try CareModel.validate(record.type, field: field, value: value, today: today)
                    return true
                } catch {
                    if !leftAsItIs { plan.issues.note(.notKept, "\(resourceType) \(spec.path) (\(spec.rule))") }
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
            let current = try load(ref)
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
                    if !leftAsItIs {
                        plan.issues.note(.notKept, "\(record.type).\(field) (in conflict here; left for review)")
                    }
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
            } else if leftAsItIs {
                plan.issues.note(.notKept, "\(resourceType) (\(Self.structureLeftOut))")
                plan.unchanged += 1
            } else {
                plan.updated[record.type, default: 0] += 1
                plan.updates += updates
            }
        }
        return plan
    }
}
