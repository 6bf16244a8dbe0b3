import HTTPTypes
import OutpostCRDT
import OutpostModel
import OutpostProtocol

/// What a storage backend reads for one push, before anything is decided: the state the judge needs.
///
/// Read in the push's transaction (see ``SyncStorage``); ``PushJudge/references(of:)`` says which records to read.
struct PushContext: Sendable {
    /// The binary form (``StoredChange``) of changes already stored under the push's change ids.
    var stored: [ChangeID: [UInt8]] = [:]
    /// The records the push writes that the practice holds, with their owner column. A state may hold only the
    /// fields the judge reads of it (``PushJudge/fieldsRead(by:of:)``): the plan's states then hold only those too.
    var records: [RecordRef: (owner: String?, state: RecordState)] = [:]
    /// The records the push refers to (authors, sites, reference values) that the practice holds.
    var existing: Set<RecordRef> = []
    /// For a scoped token, the patients it may write: those in its scope and those its device still holds;
    /// `nil` for the whole practice.
    var patientsInScope: Set<String>?
    /// The records a legal purge erased, of those ``PushJudge/erasable(by:holding:)`` names: a purge keeps their
    /// ids (ids only), so that an edit made to them on a device that had not heard of the purge is not stored.
    var erased: Set<RecordRef> = []
}

/// What a push does, decided: the storage writes it as it is.
struct PushPlan: Sendable {
    /// A change to store, with the owner of its record at the end of the push. The storage encodes it (SQLite:
    /// a record's adjacent changes as one run, ``ChangeRuns``).
    struct Accepted: Sendable {
        var change: Change
        var owner: String?
    }

    /// A record to write back, with its owner.
    struct Record: Sendable {
        /// What of the stored row changes.
        enum RowChange: Sendable, Equatable {
            /// No row yet: a new one.
            case insert
            /// The state; the owner stays (the owner's index is left alone).
            case state
            /// The state and the owner.
            case stateAndOwner
        }

        var ref: RecordRef
        var owner: String?
        /// The record's state after the push: of the fields ``PushJudge/fieldsRead(by:of:)`` names only, when the
        /// context held only those. A storage that writes a stored record's state whole reads it whole for that.
        var state: RecordState
        /// Whether the stored row had no owner and this push gave it one: its earlier changes belong to the
        /// owner now, and scoped devices holding that patient are sent it whole again.
        var learntOwner: Bool
        var row: RowChange
    }

    /// A patient's scope columns: its primary team and its sites.
    struct PatientScope: Sendable {
        var patient: String
        var team: String?
        var sites: [String]
    }

    /// A review or status field whose conflict state this push may have changed.
    struct ConflictMark: Sendable {
        var record: RecordRef
        var field: String
        var isConflict: Bool
    }

    var accepted: [Accepted] = []
    var duplicates = 0
    /// The changes to records a legal purge erased, or that give a record to an erased patient: acknowledged
    /// (``maxCounter`` covers them), not stored (``PushJudge/erasedRecords(of:context:)``).
    var erased = 0
    /// The records this push gives to an erased patient that the purge did not erase (made on a device that had
    /// not heard of it), in key order: the storage keeps their ids with the purge's, so that their changes in later
    /// pushes are dropped too, and erases what it holds of them (the changes an earlier push stored before the
    /// one that names their patient: a record's changes may be split between pushes).
    var erasing: [Erasing] = []

    /// A record given to an erased patient (``erasing``), and that patient: if an earlier push stored part of the
    /// record, its erasure takes a feed position of the patient's purge, past every checkpoint given out, as the
    /// purge did (the feed head stays, and snapshot pages kept from before it are not sent again).
    struct Erasing: Sendable, Equatable {
        var record: RecordRef
        var patient: String
    }

    /// For each accepted change, whether it is the first of a record the practice did not hold: the record is
    /// new, and no earlier accepted change of the push names it. Stored with the change, so a pull page knows
    /// which of its records a device cannot hold yet (layout 3 names the others by abbreviation).
    func createsRecord() -> [Bool] {
        var new = Set(records.lazy.filter { $0.row == .insert }.map(\.ref))
        return accepted.map { new.remove($0.change.record) != nil }
    }
    var records: [Record] = []
    var patientScopes: [PatientScope] = []
    var conflicts: [ConflictMark] = []
    /// The highest counter of the push the server holds after it, refused changes left out (the device's
    /// acknowledgement moves up to it).
    var maxCounter: UInt64 = 0
    /// The changes refused one by one (a push that asked for per-change refusals), in push order: not stored.
    var refused: [RefusedChange] = []
}

/// The push rules, as pure code: takes the request and the state a storage read for it, returns the plan or the
/// first refusal. No SQL, no clock: each backend reads a ``PushContext``, asks the judge, and writes the
/// ``PushPlan`` in the same transaction.
///
/// Each change is checked, in order, against the token (practice, role, person), the device's replica id, the
/// server's clock and the care model's rules, in the context of the changes before it in the push; the first
/// refusal throws a ``ServerError`` naming the change's index.
struct PushJudge {
    let token: TokenEntry
    let now: UInt64
    let maxClockSkewMillis: UInt64

    /// The records a push refers to, whose existence the judge asks about: each change's author (a person),
    /// site, and reference value. A storage reads which of these the practice holds into
    /// ``PushContext/existing``.
    static func references(of request: PushRequest) -> Set<RecordRef> {
        var refs = Set<RecordRef>()
        // A push's changes come by one author from one site: one like the change before's is not looked at again.
        var lastAuthor: String?
        var lastSite: String?
        var lastType: String?
        var type: RecordType?
        for change in request.changes {
            if change.author != lastAuthor {
                lastAuthor = change.author
                if RecordType.person.isValidID(change.author) {
                    refs.insert(RecordRef(type: RecordType.person.rawValue, id: change.author))
                }
            }
            if let site = change.site, site != lastSite {
                lastSite = site
                if RecordType.site.isValidID(site) {
                    refs.insert(RecordRef(type: RecordType.site.rawValue, id: site))
                }
            }
            // Only a text value of an id's length can name a record (most are names, dates and codes: their field
            // is not looked up); the type is parsed once per run of a record's changes.
            guard let id = change.value.stringValue, id.utf8.count == RecordType.idLength else { continue }
            if change.record.type != lastType {
                lastType = change.record.type
                type = RecordType(rawValue: change.record.type)
            }
            if let type, case .reference(let target) = CareModel.spec(type, change.field)?.kind, target.isValidID(id) {
                refs.insert(RecordRef(type: target.rawValue, id: id))
            }
        }
        return refs
    }

    /// The fields of each of `records` (records `request` writes that the storage holds) that the judge reads:
    /// those the push's changes write, the record's owner field (its owner at the end of the push), a
    /// patient's scope fields (``PatientView/ScopeKeys/fields``) and an observation's code, unit and value (checked
    /// together). Nothing else of a record's state decides
    /// anything, so a storage may read only these of the states it holds (``PushContext/records``): a push edits
    /// a field or two of records whose states hold a dozen and their histories.
    static func fieldsRead(by request: PushRequest, of records: Set<RecordRef>) -> [RecordRef: Set<String>] {
        var fields: [RecordRef: Set<String>] = [:]
        fields.reserveCapacity(records.count)
        // A push's changes come a record at a time (a first push holds hundreds of thousands): a run's fields are
        // gathered, then added to its record's, and a record not held is looked up once per run.
        var current: RecordRef?
        var held = false
        var gathered = Set<String>()
        func flush() {
            guard held, let current else { return }
            fields[current, default: alwaysRead(of: current.type)].formUnion(gathered)
        }
        for change in request.changes {
            if change.record != current {
                flush()
                current = change.record
                held = records.contains(change.record)
                gathered.removeAll(keepingCapacity: true)
            }
            if held { gathered.insert(change.field) }
        }
        flush()
        return fields
    }

    /// The fields the judge reads of every record of `type` a push writes, whichever fields its changes write.
    private static func alwaysRead(of type: String) -> Set<String> {
        var read = Set<String>()
        if let owner = CareModel.ownerField[type] { read.insert(owner) }
        if type == RecordType.patient.rawValue { read.formUnion(PatientView.ScopeKeys.fields) }
        // An observation's reading is checked whole, whichever of its fields is written last (Batch.check).
        if type == RecordType.observation.rawValue { read.formUnion(Batch.readingFields) }
        return read
    }

    /// The refusals that concern one change only, and so may be answered per change (``judge(_:context:perChange:)``):
    /// the token's role or scope, and the care model. The others (another replica's change id, a change id
    /// reused, a clock ahead) refuse the whole push, as they say something about the device, not the change.
    static let perChangeCodes: Set<ErrorCode> = [.outOfScope, .forbidden, .invalidChange]

    /// Judges a push.
    ///
    /// All or nothing by default: the first refused change throws. With `perChange`, a change refused for a
    /// reason of its own (``perChangeCodes``) is left out and listed in ``PushPlan/refused``, and the others are
    /// judged without it: a later change that needs it (an edit of a record it would have created, an author it
    /// would have written) is refused in turn, with its own reason. Refusals of the whole push still throw.
    ///
    /// Changes to the records a legal purge erased (``erasedRecords(of:context:)``) are acknowledged and not stored,
    /// before any other rule but the push's own (replica, counter, retry, clock): the device made them before it
    /// heard of the purge, and its next pull removes the patient.
    func judge(_ request: PushRequest, context: PushContext, perChange: Bool = false) throws(ServerError) -> PushPlan {
        var refused: [Int: ServerError] = [:]
        let (erased, erasing) = Self.erasedRecords(of: request, context: context)
        while true {
            var (plan, written) = try judgeOnce(
                request,
                context: context,
                erased: erased,
                perChange: perChange,
                refused: &refused
            )
            // A reading refused in part is refused whole: a value kept without its refused unit would be read in
            // the wrong one.
            if Self.refuseReadingsWhole(request, &refused) { continue }
            // The records written by the changes kept are the ones a change may name as author or site: judge
            // again, leaving the refused changes out, until no refusal takes a written record away. With nothing
            // refused, every record of the push was taken as written.
            if refused.isEmpty || written == Self.records(of: request, keeping: { refused[$0] == nil }, erased: erased)
            {
                plan.erasing = erasing
                return plan
            }
        }
    }

    /// Refuses, with each refused code, unit or value of an observation, that observation's other reading changes of
    /// the push (code, unit and value are kept together: ``CareModel/checkReading(code:unit:value:)``). Returns
    /// whether it refused any change not refused before (the push is then judged again without them).
    static func refuseReadingsWhole(_ request: PushRequest, _ refused: inout [Int: ServerError]) -> Bool {
        let observation = RecordType.observation.rawValue
        var partial: [RecordRef: Int] = [:]
        for (index, _) in refused {
            let change = request.changes[index]
            if change.record.type == observation, Batch.readingFields.contains(change.field) {
                partial[change.record] = min(partial[change.record] ?? index, index)
            }
        }
        guard !partial.isEmpty else { return false }
        var added = false
        for (index, change) in request.changes.enumerated() where refused[index] == nil {
            guard let first = partial[change.record], Batch.readingFields.contains(change.field) else { continue }
            refused[index] = ServerError(
                .invalidChange,
                .unprocessableContent,
                "change \(index): the reading of \(change.record) was refused (change \(first)); its code, unit and "
                    + "value are kept together or not at all",
                field: "observation.\(change.field)",
                index: index
            )
            added = true
        }
        return added
    }

    /// The records whose erasure a storage looks up for `request` (into ``PushContext/erased``): those it writes
    /// that the practice does not hold (`held`: a purge deletes what it erases, and the judge never lets it back),
    /// and the patients its owner fields name. Empty for a push of edits to held records.
    static func erasable(by request: PushRequest, holding held: (RecordRef) -> Bool) -> Set<RecordRef> {
        var refs = Set<RecordRef>()
        var last: RecordRef?
        // A push's changes come a record at a time: its type's owner field is looked up once per run.
        var ownerField: String?
        for change in request.changes {
            if change.record != last {
                if change.record.type != last?.type { ownerField = CareModel.ownerField[change.record.type] }
                last = change.record
                if !held(change.record) { refs.insert(change.record) }
            }
            if let ownerField, change.field == ownerField, let patient = change.value.stringValue {
                refs.insert(RecordRef(type: RecordType.patient.rawValue, id: patient))
            }
        }
        return refs
    }

    /// The records whose changes in `request` are acknowledged and not stored: those a purge erased
    /// (``PushContext/erased``), and those a change of the push gives to an erased patient while they have no owner
    /// (a task made offline for a patient purged since: new, or stored without its `patient` field by an earlier
    /// push). A record the practice holds with an owner keeps it (the field is written once): a change naming
    /// another patient is judged, and refused, as without a purge. Also returns the latter, with their patients,
    /// in key order (``PushPlan/erasing``).
    static func erasedRecords(
        of request: PushRequest,
        context: PushContext
    ) -> (records: Set<RecordRef>, erasing: [PushPlan.Erasing]) {
        let erased = context.erased
        guard !erased.isEmpty else { return ([], []) }
        var records = Set<RecordRef>()
        var erasing: [PushPlan.Erasing] = []
        for change in request.changes where !records.contains(change.record) {
            if erased.contains(change.record) {
                records.insert(change.record)
            } else if CareModel.ownerField[change.record.type] == change.field,
                let patient = change.value.stringValue,
                erased.contains(RecordRef(type: RecordType.patient.rawValue, id: patient)),
                context.records[change.record]?.owner == nil
            {
                records.insert(change.record)
                erasing.append(PushPlan.Erasing(record: change.record, patient: patient))
            }
        }
        return (records, erasing.sorted { $0.record < $1.record })
    }

    /// The records a push's changes write (those at the indices `keeping` keeps). A push's changes come a record
    /// at a time, so a change of the same record as the one before it is not hashed again.
    /// Records in `erased` are left out.
    static func records(
        of request: PushRequest,
        keeping keep: (Int) -> Bool = { _ in true },
        erased: Set<RecordRef> = []
    ) -> Set<RecordRef> {
        var records = Set<RecordRef>()
        var last: RecordRef?
        for (index, change) in request.changes.enumerated() where change.record != last && keep(index) {
            records.insert(change.record)
            last = change.record
        }
        return erased.isEmpty ? records : records.subtracting(erased)
    }

    /// One pass of ``judge(_:context:perChange:)``: changes in `refused` are left out and stay refused; changes
    /// refused in this pass are added to it. Returns the plan and the records it took as written by the push.
    private func judgeOnce(
        _ request: PushRequest,
        context: PushContext,
        erased: Set<RecordRef>,
        perChange: Bool,
        refused: inout [Int: ServerError]
    ) throws(ServerError) -> (PushPlan, Set<RecordRef>) {
        let written = Self.records(of: request, keeping: { refused[$0] == nil }, erased: erased)
        var batch = Batch(context: context, written: written)
        let today = CalendarDate(millis: now)
        var plan = PushPlan()
        plan.accepted.reserveCapacity(request.changes.count)
        // The batch's record of each accepted change, for its owner at the end of the push.
        var acceptedSlots: [Int] = []
        acceptedSlots.reserveCapacity(request.changes.count)
        for (index, change) in request.changes.enumerated() {
            guard refused[index] == nil else { continue }
            guard change.id.replica == request.replica else {
                throw ServerError(
                    .replicaMismatch,
                    .forbidden,
                    "change \(index) has id \(change.id), not from replica \(request.replica); a push carries "
                        + "only its own replica's changes",
                    index: index
                )
            }
            do throws(ServerError) {
                // SQL integers are signed: a larger counter would trap converting, and no replica reaches it.
                guard change.id.counter <= UInt64(Int64.max) else {
                    throw ServerError(
                        .invalidChange,
                        .unprocessableContent,
                        "change \(index) has counter \(change.id.counter); this server stores counters up to "
                            + "\(Int64.max)",
                        field: "id",
                        index: index
                    )
                }
                // A retry: compared in the stored form (only then encoded on its own).
                if !context.stored.isEmpty, let stored = context.stored[change.id] {
                    guard stored == StoredChange.encode(change) else {
                        throw ServerError(
                            .changeIDReused,
                            .conflict,
                            "change \(change.id) was already pushed with different content; this replica was "
                                + "probably restored from an old copy: make a new replica with 'outpost init'",
                            index: index
                        )
                    }
                    plan.duplicates += 1
                    plan.maxCounter = max(plan.maxCounter, change.id.counter)
                    continue
                }
                if change.clock.millis > now + maxClockSkewMillis {
                    throw ServerError(
                        .clockSkew,
                        .conflict,
                        "change \(change.id) is stamped \(change.clock.millis - now) ms ahead of the server's "
                            + "clock (limit \(maxClockSkewMillis) ms); fix this device's clock, then sync again: "
                            + "pending changes are re-stamped and kept",
                        index: index
                    )
                }
                // Before the token's scope and the care model: the patient is gone, whatever the change was.
                if !erased.isEmpty, erased.contains(change.record) {
                    plan.erased += 1
                    plan.maxCounter = max(plan.maxCounter, change.id.counter)
                    continue
                }
                let slot = try batch.check(change, index: index, token: token, today: today)
                batch.apply(change, at: slot)
                plan.accepted.append(PushPlan.Accepted(change: change, owner: nil))
                acceptedSlots.append(slot)
                plan.maxCounter = max(plan.maxCounter, change.id.counter)
            } catch {
                guard perChange, Self.perChangeCodes.contains(error.code) else { throw error }
                refused[index] = error
            }
        }
        plan.refused = refused.sorted { $0.key < $1.key }.map { index, error in
            RefusedChange(
                id: request.changes[index].id,
                code: error.code.rawValue,
                message: error.message,
                field: error.field
            )
        }
        // Each change carries its record's owner as of the end of the push: the fields of a new task written
        // before its `patient` field belong to that patient too.
        let owners = batch.owners()
        for (position, slot) in acceptedSlots.enumerated() { plan.accepted[position].owner = owners[slot] }
        batch.finish(into: &plan, owners: owners)
        return (plan, written)
    }
}

/// The records one push touches, checked and merged in memory.
///
/// Each record the push names has a slot, found once per run of its changes (a push's changes come a record at
/// a time): the checks and merges of the changes after the first index the slot, not a table keyed by record.
private struct Batch {
    /// A record of the push: its state as the push goes, and what the store held of it.
    struct Slot {
        let ref: RecordRef
        var state: RecordState
        /// Whether the practice held it before this push.
        let isStored: Bool
        /// The stored row's owner column (for a record the practice held).
        let storedOwner: String?
        /// Whether a change of this push was merged into it.
        var touched = false
        /// The fields this push's changes wrote to it, each once, in the order first written.
        var fields: [String] = []
        /// For each of ``fields``, whether it had two live writes or more before this push (only such a field can
        /// have had a conflict open).
        var couldConflict: [Bool] = []
        /// For a patient the practice held, its scope keys as stored.
        let storedScope: PatientView.ScopeKeys?
    }

    /// An observation's fields checked together (``CareModel/checkReading(code:unit:value:)``).
    static let readingFields: Set<String> = ["code", "unit", "value"]

    var slots: [Slot] = []
    var slotIndex: [RecordRef: Int] = [:]
    /// The slot found last: the next change is most likely of the same record.
    var lastSlot: Int?
    let stored: [RecordRef: (owner: String?, state: RecordState)]
    let existing: Set<RecordRef>
    let patientsInScope: Set<String>?
    /// Every record this push writes, known before the first change is checked: a change may name as its
    /// author or site a person or site that a later change of the same push creates.
    let written: Set<RecordRef>
    /// The last record (and its type), author and site found valid: a push's changes come a record at a time, by
    /// one author from one site, and a first push holds hundreds of thousands of them. What was valid stays so
    /// within the push (a record that exists keeps existing), so a repeat is not checked again.
    var lastValid: (record: RecordRef?, type: RecordType?, author: String?, site: String?) = (nil, nil, nil, nil)

    init(context: PushContext, written: Set<RecordRef>) {
        stored = context.records
        existing = context.existing
        patientsInScope = context.patientsInScope
        self.written = written
    }

    /// Checks one change against the role and the care model, in the context of the batch so far; returns its
    /// record's slot.
    mutating func check(
        _ change: Change,
        index: Int,
        token: TokenEntry,
        today: CalendarDate
    ) throws(ServerError)
        -> Int
    {
        let role = token.role
        let type: RecordType
        if let known = lastValid.type, lastValid.record == change.record {
            type = known
        } else {
            guard let parsed = RecordType(rawValue: change.record.type) else {
                throw ServerError(
                    .invalidChange,
                    .unprocessableContent,
                    "change \(index) names record type '\(change.record.type)', which is not one of the care model's",
                    field: "record.type",
                    index: index
                )
            }
            guard parsed.isValidID(change.record.id) else {
                throw ServerError(
                    .invalidChange,
                    .unprocessableContent,
                    "change \(index) names '\(change.record.id)', which is not a \(parsed) id",
                    field: "record.id",
                    index: index
                )
            }
            type = parsed
            lastValid.record = change.record
            lastValid.type = type
        }
        if CareModel.structureTypes.contains(type) && role != .admin {
            throw ServerError.forbidden(
                "change \(index) edits a \(type), part of the practice's structure, which only an admin token may "
                    + "change",
                index: index
            )
        }
        try checkProvenance(change, index: index, person: token.person)
        let slot = slot(of: change.record)
        if let patientsInScope, let patient = scopedPatient(of: change, slot: slot),
            !patientsInScope.contains(patient),
            !isNew(RecordRef(type: RecordType.patient.rawValue, id: patient))
        {
            throw ServerError(
                .outOfScope,
                .forbidden,
                "change \(index) edits \(change.record), whose patient is outside this token's scope; the change "
                    + "stays in the device's outbox for an administrator",
                field: "record",
                index: index
            )
        }
        if role == .siteDevice && CareModel.closesConflict(change, in: slots[slot].state) {
            throw ServerError.forbidden(
                "change \(index) resolves a conflict on \(change.record.type).\(change.field); a site-device token "
                    + "cannot resolve conflicts, ask a clinician or an administrator",
                index: index
            )
        }
        do {
            try CareModel.validateEdit(
                type,
                field: change.field,
                operation: change.operation,
                value: change.value,
                current: slots[slot].state[change.field],
                today: today,
                exists: { ref in exists(ref) }
            )
            // An observation's reading: its unit one its code is recorded in, its value one the code can have in
            // that unit; whichever of the three comes last is checked against the others (each is written once,
            // when the observation is made).
            if type == .observation, Self.readingFields.contains(change.field), let written = change.value.stringValue {
                func reading(_ field: String) -> String? {
                    field == change.field
                        ? written : slots[slot].state.field(field)?.latestFirst.first?.value.stringValue
                }
                if let code = reading("code"), let unit = reading("unit") {
                    try CareModel.checkReading(code: code, unit: unit, value: reading("value"))
                }
            }
        } catch {
            throw ServerError(
                .invalidChange,
                .unprocessableContent,
                "change \(index): \(error.description)",
                field: error.field,
                index: index
            )
        }
        return slot
    }

    /// The patient whose scope decides whether a change is allowed: the record's owner, or, for a new
    /// record, the patient its owner field is being set to.
    private func scopedPatient(of change: Change, slot: Int) -> String? {
        if !slots[slot].isStored {
            if change.record.type == RecordType.patient.rawValue { return nil }
            if CareModel.ownerField[change.record.type] == change.field { return change.value.stringValue }
        }
        return owner(of: slot)
    }

    /// Checks who and where a change says it was made: the author is a person of the practice (the token's
    /// person, for a token bound to one) or this replica (`replica:<id>`), and the site a site of the practice.
    private mutating func checkProvenance(_ change: Change, index: Int, person: String?) throws(ServerError) {
        func refuse(_ field: String, _ message: String) -> ServerError {
            ServerError(
                .invalidChange,
                .unprocessableContent,
                "change \(index): \(message)",
                field: field,
                index: index
            )
        }
        let author = change.author
        // The token's person and the push's replica are the same for every change: an author found valid stays so.
        if author != lastValid.author {
            try checkAuthor(change, person: person, refuse: refuse)
            lastValid.author = author
        }
        if let site = change.site, site != lastValid.site {
            let ref = RecordRef(type: RecordType.site.rawValue, id: site)
            guard RecordType.site.isValidID(site), written.contains(ref) || exists(ref) else {
                throw refuse(
                    "site",
                    RecordType.site.isValidID(site)
                        ? "\(site) is not a site of this practice"
                        : "the site must be a site id of this practice (sit_...)"
                )
            }
            lastValid.site = site
        }
    }

    /// Checks a change's author: the token's person for a token bound to one, else this replica
    /// (`replica:<id>`) or a person of the practice.
    private func checkAuthor(
        _ change: Change,
        person: String?,
        refuse: (String, String) -> ServerError
    ) throws(ServerError) {
        let author = change.author
        if let person {
            guard author == person else {
                throw refuse(
                    "author",
                    "the author must be \(person), the person this token is issued to; a token signs only its "
                        + "person's edits"
                )
            }
        } else if author.hasPrefix("replica:") {
            guard author == "replica:\(change.id.replica)" else {
                throw refuse(
                    "author",
                    "a replica signs as replica:\(change.id.replica), its own id; set a person with 'outpost use "
                        + "--person'"
                )
            }
            return
        }
        let ref = RecordRef(type: RecordType.person.rawValue, id: author)
        guard RecordType.person.isValidID(author), written.contains(ref) || exists(ref) else {
            throw refuse(
                "author",
                "the author must be a person of this practice (per_...) or replica:<replica id>; "
                    + (RecordType.person.isValidID(author)
                        ? "\(author) is not a person of this practice" : "this one is not a person id")
            )
        }
    }

    /// The record's slot: its state as stored, or empty for a record this practice does not hold yet.
    private mutating func slot(of ref: RecordRef) -> Int {
        if let lastSlot, slots[lastSlot].ref == ref { return lastSlot }
        if let found = slotIndex[ref] {
            lastSlot = found
            return found
        }
        let record = stored[ref]
        slots.append(
            Slot(
                ref: ref,
                state: record?.state ?? RecordState(),
                isStored: record != nil,
                storedOwner: record?.owner,
                storedScope: record.flatMap {
                    ref.type == RecordType.patient.rawValue ? PatientView.ScopeKeys(state: $0.state) : nil
                }
            )
        )
        slotIndex[ref] = slots.count - 1
        lastSlot = slots.count - 1
        return slots.count - 1
    }

    /// Whether a change of this push named `ref` while the practice did not hold it.
    private func isNew(_ ref: RecordRef) -> Bool {
        guard let slot = slotIndex[ref] else { return false }
        return !slots[slot].isStored
    }

    /// Whether the practice holds `ref`, as stored or written earlier in this push.
    func exists(_ ref: RecordRef) -> Bool {
        if let slot = slotIndex[ref] {
            if slots[slot].isStored || slots[slot].touched { return true }
        } else if stored[ref] != nil {
            return true
        }
        return existing.contains(ref)
    }

    /// Merges a checked change into its record's slot.
    mutating func apply(_ change: Change, at slot: Int) {
        // In place: a copy of the state would copy the field's whole history on every change (a log of n
        // entries would cost n per append).
        if !slots[slot].fields.contains(change.field) {
            slots[slot].fields.append(change.field)
            slots[slot].couldConflict.append(slots[slot].state[change.field].live.count >= 2)
        }
        slots[slot].state.apply(change)
        slots[slot].touched = true
    }

    /// The patient a slot's record belongs to (itself for a patient), for scoping the feed.
    func owner(of slot: Int) -> String? {
        let ref = slots[slot].ref
        if ref.type == RecordType.patient.rawValue { return ref.id }
        guard let field = CareModel.ownerField[ref.type] else { return nil }
        return slots[slot].state[field].resolution(under: .lww).winner?.value.stringValue
    }

    /// The owner of each touched slot's record at the end of the push (`nil` for the others).
    func owners() -> [String?] {
        slots.indices.map { slots[$0].touched ? owner(of: $0) : nil }
    }

    /// The touched records, the scope columns of touched patients and the conflict marks of touched fields.
    func finish(into plan: inout PushPlan, owners: [String?]) {
        let touched = slots.indices.filter { slots[$0].touched }.sorted { slots[$0].ref < slots[$1].ref }
        var marks: [PushPlan.ConflictMark] = []
        for index in touched {
            let slot = slots[index]
            let owner = owners[index]
            let learnt =
                owner != nil && slot.ref.type != RecordType.patient.rawValue && slot.isStored
                && slot.storedOwner == nil
            let row: PushPlan.Record.RowChange =
                !slot.isStored ? .insert : slot.storedOwner == owner ? .state : .stateAndOwner
            plan.records.append(
                PushPlan.Record(ref: slot.ref, owner: owner, state: slot.state, learntOwner: learnt, row: row)
            )
            // A patient's scope columns are written when new or changed: an edit to a patient's phone leaves its
            // team and sites, and their rows, as they were.
            if slot.ref.type == RecordType.patient.rawValue {
                let keys = PatientView.ScopeKeys(state: slot.state)
                if keys != slot.storedScope {
                    plan.patientScopes.append(
                        PushPlan.PatientScope(patient: slot.ref.id, team: keys.team, sites: keys.sites)
                    )
                }
            }
            for (position, name) in slot.fields.enumerated() {
                let field = slot.state[name]
                // Only a field with two live writes can be in conflict (FieldState.resolution), and only one that
                // had two before this push can have a conflict row to close: the others are not marked. A first
                // push of a practice would otherwise delete a row for every register field of every record, and
                // an edit to a record of one, none of them there. (A purge removes a record's rows with it.)
                // Checked before the policy is looked up.
                if field.live.count < 2 && !(slot.isStored && slot.couldConflict[position]) { continue }
                guard let policy = CareModel.schema.policy(type: slot.ref.type, field: name), policy.isRegister
                else { continue }
                marks.append(
                    PushPlan.ConflictMark(
                        record: slot.ref,
                        field: name,
                        isConflict: field.resolution(under: policy).isConflict
                    )
                )
            }
        }
        plan.conflicts = marks.sorted { ($0.record, $0.field) < ($1.record, $1.field) }
    }
}
