import OutpostCRDT

/// One simulated device or server: a replica id, a hybrid logical clock, a change counter and a ``Document``,
/// with an authoring API that makes changes the way a correct client does.
///
/// A replica is a value: copying one forks it, which is handy to compare two futures of the same state.
/// Its wall clock is a plain reading (``wallMillis``) that the test or scenario moves, backwards too.
///
/// Authoring follows DESIGN.md section 3:
/// - ``assign(_:_:_:)`` and ``resolve(_:_:_:)`` replace the field's live writes as this replica sees them;
/// - ``add(_:_:_:)`` adds a new tag; ``remove(_:_:_:)`` names the tags of the element it observed;
/// - ``append(_:_:_:)`` replaces nothing.
///
/// Every change authored is applied locally at once and recorded in ``log``, together with what the replica
/// had seen when it wrote it (``context``), which ``CausalOracle`` uses to decide what happened before what.
///
/// For example:
///
/// ```swift
/// var laptop = SimulatedReplica(id: "laptop", schema: ThingSchema.schema)
/// var tablet = SimulatedReplica(id: "tablet", schema: ThingSchema.schema)
/// let first = try laptop.assign(ThingSchema.record(0), ThingSchema.reviewField, "a")
/// let second = try tablet.assign(ThingSchema.record(0), ThingSchema.reviewField, "b")
/// try laptop.receive([second])          // laptop now holds a conflict between "a" and "b"
/// ```
public struct SimulatedReplica: Sendable {
    /// The replica's id.
    public let id: ReplicaID
    /// The replica's clock.
    public private(set) var clock: HybridLogicalClock
    /// The counter of the last change this replica made (0 before the first).
    public private(set) var counter: UInt64
    /// The replica's merged state.
    public private(set) var document: Document
    /// Every change this replica knows, in the order it made or received them, without duplicates.
    ///
    /// When every exchange delivers a prefix of the sender's log (as ``EditScenario`` does), this order is
    /// causal: a change comes after every change its author had seen.
    public private(set) var log: [Change]
    /// The ids of the changes in ``log``.
    public private(set) var seen: Set<ChangeID>
    /// For each change this replica authored, the ids of the changes it had seen when it wrote it.
    public private(set) var context: [ChangeID: Set<ChangeID>]
    /// The replica's wall-clock reading, in milliseconds since 1970; tests move it freely.
    public var wallMillis: UInt64
    /// The person id written into authored changes.
    public var author: String
    /// The site id written into authored changes.
    public var site: String?

    /// Creates an empty replica.
    ///
    /// - Parameters:
    ///   - id: the replica id; it must be valid (see ``ReplicaID/isValid(_:)``).
    ///   - schema: the schema its document checks changes against.
    ///   - wallMillis: the initial wall-clock reading.
    ///   - maxSkewMillis: the clock's bound on accepted skew.
    public init(
        id: String,
        schema: Schema,
        wallMillis: UInt64 = 1_700_000_000_000,
        maxSkewMillis: UInt64 = 5 * 60 * 1000
    ) {
        precondition(ReplicaID.isValid(id), "not a valid replica id: \(id)")
        self.id = ReplicaID(unchecked: id)
        self.clock = HybridLogicalClock(maxSkewMillis: maxSkewMillis)
        self.counter = 0
        self.document = Document(schema: schema)
        self.log = []
        self.seen = []
        self.context = [:]
        self.wallMillis = wallMillis
        self.author = "person-\(id)"
        self.site = nil
    }

    /// The current state of one field.
    public func field(_ record: RecordRef, _ field: String) -> FieldState {
        document.field(record, field)
    }

    /// Sets a register (`lww`, `review`, `status`) to `value`, replacing the live writes this replica sees.
    ///
    /// - Throws: ``CRDTError`` when the schema refuses the change; nothing changes then.
    @discardableResult
    public mutating func assign(_ record: RecordRef, _ field: String, _ value: Value) throws(CRDTError) -> Change {
        try author(record, field, .assign, value, replaces: document.field(record, field).liveIDs)
    }

    /// Resolves a register: writes `value` replacing every live value this replica sees, which ends a
    /// conflict once every replica has the change.
    ///
    /// The change is the same as an ``assign(_:_:_:)``: in this design every assign resolves what its
    /// writer saw. The separate name says what the test means.
    @discardableResult
    public mutating func resolve(_ record: RecordRef, _ field: String, _ value: Value) throws(CRDTError) -> Change {
        try assign(record, field, value)
    }

    /// Adds `value` to a `set`; the change's id is the element's new tag.
    @discardableResult
    public mutating func add(_ record: RecordRef, _ field: String, _ value: Value) throws(CRDTError) -> Change {
        try author(record, field, .add, value, replaces: [])
    }

    /// Removes `value` from a `set`, naming the tags of it this replica observed (possibly none).
    @discardableResult
    public mutating func remove(_ record: RecordRef, _ field: String, _ value: Value) throws(CRDTError) -> Change {
        try author(record, field, .remove, value, replaces: document.field(record, field).tags(of: value))
    }

    /// Appends `value` to a `log`.
    @discardableResult
    public mutating func append(_ record: RecordRef, _ field: String, _ value: Value) throws(CRDTError) -> Change {
        try author(record, field, .append, value, replaces: [])
    }

    /// Authors any change (also a malformed one, for tests of refusal): stamps it, applies it and logs it.
    ///
    /// - Throws: ``CRDTError`` when the schema refuses the change; the replica is unchanged then.
    @discardableResult
    public mutating func author(
        _ record: RecordRef,
        _ field: String,
        _ operation: Operation,
        _ value: Value,
        replaces: [ChangeID]
    ) throws(CRDTError) -> Change {
        var stamped = clock
        let change = Change(
            id: ChangeID(replica: id, counter: counter + 1),
            record: record,
            field: field,
            operation: operation,
            value: value,
            replaces: replaces,
            clock: stamped.tick(wallMillis: wallMillis),
            author: author,
            site: site
        )
        try document.apply(change)
        clock = stamped
        counter += 1
        context[change.id] = seen
        log.append(change)
        seen.insert(change.id)
        return change
    }

    /// Receives changes from another replica, in order; changes already known are skipped.
    ///
    /// Each change's clock is merged into this replica's clock, so a later local write carries a larger
    /// timestamp than every write it saw.
    ///
    /// - Throws: ``ClockSkewError`` when a change's clock is too far ahead of ``wallMillis``, or
    ///   ``CRDTError`` when the schema refuses a change; the changes before it stay received, it and those
    ///   after it are not.
    public mutating func receive(_ changes: some Sequence<Change>) throws {
        for change in changes where !seen.contains(change.id) {
            try HybridLogicalClock.checkSkew(change.clock, wallMillis: wallMillis, maxSkewMillis: clock.maxSkewMillis)
            try document.apply(change)
            try clock.receive(change.clock, wallMillis: wallMillis)
            log.append(change)
            seen.insert(change.id)
        }
    }

    /// Receives another replica's whole log.
    public mutating func receive(from other: SimulatedReplica) throws {
        try receive(other.log)
    }
}
