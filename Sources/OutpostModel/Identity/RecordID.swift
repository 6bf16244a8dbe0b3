import OutpostCRDT

/// A record type known at compile time, for typed ids (``RecordID``).
public protocol RecordKind: Sendable {
    /// The record type the ids name.
    static var recordType: RecordType { get }
}

/// The phantom types of typed ids: `RecordID<RecordKinds.Patient>` is a ``PatientID``.
public enum RecordKinds {
    /// Practices.
    public enum Practice: RecordKind { public static var recordType: RecordType { .practice } }
    /// Sites.
    public enum Site: RecordKind { public static var recordType: RecordType { .site } }
    /// Staff.
    public enum Person: RecordKind { public static var recordType: RecordType { .person } }
    /// Teams.
    public enum Team: RecordKind { public static var recordType: RecordType { .team } }
    /// Subgroups.
    public enum Subgroup: RecordKind { public static var recordType: RecordType { .subgroup } }
    /// Patients.
    public enum Patient: RecordKind { public static var recordType: RecordType { .patient } }
    /// Care tasks.
    public enum Task: RecordKind { public static var recordType: RecordType { .task } }
    /// Observations.
    public enum Observation: RecordKind { public static var recordType: RecordType { .observation } }
    /// Encounters.
    public enum Encounter: RecordKind { public static var recordType: RecordType { .encounter } }
}

/// The id of a practice.
public typealias PracticeID = RecordID<RecordKinds.Practice>
/// The id of a site.
public typealias SiteID = RecordID<RecordKinds.Site>
/// The id of a member of staff.
public typealias PersonID = RecordID<RecordKinds.Person>
/// The id of a team.
public typealias TeamID = RecordID<RecordKinds.Team>
/// The id of a subgroup.
public typealias SubgroupID = RecordID<RecordKinds.Subgroup>
/// The id of a patient.
public typealias PatientID = RecordID<RecordKinds.Patient>
/// The id of a care task.
public typealias TaskID = RecordID<RecordKinds.Task>
/// The id of an observation.
public typealias ObservationID = RecordID<RecordKinds.Observation>
/// The id of an encounter.
public typealias EncounterID = RecordID<RecordKinds.Encounter>

/// The id of a record of a type known at compile time: prefix, `_`, then a ``SortableID``
/// (`pat_01JD3Q8Z…`).
///
/// Ids made later sort after ids made earlier, as plain strings. For example:
///
/// ```swift
/// var generator = SeededGenerator(seed: 7)
/// let id = PatientID.make(millis: now, using: &generator)   // pat_01JD…
/// let parsed = PatientID("pat_01JD3Q…")                      // nil unless well formed and a patient's
/// ```
public struct RecordID<Kind: RecordKind>: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The id's text, for example `pat_01JD3Q8Z7M4N5P6Q7R8S9T0V1W`.
    public let rawValue: String

    /// Parses an id; `nil` unless `text` has this type's prefix followed by a well-formed sortable id.
    public init?(_ text: String) {
        guard Kind.recordType.isValidID(text) else { return nil }
        rawValue = text
    }

    /// Makes a new id for `millis` (milliseconds since 1970) with randomness from `generator`.
    public static func make(millis: UInt64, using generator: inout some RandomNumberGenerator) -> RecordID {
        RecordID(unchecked: Kind.recordType.makeID(millis: millis, using: &generator))
    }

    private init(unchecked text: String) { rawValue = text }

    /// The record type the id names.
    public var type: RecordType { Kind.recordType }

    /// The reference the CRDT uses for the record.
    public var ref: RecordRef { RecordRef(type: Kind.recordType.rawValue, id: rawValue) }

    /// The id as a field value (for reference fields).
    public var value: Value { .string(rawValue) }

    /// When the id was made, in milliseconds since 1970.
    public var millis: UInt64 {
        SortableID.millis(of: rawValue.dropFirst(Kind.recordType.idPrefix.count + 1)) ?? 0
    }

    public static func < (lhs: RecordID, rhs: RecordID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = RecordID(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "not a \(Kind.recordType) id (\(Kind.recordType.idPrefix)_ then 26 characters)"
                )
            )
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
