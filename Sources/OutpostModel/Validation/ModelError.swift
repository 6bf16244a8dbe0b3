import OutpostCRDT

/// A value, record or dump the care model refuses, with the field and the rule it breaks.
///
/// The message says what was wrong and how to fix it. It never contains the value of a sensitive field
/// (patient data: names, birth dates, phones, addresses, notes, measured values); it may contain codes,
/// ids and enumeration values, which identify no one. For example:
///
/// ```text
/// patient.birthDate: the value is in the future (today is 2026-11-23); enter the date of birth
/// (rule: must be a date YYYY-MM-DD from 1900-01-01, not in the future)
/// ```
public struct ModelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of error this is; new codes may be added without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A required field has no value (on create), or is being cleared.
        public static let required = Code("required")
        /// The record type has no such field.
        public static let unknownField = Code("unknownField")
        /// The record type is not one of the model's.
        public static let unknownRecordType = Code("unknownRecordType")
        /// The value is not one of the field's codes.
        public static let invalidEnum = Code("invalidEnum")
        /// The value is not a valid date or date-time, or is outside the dates the field allows.
        public static let invalidDate = Code("invalidDate")
        /// The value is outside the range the field allows (negative cents, an integer out of range).
        public static let outOfRange = Code("outOfRange")
        /// The value does not have the field's shape (phone, decimal, code, text length).
        public static let invalidFormat = Code("invalidFormat")
        /// The referenced record does not exist.
        public static let unknownReference = Code("unknownReference")
        /// The value is not a well-formed id of the expected type.
        public static let invalidID = Code("invalidID")
        /// The field cannot change once written.
        public static let immutable = Code("immutable")
        /// The value is of the wrong kind (a number where text is expected, a list for a single value).
        public static let wrongKind = Code("wrongKind")
        /// The operation does not suit the field's policy (`add` to a register, `assign` to a log).
        public static let wrongOperation = Code("wrongOperation")
        /// Two records of a dump have the same id.
        public static let duplicateID = Code("duplicateID")
        /// A dump's header is not an Outpost practice dump this version reads.
        public static let invalidDump = Code("invalidDump")
        /// A merge or unmerge of duplicate patients that makes no sense (the same patient twice, a duplicate
        /// already merged, no reason given).
        public static let invalidMerge = Code("invalidMerge")
        /// A status transition (start, hold, done, cancel) of a task that is closed
        /// (``TaskView/status(after:)``).
        public static let closedTask = Code("closedTask")

        public var description: String { name }
    }

    /// What kind of error this is.
    public var code: Code
    /// The field at fault, as `type.field` (`patient.birthDate`); the record type alone for errors about a
    /// whole record, `dump` for a dump's header.
    public var field: String
    /// The rule broken, in words: `must be a date YYYY-MM-DD from 1900-01-01, not in the future`.
    public var rule: String
    /// What was wrong and how to fix it; never a sensitive value.
    public var message: String
    /// The record at fault, when known (ids are not patient data).
    public var record: RecordRef?

    /// Creates an error.
    public init(code: Code, field: String, rule: String, message: String, record: RecordRef? = nil) {
        self.code = code
        self.field = field
        self.rule = rule
        self.message = message
        self.record = record
    }

    /// One line: `[record ]field: message (rule: rule)`.
    public var description: String {
        let prefix = record.map { "\($0.id) " } ?? ""
        return "\(prefix)\(field): \(message) (rule: \(rule))"
    }
}
