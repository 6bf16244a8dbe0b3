/// A reference to one record: its type and its id.
public struct RecordRef: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The record type, for example `patient`.
    public var type: String
    /// The record id, for example `pat_01JD…`.
    public var id: String

    /// Creates a record reference.
    public init(type: String, id: String) {
        self.type = type
        self.id = id
    }

    public static func < (lhs: RecordRef, rhs: RecordRef) -> Bool {
        (lhs.type, lhs.id) < (rhs.type, rhs.id)
    }

    public var description: String { "\(type)/\(id)" }

    private enum CodingKeys: String, CodingKey {
        case type, id
    }

    /// Decodes a record reference, refusing keys it does not define.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: ["id", "type"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            type: try container.decode(String.self, forKey: .type),
            id: try container.decode(String.self, forKey: .id)
        )
    }
}

/// One edit of one field of one record: the unit that is stored, synced and merged.
///
/// A change names the values it replaces (``replaces``): the field's values as the writer saw them. A
/// change that did not see another write to the same field is *concurrent* with it, which is how Outpost
/// tells a real conflict from an ordinary update.
public struct Change: Sendable, Hashable, Codable {
    /// The change's identity: replica and per-replica counter.
    @inlinable public var id: ChangeID {
        get { box.values.id }
        set { update { $0.id = newValue } }
    }
    /// The record written.
    @inlinable public var record: RecordRef {
        get { box.values.record }
        set { update { $0.record = newValue } }
    }
    /// The field written.
    @inlinable public var field: String {
        get { box.values.field }
        set { update { $0.field = newValue } }
    }
    /// What the change does.
    @inlinable public var operation: Operation {
        get { box.values.operation }
        set { update { $0.operation = newValue } }
    }
    /// The value assigned, added, removed or appended.
    @inlinable public var value: Value {
        get { box.values.value }
        set { update { $0.value = newValue } }
    }
    /// The ids of the writes this change replaces (for `remove`: the observed tags), sorted.
    @inlinable public var replaces: [ChangeID] {
        get { box.values.replaces }
        set { update { $0.replaces = newValue } }
    }
    /// When the change was made, by hybrid logical clock.
    @inlinable public var clock: Timestamp {
        get { box.values.clock }
        set { update { $0.clock = newValue } }
    }
    /// The person who made it (a person id).
    @inlinable public var author: String {
        get { box.values.author }
        set { update { $0.author = newValue } }
    }
    /// The site where it was made (a site id), if known.
    @inlinable public var site: String? {
        get { box.values.site }
        set { update { $0.site = newValue } }
    }

    /// The fields, behind one immutable reference. Changes are copied in bulk (a push's batch, a server's plan,
    /// a record's run of changes), and a copy of nine fields, most of them reference-counted, cost about nine
    /// retains and as many releases: a tenth of a server's time storing a first push. A copy is now one retain;
    /// a setter (rare: re-stamping, tests) makes a new box.
    @usableFromInline let box: Box

    /// The stored fields of a change.
    @usableFromInline struct Values: Sendable, Hashable {
        @usableFromInline var id: ChangeID
        @usableFromInline var record: RecordRef
        @usableFromInline var field: String
        @usableFromInline var operation: Operation
        @usableFromInline var value: Value
        @usableFromInline var replaces: [ChangeID]
        @usableFromInline var clock: Timestamp
        @usableFromInline var author: String
        @usableFromInline var site: String?
    }

    /// The immutable reference holding a change's fields (`let`, so reading one needs no exclusivity check).
    @usableFromInline final class Box: Sendable {
        @usableFromInline let values: Values

        @usableFromInline init(_ values: Values) { self.values = values }
    }

    /// Replaces the box with one whose fields `body` changed.
    @usableFromInline mutating func update(_ body: (inout Values) -> Void) {
        var values = box.values
        body(&values)
        self = Change(box: Box(values))
    }

    @usableFromInline init(box: Box) { self.box = box }

    /// Creates a change; `replaces` is sorted and deduplicated.
    public init(
        id: ChangeID,
        record: RecordRef,
        field: String,
        operation: Operation,
        value: Value,
        replaces: [ChangeID] = [],
        clock: Timestamp,
        author: String,
        site: String? = nil
    ) {
        box = Box(
            Values(
                id: id,
                record: record,
                field: field,
                operation: operation,
                value: value,
                replaces: replaces.count < 2 ? replaces : Array(Set(replaces)).sorted(),
                clock: clock,
                author: author,
                site: site
            )
        )
    }

    public static func == (lhs: Change, rhs: Change) -> Bool {
        lhs.box === rhs.box || lhs.box.values == rhs.box.values
    }

    public func hash(into hasher: inout Hasher) { box.values.hash(into: &hasher) }

    /// The write this change leaves in its field, with its provenance.
    public var write: Write {
        Write(id: id, value: value, clock: clock, author: author, site: site)
    }

    private enum CodingKeys: String, CodingKey {
        case id, record, field
        case operation = "op"
        case value, replaces, clock, author, site
    }

    private static let keys: Set<String> = [
        "id", "record", "field", "op", "value", "replaces", "clock", "author", "site",
    ]

    /// Decodes a change through ``init(id:record:field:operation:value:replaces:clock:author:site:)``, so
    /// `replaces` is sorted and deduplicated whatever order the sender wrote it in.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: Self.keys)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(ChangeID.self, forKey: .id),
            record: try container.decode(RecordRef.self, forKey: .record),
            field: try container.decode(String.self, forKey: .field),
            operation: try container.decode(Operation.self, forKey: .operation),
            value: try container.decode(Value.self, forKey: .value),
            replaces: try container.decodeIfPresent([ChangeID].self, forKey: .replaces) ?? [],
            clock: try container.decode(Timestamp.self, forKey: .clock),
            author: try container.decode(String.self, forKey: .author),
            site: try container.decodeIfPresent(String.self, forKey: .site)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(record, forKey: .record)
        try container.encode(field, forKey: .field)
        try container.encode(operation, forKey: .operation)
        try container.encode(value, forKey: .value)
        try container.encode(replaces, forKey: .replaces)
        try container.encode(clock, forKey: .clock)
        try container.encode(author, forKey: .author)
        try container.encodeIfPresent(site, forKey: .site)
    }
}

/// A value held by a field, with who wrote it, where and when.
public struct Write: Sendable, Hashable, Codable {
    /// The change that wrote it.
    public var id: ChangeID
    /// The value.
    public var value: Value
    /// When it was written.
    public var clock: Timestamp
    /// Who wrote it (a person id).
    public var author: String
    /// Where it was written (a site id), if known.
    public var site: String?

    /// Creates a write.
    public init(id: ChangeID, value: Value, clock: Timestamp, author: String, site: String?) {
        self.id = id
        self.value = value
        self.clock = clock
        self.author = author
        self.site = site
    }

    /// Whether this write is later than `other` in the total order used to pick winners: by clock, then
    /// by change id.
    public func isLater(than other: Write) -> Bool {
        if clock != other.clock { return clock > other.clock }
        return id > other.id
    }
}
