import OutpostCRDT

/// A field's current content, as its policy reads it.
public enum FieldValue: Sendable, Hashable {
    /// A register (`lww`, `review`, `status`): the value (`nil` when never written or cleared) and whether
    /// concurrent values await review.
    case single(Value?, isConflict: Bool)
    /// A `set`: its elements, sorted.
    case set([Value])
    /// A `log`: its entries, earliest first, with who wrote them, where and when.
    case log([Write])

    /// The register's value, or `nil` for sets, logs and empty registers.
    public var value: Value? {
        if case .single(let value, _) = self { return value }
        return nil
    }

    /// A set's elements, or a log's entries' values; a register's value as a one-element list.
    public var values: [Value] {
        switch self {
        case .single(let value, _): value.map { [$0] } ?? []
        case .set(let elements): elements
        case .log(let entries): entries.map(\.value)
        }
    }

    /// Whether a register's concurrent values await review.
    public var isConflict: Bool {
        if case .single(_, let isConflict) = self { return isConflict }
        return false
    }
}

/// A record as lists and views show it: every field of the table read through its policy.
public struct MaterializedRecord: Sendable, Hashable {
    /// The record's type.
    public var type: RecordType
    /// The record's id.
    public var id: String
    /// The fields that have ever been written, by name.
    public var fields: [String: FieldValue]

    /// Creates a materialized record from its parts.
    public init(type: RecordType, id: String, fields: [String: FieldValue]) {
        self.type = type
        self.id = id
        self.fields = fields
    }

    /// Reads `state` through the field table. Fields the table does not know are left out.
    public init(type: RecordType, id: String, state: RecordState) {
        var fields = [String: FieldValue](minimumCapacity: state.sortedFields.count)
        for spec in CareModel.fields(of: type) {
            if let value = Self.value(of: state, spec) { fields[spec.name] = value }
        }
        self.init(type: type, id: id, fields: fields)
    }

    /// What `spec`'s field of `state` reads as through its policy; `nil` when never written.
    private static func value(of state: RecordState, _ spec: FieldSpec) -> FieldValue? {
        guard let field = state.field(spec.name), !field.isEmpty else { return nil }
        switch spec.policy {
        case .lww, .review, .status:
            let resolution = field.resolution(under: spec.policy)
            return .single(resolution.winner?.value, isConflict: resolution.isConflict)
        case .set: return .set(field.elements)
        case .log: return .log(field.entries)
        }
    }

    /// The record's reference.
    public var ref: RecordRef { RecordRef(type: type.rawValue, id: id) }

    /// A register's value (`nil` when unset, and for sets and logs).
    public func value(_ field: String) -> Value? { fields[field]?.value }

    /// A register's text (`nil` when unset or not text).
    public func string(_ field: String) -> String? { fields[field]?.value?.stringValue }

    /// A set's elements or a log's entries' values (empty when never written).
    public func values(_ field: String) -> [Value] { fields[field]?.values ?? [] }

    /// The fields with concurrent values awaiting review, sorted.
    public var conflictedFields: [String] {
        fields.filter(\.value.isConflict).keys.sorted()
    }

    /// Whether the record is retired (its status is one of ``CareModel/retiredStatuses(of:)``).
    public var isRetired: Bool {
        guard let status = string("status") else { return false }
        return CareModel.retiredStatuses(of: type).contains(status)
    }

    /// Canonical JSON: keys sorted, no spaces, the same bytes for the same content.
    ///
    /// `{"conflicts":["birthDate"],"fields":{...},"id":"pat_…","type":"patient"}`: registers hold their
    /// value (the provisional winner when in conflict), sets a sorted array, logs an array of
    /// `{"author","clock","id","site","value"}` objects earliest first.
    public func canonicalJSON() -> String {
        String(decoding: canonicalJSONBytes(), as: UTF8.self)
    }

    /// ``canonicalJSON()`` as UTF-8 bytes, without making a string (an export writes them).
    public func canonicalJSONBytes() -> [UInt8] {
        Self.canonicalJSONBytes(type: type, id: id, sorted: fields.sorted { $0.key < $1.key })
    }

    /// ``canonicalJSONBytes()`` of the record `state` materializes to (the same bytes), without making the
    /// record: its fields are read in name order straight from the state, with no dictionary and no sorting (an
    /// export writes every record of a practice).
    public static func canonicalJSONBytes(type: RecordType, id: String, state: RecordState) -> [UInt8] {
        var sorted: [(key: String, value: FieldValue)] = []
        sorted.reserveCapacity(state.sortedFields.count)
        for spec in CareModel.specsSortedByName(of: type) {
            if let value = value(of: state, spec) { sorted.append((spec.name, value)) }
        }
        return canonicalJSONBytes(type: type, id: id, sorted: sorted)
    }

    /// The canonical JSON of a record from its fields, sorted by name.
    private static func canonicalJSONBytes(
        type: RecordType,
        id: String,
        sorted: [(key: String, value: FieldValue)]
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        out += #"{"conflicts":["#.utf8
        var isFirst = true
        for (name, field) in sorted where field.isConflict {
            if !isFirst { out.append(0x2C) }
            isFirst = false
            JSONText.append(string: name, to: &out)
        }
        out += #"],"fields":{"#.utf8
        for (index, (name, field)) in sorted.enumerated() {
            if index > 0 { out.append(0x2C) }
            JSONText.append(string: name, to: &out)
            out.append(0x3A)
            switch field {
            case .single(let value, _): JSONText.append(value: value ?? .null, to: &out)
            case .set(let elements): JSONText.append(values: elements, to: &out)
            case .log(let entries):
                out.append(0x5B)
                for (entryIndex, entry) in entries.enumerated() {
                    if entryIndex > 0 { out.append(0x2C) }
                    out += #"{"author":"#.utf8
                    JSONText.append(string: entry.author, to: &out)
                    out += #","clock":"#.utf8
                    JSONText.append(string: entry.clock.description, to: &out)
                    out += #","id":"#.utf8
                    JSONText.append(string: entry.id.description, to: &out)
                    out += #","site":"#.utf8
                    JSONText.append(value: entry.site.map(Value.string) ?? .null, to: &out)
                    out += #","value":"#.utf8
                    JSONText.append(value: entry.value, to: &out)
                    out.append(0x7D)
                }
                out.append(0x5D)
            }
        }
        out += #"},"id":"#.utf8
        JSONText.append(string: id, to: &out)
        out += #","type":"#.utf8
        JSONText.append(string: type.rawValue, to: &out)
        out.append(0x7D)
        return out
    }
}
