import Foundation
import OutpostCRDT

/// A practice's records as one JSON document: what the practice generator writes and an importer reads.
/// The format is described in docs/practice-format.md. For example:
///
/// ```json
/// {"format":"outpost-practice","version":1,
///  "practice":{"id":"pra_01J…","name":"Bitterroot Family Medicine"},
///  "records":[
///   {"type":"patient","id":"pat_01J…","fields":{"givenName":"Ana","conditions":["E11.9"],…}}
///  ]}
/// ```
///
/// Register fields hold one value; `set` and `log` fields an array.
public struct PracticeDump: Sendable, Hashable, Codable {
    /// The practice a dump belongs to.
    public struct Header: Sendable, Hashable, Codable {
        /// The practice's id; a `practice` record with this id is in ``PracticeDump/records``.
        public var id: String
        /// The practice's name.
        public var name: String

        /// Creates a header.
        public init(id: String, name: String) {
            self.id = id
            self.name = name
        }
    }

    /// The value of `format` in every dump.
    public static let formatName = "outpost-practice"
    /// The version this code writes and reads.
    public static let currentVersion = 1

    /// Always ``formatName``.
    public var format: String
    /// The format's version; ``currentVersion``.
    public var version: Int
    /// Which practice the records belong to.
    public var practice: Header
    /// The records, referenced records before the records that reference them.
    public var records: [DumpRecord]

    /// Creates a dump of the current format and version.
    public init(practice: Header, records: [DumpRecord]) {
        self.format = Self.formatName
        self.version = Self.currentVersion
        self.practice = practice
        self.records = records
    }

    /// Reads a dump from JSON.
    ///
    /// - Throws: ``ModelError`` `invalidDump` when the bytes are not JSON of this shape. Validate the
    ///   result with ``validate(today:)`` before using it.
    public static func decode(_ bytes: some Sequence<UInt8>) throws(ModelError) -> PracticeDump {
        do {
            return try JSONDecoder().decode(PracticeDump.self, from: Data(bytes))
        } catch let error as DecodingError {
            let path: [any CodingKey]
            switch error {
            case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context),
                .valueNotFound(_, let context):
                path = context.codingPath
            @unknown default:
                path = []
            }
            let location = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            throw ModelError(
                code: .invalidDump,
                field: "dump" + location,
                rule: "must be an outpost-practice JSON document (docs/practice-format.md)",
                message: "the JSON does not have the dump's shape at dump\(location); see docs/practice-format.md"
            )
        } catch {
            throw ModelError(
                code: .invalidDump,
                field: "dump",
                rule: "must be an outpost-practice JSON document (docs/practice-format.md)",
                message: "the file is not valid JSON; check that it is a complete practice dump"
            )
        }
    }

    /// The dump as JSON: header first, then one record per line, fields in name order. The same dump
    /// always gives the same bytes.
    public func jsonText() -> String {
        var out: [UInt8] = []
        out += #"{"format":"#.utf8
        JSONText.append(string: format, to: &out)
        out += #","version":\#(version),"practice":{"id":"#.utf8
        JSONText.append(string: practice.id, to: &out)
        out += #","name":"#.utf8
        JSONText.append(string: practice.name, to: &out)
        out += #"},"records":["#.utf8
        for (index, record) in records.enumerated() {
            out += (index == 0 ? "\n" : ",\n").utf8
            record.appendJSON(to: &out)
        }
        out += "\n]}\n".utf8
        return String(decoding: out, as: UTF8.self)
    }

    /// Checks the whole dump: the header, unique well-formed ids of known types, and every record as a new
    /// record (``CareModel/validateNew(_:fields:today:exists:record:awaitingAssignment:)``), with references resolved
    /// within the dump.
    ///
    /// - Throws: the first ``ModelError`` found, naming the field and the rule.
    public func validate(today: CalendarDate) throws(ModelError) {
        guard format == Self.formatName else {
            throw ModelError(
                code: .invalidDump,
                field: "dump.format",
                rule: "must be \"\(Self.formatName)\"",
                message: "'\(format)' is not an Outpost practice dump; check the file"
            )
        }
        guard version == Self.currentVersion else {
            throw ModelError(
                code: .invalidDump,
                field: "dump.version",
                rule: "must be \(Self.currentVersion)",
                message: "version \(version) is not one this Outpost reads; upgrade Outpost or re-export"
            )
        }
        let drafts = try drafts()
        var known: Set<RecordRef> = []
        known.reserveCapacity(drafts.count)
        for draft in drafts where !known.insert(draft.ref).inserted {
            throw ModelError(
                code: .duplicateID,
                field: draft.type.rawValue,
                rule: "every record of a dump has its own id",
                message: "two records have the id \(draft.id); remove or re-id one of them",
                record: draft.ref
            )
        }
        guard known.contains(RecordRef(type: RecordType.practice.rawValue, id: practice.id)) else {
            throw ModelError(
                code: .unknownReference,
                field: "dump.practice.id",
                rule: "must be the id of a practice record in the dump",
                message: "no practice record has the id \(practice.id); add it or fix the header"
            )
        }
        for draft in drafts {
            try CareModel.validate(draft, today: today, exists: { known.contains($0) })
        }
    }

    /// The records as drafts, checking that each names a known type and gives register fields one value
    /// and `set` and `log` fields an array.
    ///
    /// - Throws: ``ModelError`` `unknownRecordType`, `unknownField` or `wrongKind`.
    public func drafts() throws(ModelError) -> [DraftRecord] {
        var drafts: [DraftRecord] = []
        drafts.reserveCapacity(records.count)
        for record in records { drafts.append(try record.draft()) }
        return drafts
    }

    /// The changes that create every record, in record order, as one replica would make them: counters
    /// from `firstCounter`, all stamped `clock`.
    ///
    /// - Throws: ``ModelError`` from ``drafts()``; validate first.
    public func changes(
        replica: ReplicaID,
        firstCounter: UInt64 = 1,
        clock: Timestamp,
        author: String,
        site: String? = nil
    ) throws(ModelError) -> [Change] {
        var counter = firstCounter
        var changes: [Change] = []
        for draft in try drafts() {
            changes += CareModel.creationChanges(
                for: draft,
                nextID: {
                    defer { counter += 1 }
                    return ChangeID(replica: replica, counter: counter)
                },
                clock: clock,
                author: author,
                site: site
            )
        }
        return changes
    }
}

/// One record of a ``PracticeDump``.
public struct DumpRecord: Sendable, Hashable, Codable {
    /// The record type's name (`patient`).
    public var type: String
    /// The record's id.
    public var id: String
    /// Field values by name.
    public var fields: [String: DumpField]

    /// Creates a record.
    public init(type: String, id: String, fields: [String: DumpField]) {
        self.type = type
        self.id = id
        self.fields = fields
    }

    /// The record of a draft: register fields as one value, `set` and `log` fields as arrays. Fields the
    /// table does not know are kept as arrays.
    public init(_ draft: DraftRecord) {
        var fields: [String: DumpField] = [:]
        for (name, values) in draft.fields {
            let isRegister = CareModel.spec(draft.type, name)?.isRegister ?? false
            fields[name] = isRegister && values.count == 1 ? .value(values[0]) : .list(values)
        }
        self.init(type: draft.type.rawValue, id: draft.id, fields: fields)
    }

    /// The record as a draft.
    ///
    /// - Throws: ``ModelError`` `unknownRecordType`, `unknownField`, or `wrongKind` when a register holds
    ///   an array or a set or log a single value.
    public func draft() throws(ModelError) -> DraftRecord {
        guard let recordType = RecordType(rawValue: type) else {
            throw ModelError(
                code: .unknownRecordType,
                field: type,
                rule: "must be one of: " + RecordType.allCases.map(\.rawValue).joined(separator: ", "),
                message: "'\(type)' is not a record type; check the record's \"type\""
            )
        }
        // Room for every field at once: grown by doubling, the table was hashed again at each step.
        var values: [String: [Value]] = Dictionary(minimumCapacity: fields.count)
        for (name, field) in fields {
            let spec: FieldSpec
            do throws(ModelError) {
                spec = try CareModel.knownSpec(recordType, name)
            } catch {
                var error = error
                error.record = RecordRef(type: type, id: id)
                throw error
            }
            switch (field, spec.isRegister) {
            case (.value(let value), true): values[name] = [value]
            case (.list(let list), false): values[name] = list
            case (.list, true):
                var error = CareModel.fail(spec, .wrongKind, "an array was given, but the field holds one value")
                error.record = RecordRef(type: type, id: id)
                throw error
            case (.value, false):
                var error = CareModel.fail(
                    spec,
                    .wrongKind,
                    "a single value was given, but a \(spec.policy.name) field is written as an array"
                )
                error.record = RecordRef(type: type, id: id)
                throw error
            }
        }
        return DraftRecord(type: recordType, id: id, fields: values)
    }

    func appendJSON(to out: inout [UInt8]) {
        out += #"{"type":"#.utf8
        JSONText.append(string: type, to: &out)
        out += #","id":"#.utf8
        JSONText.append(string: id, to: &out)
        out += #","fields":{"#.utf8
        for (index, (name, field)) in fields.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(0x2C) }
            JSONText.append(string: name, to: &out)
            out.append(0x3A)
            switch field {
            case .value(let value): JSONText.append(value: value, to: &out)
            case .list(let values): JSONText.append(values: values, to: &out)
            }
        }
        out += "}}".utf8
    }
}

/// A field in a dump: one value (registers) or an array (sets and logs).
public enum DumpField: Sendable, Hashable, Codable {
    /// A register's value.
    case value(Value)
    /// A set's elements or a log's entries.
    case list([Value])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let list = try? container.decode([Value].self) {
            self = .list(list)
        } else {
            self = .value(try container.decode(Value.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .value(let value): try container.encode(value)
        case .list(let list): try container.encode(list)
        }
    }
}
