/// The merged state of one record: its fields' states, by name.
///
/// The fields are held as a small array sorted by name, not a dictionary: a state is built from its encodings
/// (which write fields sorted by name) by appending, written back by walking it in order, and read by a binary
/// search over a dozen names; nothing is hashed, and one allocation holds the fields.
public struct RecordState: Sendable, Hashable, Codable {
    /// One written field: its name and merged state.
    public struct Field: Sendable, Hashable {
        /// The field's name.
        public let name: String
        /// The field's merged state.
        public internal(set) var state: FieldState

        init(name: String, state: FieldState) {
            self.name = name
            self.state = state
        }
    }

    /// The fields written, sorted by name, each name once.
    public private(set) var sortedFields: [Field]

    /// An empty record.
    public init() { sortedFields = [] }

    /// Creates a record from field states.
    public init(fields: [String: FieldState]) {
        sortedFields = fields.map { Field(name: $0.key, state: $0.value) }.sorted { $0.name < $1.name }
    }

    /// Field states by field name (a dictionary made on each call: ``sortedFields``, ``field(_:)`` and
    /// ``subscript(_:)`` read the state without making one).
    public var fields: [String: FieldState] {
        Dictionary(uniqueKeysWithValues: sortedFields.lazy.map { ($0.name, $0.state) })
    }

    /// Whether no field was ever written.
    public var isEmpty: Bool { sortedFields.isEmpty }

    /// The names of the fields written, sorted.
    public var fieldNames: [String] { sortedFields.map(\.name) }

    /// Where the field `name` is in ``sortedFields``, `nil` when never written (for a reader that reads a part of
    /// the field in place, without copying its state out).
    public func index(ofField name: String) -> Int? {
        let slot = position(of: name)
        return slot.found ? slot.index : nil
    }

    /// The state of `field`, `nil` when never written.
    public func field(_ name: String) -> FieldState? {
        let slot = position(of: name)
        return slot.found ? sortedFields[slot.index].state : nil
    }

    /// The state of `field` (empty when never written).
    public subscript(field: String) -> FieldState {
        self.field(field) ?? FieldState()
    }

    /// The register fields whose concurrent values await review, sorted by name: those whose policy (`policy`, by
    /// field name; `nil` for a field the caller does not know) is a register's and whose resolution under it is a
    /// conflict. Only a field with more than one live write can be in conflict (``FieldState/resolution(under:)``),
    /// so most fields are passed over without their policy looked up.
    public func conflictedFields(policy: (_ field: String) -> MergePolicy?) -> [String] {
        var fields: [String] = []
        for field in sortedFields where field.state.live.count > 1 {
            guard let policy = policy(field.name), policy.isRegister, field.state.resolution(under: policy).isConflict
            else { continue }
            fields.append(field.name)
        }
        return fields
    }

    /// How many live writes the fields hold, and the latest millisecond among their clocks (0 when none): what
    /// ``HybridLogicalClock/receive(count:latestMillis:wallMillis:)`` takes for a state received whole.
    package var liveClockSummary: (count: Int, latestMillis: UInt64) {
        var count = 0
        var latest: UInt64 = 0
        // Read in place, by position: a field or write copied out retains and releases its strings.
        for field in sortedFields.indices {
            let live = sortedFields[field].state.live
            count += live.count
            for write in live.indices where live[write].clock.millis > latest { latest = live[write].clock.millis }
        }
        return (count, latest)
    }

    /// Makes room for `count` fields (a record folded from its changes: the fields are written one by one).
    public mutating func reserveFields(_ count: Int) {
        sortedFields.reserveCapacity(count)
    }

    /// Adds a field read from an encoding: appended when its name sorts after the last one (encodings write
    /// fields sorted by name), put in its place otherwise. Returns `false`, changing nothing, when the state
    /// already has a field of that name.
    public mutating func insertDecoded(_ name: String, _ state: FieldState) -> Bool {
        if let last = sortedFields.last, !(last.name < name) {
            let slot = position(of: name)
            guard !slot.found else { return false }
            sortedFields.insert(Field(name: name, state: state), at: slot.index)
            return true
        }
        sortedFields.append(Field(name: name, state: state))
        return true
    }

    /// Applies a change whose policy the caller has looked up (see ``Schema/check(_:)``); returns whether
    /// the state changed. A field first named by the change is added (empty when the change writes nothing,
    /// a removal of nothing).
    @discardableResult
    public mutating func apply(_ change: Change) -> Bool {
        let slot = position(of: change.field)
        if slot.found { return sortedFields[slot.index].state.apply(change) }
        var state = FieldState()
        let changed = state.apply(change)
        sortedFields.insert(Field(name: change.field, state: state), at: slot.index)
        return changed
    }

    /// Merges another replica's state of the same record: every field of either, each merged.
    public mutating func merge(_ other: RecordState) {
        guard !other.sortedFields.isEmpty else { return }
        guard !sortedFields.isEmpty else {
            self = other
            return
        }
        var merged: [Field] = []
        merged.reserveCapacity(max(sortedFields.count, other.sortedFields.count))
        var mine = 0
        var theirs = 0
        while mine < sortedFields.count || theirs < other.sortedFields.count {
            if theirs == other.sortedFields.count
                || (mine < sortedFields.count && sortedFields[mine].name < other.sortedFields[theirs].name)
            {
                merged.append(sortedFields[mine])
                mine += 1
            } else if mine == sortedFields.count || other.sortedFields[theirs].name < sortedFields[mine].name {
                merged.append(other.sortedFields[theirs])
                theirs += 1
            } else {
                var field = sortedFields[mine]
                field.state.merge(other.sortedFields[theirs].state)
                merged.append(field)
                mine += 1
                theirs += 1
            }
        }
        sortedFields = merged
    }

    /// Where `name` is in ``sortedFields``, or would go.
    private func position(of name: String) -> (found: Bool, index: Int) {
        sortedFields.sortedSlot(of: name, by: \.name)
    }

    public init(from decoder: any Decoder) throws {
        self.init(fields: try decoder.singleValueContainer().decode([String: FieldState].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }
}
