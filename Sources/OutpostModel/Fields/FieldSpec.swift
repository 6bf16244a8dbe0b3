import OutpostCRDT

/// One row of the field table: everything the model knows about one field of one record type.
public struct FieldSpec: Sendable, Hashable {
    /// The record type the field belongs to.
    public var recordType: RecordType { storage.parts.recordType }
    /// The field's name, for example `birthDate`.
    public var name: String { storage.parts.name }
    /// How concurrent writes merge (DESIGN.md section 3).
    public var policy: MergePolicy { storage.parts.policy }
    /// What its values look like.
    public var kind: FieldKind { storage.parts.kind }
    /// Required, immutable, sensitive, not in the future.
    public var traits: FieldTraits { storage.parts.traits }
    /// One line saying what the field holds.
    public var summary: String { storage.parts.summary }

    /// The spec's parts, in one immutable object: a spec is copied out of a table on every look-up (every change
    /// a server judges, every value a projection reads), and a copy is then one retain, not one per string, list
    /// and rule it holds. Equality and hashing are the parts'.
    private let storage: Storage

    private struct Parts: Sendable, Hashable {
        let recordType: RecordType
        let name: String
        let policy: MergePolicy
        let kind: FieldKind
        let traits: FieldTraits
        let summary: String
    }

    private final class Storage: Sendable {
        let parts: Parts
        /// `policy.isRegister`, read for every value a view or the projection reads.
        let isRegister: Bool

        init(_ parts: Parts) {
            self.parts = parts
            isRegister = parts.policy.isRegister
        }
    }

    /// Creates a field spec.
    public init(
        recordType: RecordType,
        name: String,
        policy: MergePolicy,
        kind: FieldKind,
        traits: FieldTraits,
        summary: String
    ) {
        storage = Storage(
            Parts(recordType: recordType, name: name, policy: policy, kind: kind, traits: traits, summary: summary)
        )
    }

    public static func == (lhs: FieldSpec, rhs: FieldSpec) -> Bool {
        lhs.storage === rhs.storage || lhs.storage.parts == rhs.storage.parts
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.parts)
    }

    /// `type.field`, as errors name it: `patient.birthDate`.
    public var path: String { "\(recordType).\(name)" }

    /// Whether the field must have a value when the record is created.
    public var isRequired: Bool { traits.contains(.required) }
    /// Whether the field may be left out of a record created awaiting assignment (``FieldTraits/placement``).
    public var isPlacement: Bool { traits.contains(.placement) }
    /// Whether the field cannot change once it has a value.
    public var isImmutable: Bool { traits.contains(.immutable) }
    /// Whether the field holds patient data, never to be shown in errors or logs.
    public var isSensitive: Bool { traits.contains(.sensitive) }
    /// Whether a date or date-time in the field cannot be later than today.
    public var isNotInFuture: Bool { traits.contains(.notInFuture) }
    /// Whether the field holds one value (`lww`, `review`, `status`) rather than a set or a log.
    public var isRegister: Bool { storage.isRegister }

    /// The rule a value of this field must follow, in words: `must be a date YYYY-MM-DD from 1900-01-01,
    /// not in the future`.
    public var rule: String {
        let future = isNotInFuture ? ", not in the future" : ""
        switch kind {
        case .text: return "must be non-empty text of at most \(FieldKind.maxTextLength) bytes"
        case .code: return "must be a code of 1 to 64 letters, digits or - . _ : / (no spaces)"
        case .icd10:
            return
                "must be an ICD-10 code: a letter, a digit, a digit or letter, then optionally a dot and up to four letters or digits, uppercase (E11.9, I10)"
        case .date: return "must be a date YYYY-MM-DD from 1900-01-01\(future)"
        case .dateTime: return "must be a UTC date-time YYYY-MM-DDTHH:MM:SSZ from 1900-01-01\(future)"
        case .enumeration(let values): return "must be one of: " + values.joined(separator: ", ")
        case .integer(let range): return "must be a whole number from \(range.lowerBound) to \(range.upperBound)"
        case .cents: return "must be a whole number of cents, zero or more"
        case .decimal: return "must be a decimal number written as a string, like \"7.2\""
        case .bool: return "must be true or false"
        case .phone: return "must be a phone number: 7 to 15 digits, optionally with + - . ( ) and spaces"
        case .reference(let type): return "must be the id of an existing \(type) (\(type.idPrefix)_…)"
        }
    }
}
