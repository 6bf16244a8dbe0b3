import OutpostCRDT
import OutpostModel
import OutpostProtocol

/// What a pull page and a snapshot page contain, as pure code: takes the rows a backend read and returns what
/// to send and what to record. One path for every token: the whole practice is the scope that contains
/// every record (``Visibility/wholePractice``).
enum FeedPlanner {
    /// A scoped token's pull is planned against what its device was sent (``scopedPage(rows:inScope:known:since:)``),
    /// which is known by the device's replica id: without one there is nothing to plan against, and the page would
    /// be the whole practice's. Refused, by the route before a store is asked and by each store again.
    static func requireReplica(_ replica: ReplicaID?, scope: Scope) throws(ServerError) {
        guard replica == nil, !scope.isWholePractice else { return }
        throw ServerError.parameter("replica", "a scoped token sends replica=<this device's replica id>")
    }

    /// Which records a token sees.
    enum Visibility: Sendable {
        /// Every record of the practice.
        case wholePractice
        /// The practice's structure, and the patients in the set with the records they own.
        case patients(Set<String>)

        /// Whether a record is visible: the practice's structure always, a patient and its records when the
        /// patient is in scope. A record that should have an owner but has none yet (its creation is split
        /// across pushes) is visible only to the whole practice, until its owner is known.
        func contains(type: String, id: String, owner: String?) -> Bool {
            guard case .patients(let inScope) = self else { return true }
            return CareModel.scopeHolds(type: type, id: id, owner: owner, holdsPatient: inScope.contains)
        }

        /// Which records of `type` a snapshot walks: those this visibility may contain, so a scoped device's
        /// snapshot reads its patients, their records and the practice's structure, never the rest of the
        /// practice. A backend walks type after type in (type, id) order, each as this says, so the cursor of a
        /// scoped page has the whole practice's form.
        func walk(type: String) -> TypeWalk {
            guard case .patients = self else { return .every }
            if type == RecordType.patient.rawValue { return .patientsInScope }
            return CareModel.ownerField[type] == nil ? .every : .ownedInScope
        }

        /// The patients in scope, sorted (none for the whole practice): what a backend looks records up by.
        var sortedPatients: [String] {
            guard case .patients(let inScope) = self else { return [] }
            return inScope.sorted()
        }
    }

    /// Which records of one type a snapshot page walks (``Visibility/walk(type:)``).
    enum TypeWalk: Sendable, Hashable {
        /// Every record of the type: any type for the whole practice, the structure's types for a scope.
        case every
        /// The patients in scope, looked up by id.
        case patientsInScope
        /// The records owned by a patient in scope, looked up by owner; a record whose owner is not known yet
        /// is not walked, as ``Visibility/contains(type:id:owner:)`` leaves it out.
        case ownedInScope
    }

    /// A change of the feed as a backend read it.
    struct FeedRow: Sendable {
        var record: RecordRef
        var owner: String?
        var change: Change
    }

    /// What a scoped device was last sent of a patient: `in` (the patient and its records) or `out` (told to
    /// purge it), at feed position `at`, in answer to a pull from `atSince`.
    struct DevicePatient: Sendable, Hashable {
        var isIn: Bool
        var at: Int64
        var atSince: Int64

        /// Whether the device has applied it: it pulls from a position at or after `at`, and past the pull
        /// that carried it.
        func isApplied(since: Int64) -> Bool { since >= at && since > atSince }
    }

    /// A scoped pull page, decided.
    struct ScopedPage: Sendable {
        /// The changes to send.
        var changes: [Change]
        /// Patients that entered the scope (or were not yet applied): send them whole.
        var entering: [String]
        /// Patients that left the scope (or whose purge was not yet applied): the device removes them.
        var removed: [String]
        /// Patients the device has applied leaving: forget them.
        var forgotten: [String]
    }

    /// The patients a scoped device's push creates, which the device now holds as if it had been sent them: recorded
    /// `in` and not yet applied (``sentByPush``), so its next pull sends each whole if it is in the scope, as
    /// before, and removes it if not (a patient registered for another team, or moved out of the scope by another
    /// device before this one pulls). Until that pull is applied its later edits to the patient are taken
    /// (``heldPatients(recorded:pulledFrom:)``); without the record the device kept the patient as it registered
    /// it, received no later change to it, and had its later edits refused. Empty for the whole practice, whose
    /// devices are not recorded. Sorted, each once.
    static func patientsCreated(by plan: PushPlan, scope: Scope) -> [String] {
        guard !scope.isWholePractice else { return [] }
        return Set(
            plan.records.lazy.filter { $0.row == .insert && $0.ref.type == RecordType.patient.rawValue }.map(\.ref.id)
        ).sorted()
    }

    /// How a patient a push created is recorded for its device (``patientsCreated(by:scope:)``): sent (`in`), at a
    /// position no pull reaches, so it is never applied until a pull sends or removes it and records that pull. It
    /// replaces any row the device had of that id (none is expected: a purge drops them): the worst it costs is one
    /// patient sent whole again.
    static let sentByPush = DevicePatient(isIn: true, at: .max, atSince: .max)

    /// The patients a scoped device still holds, whose edits its push may carry beside those of its scope
    /// (``PushJudge``): those it was sent (`in`) and those it was told to remove but has not removed yet, by what
    /// it pulled since (`pulledFrom`, where its last pull began; `nil` before its first). An edit made while the
    /// patient was in scope, and pushed before the pull that removes the patient is applied (a page of `outpost
    /// sync --watch`'s long poll, ``SyncEngine``), reaches the server, as protocol/README.md section 11 says.
    static func heldPatients(recorded: [String: DevicePatient], pulledFrom: Int64?) -> Set<String> {
        Set(
            recorded.lazy.filter { entry in
                entry.value.isIn || pulledFrom.map { !entry.value.isApplied(since: $0) } ?? true
            }.map(\.key)
        )
    }

    /// The patients whose records a scoped snapshot's page after the first sends: those its first page `recorded`
    /// as sent to the device (`in`) that are in its scope now (`inScope`), never one outside it. The recorded
    /// patients that left the scope since (`leaving`) are recorded as told to leave (`out`, not yet applied), so
    /// they are walked no more, even if they come back, and the pull from the snapshot's checkpoint removes each,
    /// or sends it whole if it came back. Walked with the scope as it was at each page instead, a patient that
    /// moved out and back during the walk missed the records of the types walked meanwhile, which no pull sent
    /// again (the device counted as holding it); one that moved in arrived in part. A purge drops the patient's
    /// row, and its records.
    static func snapshotPatients(
        recorded: [String: DevicePatient],
        inScope: Set<String>
    ) -> (patients: Set<String>, leaving: [String]) {
        var patients: Set<String> = []
        var leaving: [String] = []
        for (patient, entry) in recorded where entry.isIn {
            if inScope.contains(patient) { patients.insert(patient) } else { leaving.append(patient) }
        }
        return (patients, leaving.sorted())
    }

    /// The ids a snapshot's first page tells the device to remove (``SnapshotPage/removed``): what the practice's
    /// purges at or before the snapshot's checkpoint remove (`purged`: the patients, and records a push gave them
    /// after their purge), and the patients the device was sent, in or out (`known`, read before the first page
    /// resets it), that are not in `inScope` now (`nil` for the whole practice). A device bootstrapping again may
    /// hold them, and no pull from the snapshot's checkpoint announces them. Nothing else: a patient the snapshot
    /// does not send may be one the device created and pushed after the checkpoint of kept pages
    /// (``SnapshotCache``), or one a restored store lacks until another device pushes it again. Sorted, each once.
    static func removedOnBootstrap(
        purged: [String],
        known: some Sequence<String>,
        inScope: Set<String>?
    ) -> [String] {
        var removed = Set(purged)
        if let inScope {
            for patient in known where !inScope.contains(patient) { removed.insert(patient) }
        }
        return removed.sorted()
    }

    /// The ids of a page's `removed` that left the device's scope and were not `purged` (``PullResponse/leftScope``):
    /// the device may keep its own acknowledged edits to them, sealed, to send again to a server restored from a
    /// backup taken before they were stored. A purge erases the patient on every device, those edits included, so
    /// a purged id is never one. Sorted, each once.
    static func leftScope(removed: some Sequence<String>, purged: some Sequence<String>) -> [String] {
        Set(removed).subtracting(purged).sorted()
    }

    /// What a scoped snapshot's first page records as sent to the device, in place of what it `known` before: every
    /// patient `inScope` sent (`in`), and every known patient out of it told to leave (`out`), both at the snapshot's
    /// `head` and applied once the device pulls from the snapshot's checkpoint (``DevicePatient/isApplied(since:)``).
    /// A leaver is kept, not forgotten, until then: the page's answer may be lost after it is recorded (the link
    /// drops), and the first page asked for again names the leaver in `removed` only if it is still known
    /// (``removedOnBootstrap(purged:known:inScope:)``). Forgotten at once, the device kept it for good.
    static func bootstrapRecord(
        known: [String: DevicePatient],
        inScope: Set<String>,
        head: Int64
    ) -> [String: DevicePatient] {
        var record: [String: DevicePatient] = [:]
        record.reserveCapacity(inScope.count)
        for patient in known.keys where !inScope.contains(patient) {
            record[patient] = DevicePatient(isIn: false, at: head, atSince: head - 1)
        }
        for patient in inScope { record[patient] = DevicePatient(isIn: true, at: head, atSince: head - 1) }
        return record
    }

    /// Decides a scoped pull page from the changes scanned after `since`, the patients in scope now and what
    /// the device was last sent.
    static func scopedPage(
        rows: [FeedRow],
        inScope: Set<String>,
        known: [String: DevicePatient],
        since: Int64
    ) -> ScopedPage {
        var entering: [String] = []
        for patient in inScope.sorted() {
            if let entry = known[patient], entry.isIn, entry.isApplied(since: since) { continue }
            entering.append(patient)
        }
        var removed: [String] = []
        var forgotten: [String] = []
        for (patient, entry) in known.sorted(by: { $0.key < $1.key }) where !inScope.contains(patient) {
            if entry.isIn || !entry.isApplied(since: since) {
                removed.append(patient)
            } else {
                forgotten.append(patient)
            }
        }
        let visibility = Visibility.patients(inScope)
        let fresh = Set(entering)
        let changes = rows.compactMap { row -> Change? in
            guard visibility.contains(type: row.record.type, id: row.record.id, owner: row.owner) else { return nil }
            // A patient sent whole in this page carries its changes already.
            if let patient = row.record.type == RecordType.patient.rawValue ? row.record.id : row.owner,
                fresh.contains(patient)
            {
                return nil
            }
            return row.change
        }
        return ScopedPage(changes: changes, entering: entering, removed: removed, forgotten: forgotten)
    }

    /// Whether every write of the stored record state `encoded`, live or superseded, is `replica`'s: a device
    /// that asks to be spared its own records (`own=skip`, on its first bootstrap, when it holds everything it
    /// ever wrote) has that state already, so a snapshot page leaves the record out (protocol/README.md,
    /// `GET /v1/snapshot`). Read without decoding the state: such a walk looks at every record of the practice.
    static func isOwn(_ encoded: [UInt8], by replica: ReplicaID) throws(CRDTError) -> Bool {
        var reader = BinaryReader(encoded)
        return try reader.recordStateIsWritten(onlyBy: replica)
    }

    /// How many records a snapshot page that spares the device's own may walk, in pages' limits: spared records
    /// do not fill a page, so a first bootstrap of a device that pushed the whole practice walks it in a few
    /// requests instead of one per `limit` records, and one request still reads a bounded number of rows.
    static let sparedWalkPages = 16

    /// Walks records in (type, id) order, as `next` yields them with their owners, and returns the first `limit`
    /// visible ones that `spares` does not leave out and, when another such record may follow, the cursor of the
    /// next page. `spares` (none: none is left out) is asked of visible records only, in walk order, so the
    /// caller reads a state only for those. Reads one record past the page at most, so a scoped page is as full
    /// as a whole-practice one and the walk stops as soon as the page is known; after `walkLimit` records it
    /// stops anyway, with the last record walked as the cursor, so a page may hold fewer than `limit` records,
    /// or none, and still have a `next` (protocol/README.md).
    static func snapshotPage<Failure: Error>(
        limit: Int,
        visibility: Visibility,
        walkLimit: Int = .max,
        next: () throws(Failure) -> (record: RecordRef, owner: String?)?,
        spares: ((RecordRef) throws(Failure) -> Bool)? = nil
    ) throws(Failure) -> (records: [RecordRef], next: RecordRef?) {
        var page: [RecordRef] = []
        var walked = 0
        var last: RecordRef?
        while page.count <= limit {
            guard walked < walkLimit else { return (page, last) }
            guard let candidate = try next() else { return (page, nil) }
            walked += 1
            last = candidate.record
            guard visibility.contains(type: candidate.record.type, id: candidate.record.id, owner: candidate.owner),
                try !(spares?(candidate.record) ?? false)
            else { continue }
            page.append(candidate.record)
        }
        return (Array(page.prefix(limit)), page[limit - 1])
    }
}
