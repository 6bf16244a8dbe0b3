/// What a field's values look like; every value written to the field is checked against it.
public enum FieldKind: Sendable, Hashable {
    /// Free text: a non-empty string of at most ``FieldKind/maxTextLength`` UTF-8 bytes.
    case text
    /// A short code with no spaces (letters, digits, `-`, `.`, `_`, `:`, `/`), 1 to 64 bytes: ICD-10
    /// `E11.9`, a language `es`, a care gap `a1c-overdue`, a subgroup key `complex`.
    case code
    /// An ICD-10 code: a letter, a digit, a digit or letter, then optionally a dot and up to four letters or
    /// digits (`E11.9`, `I10`, `Z79.4`; `E119` as some systems write it). Uppercase.
    case icd10
    /// A calendar date, `YYYY-MM-DD`, from 1900-01-01.
    case date
    /// An instant, ISO 8601 in UTC: `2026-11-23T10:00:00Z` (fractional seconds allowed).
    case dateTime
    /// One of a fixed list of codes (FHIR's where FHIR has a code set).
    case enumeration([String])
    /// A whole number in a range.
    case integer(ClosedRange<Int64>)
    /// An amount of money in integer cents, zero or more.
    case cents
    /// A decimal number written as a string, `7.2` or `-0.5`: measurements keep their written precision.
    case decimal
    /// `true` or `false`.
    case bool
    /// A telephone number, loosely: digits with `+ - . ( )` and spaces, 7 to 15 digits.
    case phone
    /// The id of a record of the given type, which must exist.
    case reference(RecordType)

    /// The longest text accepted, in UTF-8 bytes.
    public static let maxTextLength = 10_000

    /// A short name of the kind for the field table: `date`, `enum`, `ref(patient)`.
    public var name: String {
        switch self {
        case .text: "text"
        case .code: "code"
        case .icd10: "icd10"
        case .date: "date"
        case .dateTime: "dateTime"
        case .enumeration: "enum"
        case .integer(let range): "integer(\(range.lowerBound)...\(range.upperBound))"
        case .cents: "cents"
        case .decimal: "decimal"
        case .bool: "bool"
        case .phone: "phone"
        case .reference(let type): "ref(\(type))"
        }
    }

    /// The values of an enumeration; empty for other kinds.
    public var allowedValues: [String] {
        if case .enumeration(let values) = self { return values }
        return []
    }
}

/// Properties of a field beyond its policy and kind, as written in the field table.
public struct FieldTraits: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8

    /// Creates traits from their bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The field must have a value when the record is created.
    public static let required = FieldTraits(rawValue: 1 << 0)
    /// The field cannot change once it has a value (observations and encounters are facts).
    public static let immutable = FieldTraits(rawValue: 1 << 1)
    /// Patient data: its values never appear in error messages, logs or metric labels.
    public static let sensitive = FieldTraits(rawValue: 1 << 2)
    /// A date or date-time that cannot be later than today (a birth date, a measurement's time).
    public static let notInFuture = FieldTraits(rawValue: 1 << 3)
    /// A placement field (a patient's subgroup and primary team): required, except that a record created
    /// awaiting assignment (``CareModel/validateNew(_:fields:today:exists:record:awaitingAssignment:)``) may
    /// leave it out until someone assigns it; once given, it cannot be cleared like any required field.
    public static let placement = FieldTraits(rawValue: 1 << 4)
}
