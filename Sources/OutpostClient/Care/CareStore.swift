public import Logging
public import OutpostCRDT
public import OutpostModel
import OutpostProtocol

/// A replica of the care model: a ``LocalStore`` that speaks record types and validates every edit
/// against the model before writing it.
///
/// This is the API an app embeds. For example:
///
/// ```swift
/// let replica = try CareStore.open(at: path)
/// let patient = try replica.create(.patient, fields: ["givenName": ["Ana"], …])
/// try replica.update(patient, [.assign(patient, "phone", "555-0100")])
/// let open = try replica.records(.task).filter { !$0.isRetired }
/// ```
///
/// Every write is one transaction and is durable when the call returns; an invalid edit throws a
/// ``ClientError`` (`invalidEdit`, naming the field and the rule) and writes nothing.
public struct CareStore: Sendable {
    /// The underlying store.
    public let store: LocalStore

    /// Setting keys of the replica's default author and site.
    public enum SettingKey {
        /// The person id that signs this replica's edits.
        public static let person = "person"
        /// The site id where this replica's edits are made.
        public static let site = "site"
        /// The person the replica's token is issued to, as its last session said, while that person signs its edits
        /// (``person``, set from the session); forgotten, with ``person``, when a later session names no one.
        public static let tokenPerson = "tokenPerson"
    }

    init(store: LocalStore) {
        self.store = store
    }

    /// The store configuration for the care model; `key` is the key of an encrypted store (see
    /// ``LocalStore/Configuration/key``).
    public static func configuration(
        wallClock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "outpost.store", factory: { _ in SwiftLogNoOpLogHandler() }),
        key: StoreKeySource? = nil
    ) -> LocalStore.Configuration {
        LocalStore.Configuration(
            schema: CareModel.schema,
            ownerField: CareModel.ownerField,
            wallClock: wallClock,
            logger: logger,
            key: key
        )
    }

    /// Creates a new replica at `path`, encrypted when `key` is given. See
    /// ``LocalStore/create(at:replicaID:configuration:)``.
    public static func create(
        at path: String,
        replicaID: ReplicaID? = nil,
        wallClock: any WallClock = SystemWallClock(),
        key: StoreKeySource? = nil
    ) throws(ClientError) -> CareStore {
        CareStore(
            store: try LocalStore.create(
                at: path,
                replicaID: replicaID,
                configuration: configuration(wallClock: wallClock, key: key)
            )
        )
    }

    /// Opens an existing replica; `key` is asked for only when the store is encrypted. See
    /// ``LocalStore/open(at:configuration:)``.
    public static func open(
        at path: String,
        wallClock: any WallClock = SystemWallClock(),
        key: StoreKeySource? = nil
    ) throws(ClientError)
        -> CareStore
    {
        CareStore(store: try LocalStore.open(at: path, configuration: configuration(wallClock: wallClock, key: key)))
    }

    /// This replica's id.
    public var replicaID: ReplicaID { store.replicaID }

    /// Who signs this replica's edits: the configured person id, or `replica:<id>` until one is set.
    public func author() throws(ClientError) -> String {
        try store.setting(SettingKey.person) ?? "replica:\(store.replicaID)"
    }

    /// Where this replica's edits are made: the configured site id, if any.
    public func site() throws(ClientError) -> String? {
        try store.setting(SettingKey.site)
    }

    var today: CalendarDate { CalendarDate(millis: store.configuration.wallClock.nowMillis()) }

    static func invalid(_ error: ModelError) -> ClientError {
        ClientError(code: .invalidEdit, message: error.description, cause: error)
    }

    /// Creates a record of `type` with a new id and returns its reference.
    ///
    /// - Throws: ``ClientError`` `invalidEdit` (a missing required field, a bad value, a reference to a
    ///   record this replica does not hold); nothing is written.
    @discardableResult
    public func create(_ type: RecordType, fields: [String: [Value]]) throws(ClientError) -> RecordRef {
        var generator = SystemRandomNumberGenerator()
        let id = type.makeID(millis: store.configuration.wallClock.nowMillis(), using: &generator)
        let draft = DraftRecord(type: type, id: id, fields: fields)
        let today = today
        try refuseStructure(draft.ref, role: try store.setting(SyncEngine.roleSetting), isNew: true)
        try store.commit(author: try author(), site: try site()) { context in
            do {
                try CareModel.validate(draft, today: today, exists: context.exists)
            } catch var error as ModelError {
                // The id was made for a record that is not created: naming it would send the user looking for it.
                error.record = nil
                throw Self.invalid(error)
            }
            return Self.edits(creating: draft)
        }
        return draft.ref
    }

    /// Applies edits to existing records in one transaction.
    ///
    /// - Throws: ``ClientError`` `unknownRecord` when a record is not held here, `invalidEdit` when an
    ///   edit breaks a rule of the model (wrong operation for the field, bad value, an immutable field);
    ///   nothing is written.
    @discardableResult
    public func update(_ edits: [Edit]) throws(ClientError) -> [Change] {
        let today = today
        let role = try store.setting(SyncEngine.roleSetting)
        let isSiteDevice = role == Role.siteDevice.rawValue
        return try store.commit(author: try author(), site: try site()) { context in
            for edit in edits {
                guard let type = RecordType(rawValue: edit.record.type), context.exists(edit.record) else {
                    throw ClientError(
                        code: .unknownRecord,
                        message: "no \(edit.record.type) with id \(edit.record.id) on this replica; check the id "
                            + "with 'outpost \(edit.record.type) list'"
                    )
                }
                try refuseStructure(edit.record, role: role)
                // An append to a log reads nothing of the record (only an immutable field needs its state), so
                // the store can add it without loading the log: the cost of an append does not grow with it.
                let readsState = edit.operation != .append || CareModel.spec(type, edit.field)?.isImmutable != false
                do {
                    try CareModel.validateEdit(
                        type,
                        field: edit.field,
                        operation: edit.operation,
                        value: edit.value,
                        current: readsState ? try context.state(of: edit.record)[edit.field] : FieldState(),
                        today: today,
                        exists: context.exists
                    )
                } catch let error as ModelError {
                    throw Self.invalid(error)
                }
                if isSiteDevice, try Self.closesConflict(edit, in: context.state(of: edit.record), replica: replicaID) {
                    // The server would refuse it (403) and it would block the outbox: refuse it here, first.
                    throw ClientError(
                        code: .invalidEdit,
                        message: "\(edit.record.type).\(edit.field) of \(edit.record.id) is in conflict and this "
                            + "replica syncs with a site-device token, which cannot resolve conflicts; ask a clinician "
                            + "or an administrator ('outpost conflicts list')"
                    )
                }
            }
            return edits
        }
    }

    /// Whether a replica whose last session said `role` (`nil` before one) refuses its user writes to the practice's
    /// structure (``CareModel/structureTypes``): any known role but an admin's. The one rule for edits, imports and
    /// bulk conflict resolutions.
    public static func refusesStructure(role: String?) -> Bool {
        role.map { $0 != Role.admin.rawValue } ?? false
    }

    /// Refuses a write to a record of the practice's structure (``CareModel/structureTypes``) on a replica whose
    /// server gave it a token other than an admin's (`role`, the role its last session said; `nil` before one): the
    /// server would refuse it (`forbidden`) and the device would hold it aside. Refused here, the user learns it at
    /// once and nothing is written. A record being created (`isNew`) is named by its type alone: its id was never
    /// anyone's.
    func refuseStructure(_ record: RecordRef, role: String?, isNew: Bool = false) throws(ClientError) {
        guard let role, Self.refusesStructure(role: role), let type = RecordType(rawValue: record.type),
            CareModel.structureTypes.contains(type)
        else { return }
        throw ClientError(
            code: .invalidEdit,
            message: (isNew ? "a \(type.rawValue)" : "\(record.type) \(record.id)")
                + " is part of the practice's structure, which only an admin token may change, and this replica syncs "
                + "with a \(role) token; ask an administrator"
        )
    }

    /// Whether `edit`, made on a replica holding `state`, would settle a conflict (``CareModel/closesConflict(_:in:)``):
    /// an assign replaces the field's live writes.
    static func closesConflict(_ edit: Edit, in state: RecordState, replica: ReplicaID) -> Bool {
        let probe = Change(
            id: ChangeID(replica: replica, counter: .max),
            record: edit.record,
            field: edit.field,
            operation: edit.operation,
            value: edit.value,
            replaces: edit.operation == .assign ? state[edit.field].liveIDs : [],
            clock: Timestamp(millis: .max),
            author: "replica:\(replica)"
        )
        return CareModel.closesConflict(probe, in: state)
    }

    /// The edits that create `draft`: one per register field, one per set element and log entry.
    static func edits(creating draft: DraftRecord) -> [Edit] {
        var edits: [Edit] = []
        let ref = draft.ref
        for (name, values) in draft.fields.sorted(by: { $0.key < $1.key }) {
            guard let spec = CareModel.spec(draft.type, name) else { continue }
            switch spec.policy {
            case .lww, .review, .status:
                if let value = values.first, !value.isNull { edits.append(.assign(ref, name, value)) }
            case .set:
                for value in values { edits.append(.add(ref, name, value)) }
            case .log:
                for value in values { edits.append(.append(ref, name, value)) }
            }
        }
        return edits
    }

    /// How many edits ``edits(creating:)`` makes of a valid record's draft, counted without making it:
    /// one per register value that is not null, one per element of a `set` or `log`.
    static func editCount(creating record: DumpRecord) -> Int {
        var count = 0
        for field in record.fields.values {
            switch field {
            case .value(let value): count += value.isNull ? 0 : 1
            case .list(let values): count += values.count
            }
        }
        return count
    }

    /// Loads a practice dump (the generator's format, `docs/practice-format.md`) in one transaction.
    ///
    /// The header is checked (format, version, a practice record with the header's id), every record is
    /// validated, references resolved against the dump and the store; a record whose id the store already
    /// holds is refused, and so is the dump of another practice than the one the store holds (a store
    /// holds one practice). Nothing is written unless everything is valid.
    ///
    /// - Returns: how many records were created.
    @discardableResult
    public func importPractice(
        _ dump: PracticeDump,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws(ClientError) -> Int {
        try importPractice(
            format: dump.format,
            version: dump.version,
            practice: dump.practice,
            records: PracticeRecords { body throws(ClientError) in for record in dump.records { try body(record) } },
            progress: progress
        )
    }

    /// The draft of a dump's record, or the model's refusal as an `invalidEdit`.
    static func draft(of record: DumpRecord) throws(ClientError) -> DraftRecord {
        do throws(ModelError) {
            return try record.draft()
        } catch {
            throw Self.invalid(error)
        }
    }

    /// Loads a practice whose records are read from `records` (a file read as it goes, so that the whole
    /// practice is never in memory at once), in one transaction; like ``importPractice(_:progress:)``.
    ///
    /// `records` is read twice: once for the records' ids (references are resolved against the whole
    /// dump) and the progress total, then once to write them, in creation rank (``CareModel/creationRank``: a dump
    /// not in that order is read once per rank). It must give the same records each time.
    ///
    /// - Returns: how many records were created.
    /// - Throws: ``ClientError`` `invalidEdit` for an invalid header or record; an error `records` throws
    ///   is passed on as it is when it is a ``ClientError``, as `invalidEdit` when it is a ``ModelError``.
    @discardableResult
    public func importPractice(
        format: String,
        version: Int,
        practice header: PracticeDump.Header,
        records: PracticeRecords,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws(ClientError) -> Int {
        let today = today
        guard format == PracticeDump.formatName else {
            throw ClientError(
                code: .invalidEdit,
                message: "dump.format: '\(format)' is not an Outpost practice dump (\(PracticeDump.formatName)); "
                    + "check the file"
            )
        }
        guard version == PracticeDump.currentVersion else {
            throw ClientError(
                code: .invalidEdit,
                message: "dump.version: version \(version) is not one this Outpost reads "
                    + "(\(PracticeDump.currentVersion)); upgrade Outpost or re-export"
            )
        }
        if let role = try store.setting(SyncEngine.roleSetting), Self.refusesStructure(role: role) {
            // A dump holds its practice's record, and a server takes the practice's structure from an admin only.
            throw ClientError(
                code: .invalidEdit,
                message:
                    "an import writes the practice's structure (its practice, sites, people and teams), which only "
                    + "an admin token may change, and this replica syncs with a \(role) token; import on an "
                    + "administrator's replica"
            )
        }
        // Records are converted, validated and written one at a time (RecordCreator), so memory does not
        // grow with the practice: only the set of ids is held for the whole import.
        var incoming = Set<RecordRef>()
        var totalEdits = 0
        // Whether the dump gives its records in creation rank, as the generator writes them: then one reading
        // writes them; else one reading per rank (below).
        var order = CareModel.CreationOrder()
        try records.readSummaries { summary throws(ClientError) in
            guard incoming.insert(summary.record).inserted else {
                throw ClientError(
                    code: .invalidEdit,
                    message: "the dump holds \(summary.record) twice; every record id must be unique"
                )
            }
            totalEdits += summary.edits
            // A name that is no type is refused when its record is read.
            if let type = RecordType(rawValue: summary.record.type) { order.note(type) }
        }
        // Written in creation rank, whatever the file's order, so that each record's references name records
        // written (and pushed) before it: a server judges a push change by change (protocol/README.md, section 5).
        let passes = order.passes.map { rank in
            rank.map { rank in
                records.filtered { (RecordType(rawValue: $0.type).map(CareModel.creationRank(of:)) ?? 0) == rank }
            }
                ?? records
        }
        let practice = RecordRef(type: RecordType.practice.rawValue, id: header.id)
        guard incoming.contains(practice) else {
            throw ClientError(
                code: .invalidEdit,
                message: "dump.practice.id: no practice record has the id \(header.id); add it or fix the header"
            )
        }
        var count = 0
        try store.create(author: try author(), site: try site(), totalEdits: totalEdits, progress: progress) {
            context,
            creator in
            // A store holds one practice: another practice's dump goes into a store of its own.
            if let held = try context.ids(ofType: RecordType.practice.rawValue).first(where: { $0 != header.id }) {
                throw ClientError(
                    code: .invalidEdit,
                    message: "this store holds practice \(held) and the file is practice \(header.id); a store "
                        + "holds one practice: import it into a new store ('outpost init --store NEW-PATH', then "
                        + "'outpost import --store NEW-PATH FILE')"
                )
            }
            // Into a new store (the usual case) no record can be held already: the ids are checked unique, and a
            // reference outside the file names nothing. The file is then read, and its records converted and
            // validated, on a thread of its own, drafted on a second, while this one writes them (ImportPipeline).
            let lookUp = try !context.storeWasEmpty()
            if lookUp {
                let exists = { (ref: RecordRef) in incoming.contains(ref) || context.exists(ref) }
                for records in passes {
                    try records.read { record throws(ClientError) in
                        let draft = try Self.draft(of: record)
                        if try context.holds(draft.ref) {
                            throw ClientError(
                                code: .invalidEdit,
                                message:
                                    "this replica already holds \(draft.ref); import into a new store, or remove the "
                                    + "record from the file"
                            )
                        }
                        let edits = try Self.creation(of: draft, incoming: incoming, today: today, exists: exists)
                        try creator.create(draft.ref, edits)
                        count += 1
                    }
                }
            } else {
                let incoming = incoming
                // A second thread drafts each record (its changes stamped, encoded and projected: RecordDrafter)
                // from the replica's counter and clock as they are now; the writer writes the drafts in order.
                var drafter = creator.drafter()
                for records in passes {
                    try ImportPipeline.run(
                        reading: records,
                        converting: { record throws(ClientError) in
                            let draft = try Self.draft(of: record)
                            let edits = try Self.creation(of: draft, incoming: incoming, today: today) {
                                incoming.contains($0)
                            }
                            return (draft.ref, edits)
                        },
                        finishing: { record, edits throws(ClientError) in try drafter.draft(record, edits) },
                        writing: { drafted throws(ClientError) in
                            try creator.write(drafted)
                            count += 1
                        }
                    )
                }
            }
            guard count == incoming.count else {
                throw ClientError(
                    code: .invalidEdit,
                    message: "the dump changed while it was read (\(incoming.count) records, then \(count)); import "
                        + "it again"
                )
            }
        }
        return count
    }

    /// The edits that create a dump's record, once it is checked: in the file's first reading (`incoming`),
    /// and valid by the care model, its references resolved by `exists`.
    static func creation(
        of draft: DraftRecord,
        incoming: Set<RecordRef>,
        today: CalendarDate,
        exists: (RecordRef) -> Bool
    ) throws(ClientError) -> [Edit] {
        guard incoming.contains(draft.ref) else {
            throw ClientError(
                code: .invalidEdit,
                message: "the dump changed while it was read (\(draft.ref) was not there before); import it again"
            )
        }
        do throws(ModelError) {
            try CareModel.validate(draft, today: today, exists: exists)
        } catch {
            throw Self.invalid(error)
        }
        return Self.edits(creating: draft)
    }

    /// The materialized view of one record, or `nil` when this replica does not hold it.
    public func record(_ ref: RecordRef) throws(ClientError) -> MaterializedRecord? {
        guard let type = RecordType(rawValue: ref.type), let state = try store.record(ref) else { return nil }
        return MaterializedRecord(type: type, id: ref.id, state: state)
    }

    /// Every record of `type` (optionally those owned by one patient), sorted by id.
    public func records(_ type: RecordType, owner: String? = nil) throws(ClientError) -> [MaterializedRecord] {
        try store.records(ofType: type.rawValue, owner: owner).map {
            MaterializedRecord(type: type, id: $0.id, state: $0.state)
        }
    }

    /// A canonical JSON dump of every record: one record per line, sorted by type and id, keys sorted.
    ///
    /// Two replicas holding the same state export identical bytes, whatever their history.
    public func exportCanonicalJSON() throws(ClientError) -> String {
        var lines: [String] = []
        for type in RecordType.allCases.sorted() {
            for record in try records(type) { lines.append(record.canonicalJSON()) }
        }
        return "{\"format\":\"outpost-export\",\"version\":1,\"records\":[\n" + lines.joined(separator: ",\n")
            + (lines.isEmpty ? "" : "\n") + "]}\n"
    }
}

/// The records of a practice, read in order, as often as asked (``CareStore/importPractice(format:version:practice:records:progress:)``
/// reads them twice or more). For example, a file parsed one record at a time, or a ``PracticeDump``'s array.
public struct PracticeRecords {
    /// What the first reading needs of a record: its reference, and how many edits create it (one per
    /// register value that is not null, one per element of a `set` or `log`).
    public typealias Summary = (record: RecordRef, edits: Int)

    private let reader: (_ body: (DumpRecord) throws(ClientError) -> Void) throws(ClientError) -> Void
    private let summaryReader: ((_ body: (Summary) throws(ClientError) -> Void) throws(ClientError) -> Void)?

    /// Records given by `reader`, which calls its argument once per record, in order; an error thrown
    /// while reading (a malformed file) is a ``ClientError`` naming the problem. `summaries`, when given,
    /// reads the same records' summaries more cheaply than decoding them (the first reading uses it).
    public init(
        _ reader: @escaping (_ body: (DumpRecord) throws(ClientError) -> Void) throws(ClientError) -> Void,
        summaries: ((_ body: (Summary) throws(ClientError) -> Void) throws(ClientError) -> Void)? = nil
    ) {
        self.reader = reader
        self.summaryReader = summaries
    }

    /// Calls `body` once per record, in order.
    func read(_ body: (DumpRecord) throws(ClientError) -> Void) throws(ClientError) {
        try reader(body)
    }

    /// The records `isIncluded` keeps, in order.
    func filtered(_ isIncluded: @escaping (DumpRecord) -> Bool) -> PracticeRecords {
        let reader = reader
        return PracticeRecords { body throws(ClientError) in
            try reader { record throws(ClientError) in
                if isIncluded(record) { try body(record) }
            }
        }
    }

    /// Calls `body` once per record's summary, in order.
    func readSummaries(_ body: (Summary) throws(ClientError) -> Void) throws(ClientError) {
        if let summaryReader {
            try summaryReader(body)
        } else {
            try reader { record throws(ClientError) in
                try body((RecordRef(type: record.type, id: record.id), CareStore.editCount(creating: record)))
            }
        }
    }
}
