import OutpostCRDT

/// The earliest date any date field accepts.
private let earliestDate = CalendarDate(year: 1900, month: 1, day: 1) ?? CalendarDate(daysSinceEpoch: -25_567)

extension CareModel {
    /// Checks one value for `field` of `type`: its kind, codes, format and clinical range, and (through
    /// `exists`) that a referenced record exists. `.null` clears an optional register.
    ///
    /// - Parameters:
    ///   - today: the current day (UTC), for "not in the future" rules; the model never reads the clock.
    ///   - exists: whether a referenced record exists; the default accepts every well-formed id.
    /// - Throws: ``ModelError`` naming the field and the rule; sensitive values are never in the message.
    public static func validate(
        _ type: RecordType,
        field: String,
        value: Value,
        today: CalendarDate,
        exists: (RecordRef) -> Bool = { _ in true }
    ) throws(ModelError) {
        let spec = try knownSpec(type, field)
        try check(spec, value, today: today, exists: exists)
    }

    /// Checks the fields of a new record: every field known, every value valid, every required field
    /// present. Register fields hold one value; `set` and `log` fields a list (possibly empty).
    ///
    /// With `awaitingAssignment`, the placement fields (``FieldTraits/placement``: a patient's subgroup and
    /// primary team) may be left out: the record is created awaiting assignment
    /// (``CareModel/isAwaitingAssignment(_:)``), as `outpost fhir import` creates a FHIR Patient that names
    /// neither. A placement value that is given must still be valid.
    ///
    /// For example:
    ///
    /// ```swift
    /// try CareModel.validateNew(.task, fields: ["patient": [.string(patientID)], "title": ["Call"], …],
    ///                           today: CalendarDate(millis: now), exists: { store.contains($0) })
    /// ```
    ///
    /// - Throws: ``ModelError``; the first problem found, fields checked in table order.
    public static func validateNew(
        _ type: RecordType,
        fields: [String: [Value]],
        today: CalendarDate,
        exists: (RecordRef) -> Bool = { _ in true },
        record: RecordRef? = nil,
        awaitingAssignment: Bool = false
    ) throws(ModelError) {
        do throws(ModelError) {
            // The values given, by the field's place in the table: each name looked up once, none hashed again.
            let specs = CareModel.fields(of: type)
            var given = [[Value]?](repeating: nil, count: specs.count)
            var unknown: String?
            for (name, values) in fields {
                if let position = position(type, name) {
                    given[position] = values
                } else if unknown.map({ name < $0 }) ?? true {
                    // The first unknown name in sorted order is the one refused.
                    unknown = name
                }
            }
            if let unknown { _ = try knownSpec(type, unknown) }
            for (position, spec) in specs.enumerated() {
                let values = given[position] ?? []
                if spec.isRegister && values.count > 1 {
                    throw fail(
                        spec,
                        .wrongKind,
                        "\(values.count) values were given, but the field holds one; give a single value"
                    )
                }
                if spec.isRequired && values.allSatisfy(\.isNull) && !(awaitingAssignment && spec.isPlacement) {
                    throw fail(spec, .required, "it is required when a \(type) is created; give it a value")
                }
                for value in values {
                    try check(spec, value, today: today, exists: exists)
                }
            }
            if type == .observation, let code = fields["code"]?.first?.stringValue,
                let unit = fields["unit"]?.first?.stringValue
            {
                try checkReading(code: code, unit: unit, value: fields["value"]?.first?.stringValue)
            }
        } catch {
            var error = error
            error.record = record
            throw error
        }
    }

    /// Checks a new record, including that its id is a well-formed id of its type.
    ///
    /// - Throws: ``ModelError`` `invalidID`, or any error of
    ///   ``validateNew(_:fields:today:exists:record:awaitingAssignment:)``.
    public static func validate(
        _ draft: DraftRecord,
        today: CalendarDate,
        exists: (RecordRef) -> Bool = { _ in true },
        awaitingAssignment: Bool = false
    ) throws(ModelError) {
        guard draft.type.isValidID(draft.id) else {
            throw ModelError(
                code: .invalidID,
                field: draft.type.rawValue,
                rule: "an id is \(draft.type.idPrefix)_ followed by a 26-character sortable id",
                message: "'\(draft.id)' is not a \(draft.type) id; make ids with RecordID.make or RecordType.makeID",
                record: draft.ref
            )
        }
        try validateNew(
            draft.type,
            fields: draft.fields,
            today: today,
            exists: exists,
            record: draft.ref,
            awaitingAssignment: awaitingAssignment
        )
    }

    /// Checks an edit of an existing record's field: the operation suits the field's policy, the value is
    /// valid, a required field is not cleared, and an immutable field is written at most once.
    ///
    /// - Parameter current: the field's state before the edit.
    /// - Throws: ``ModelError`` `unknownField`, `wrongOperation`, `immutable`, `required` or a value error.
    public static func validateEdit(
        _ type: RecordType,
        field: String,
        operation: Operation,
        value: Value,
        current: FieldState,
        today: CalendarDate,
        exists: (RecordRef) -> Bool = { _ in true }
    ) throws(ModelError) {
        let spec = try knownSpec(type, field)
        guard spec.policy.allows(operation) else {
            let allowed = Operation.allCases.filter { spec.policy.allows($0) }.map(\.rawValue)
            throw fail(
                spec,
                .wrongOperation,
                "'\(operation.rawValue)' does not suit a \(spec.policy.name) field; use "
                    + allowed.joined(separator: " or "),
                rule: "a \(spec.policy.name) field is written with " + allowed.joined(separator: " or ")
            )
        }
        if spec.isImmutable && !current.isEmpty {
            throw fail(
                spec,
                .immutable,
                "the field already has a value and cannot change; to correct it, mark the \(type) "
                    + "entered-in-error and record a new one",
                rule: "cannot change once written"
            )
        }
        if operation == .remove {
            // A removal names a value of the field's kind, checked as an add of it would be; the record a
            // removed reference names need not exist any more.
            try check(spec, value, today: today, exists: { _ in true })
            return
        }
        if spec.isRequired && value.isNull {
            throw fail(spec, .required, "a required field cannot be cleared; give it a value")
        }
        try check(spec, value, today: today, exists: exists)
    }

    // MARK: - Values

    static func knownSpec(_ type: RecordType, _ field: String) throws(ModelError) -> FieldSpec {
        guard let spec = spec(type, field) else {
            let names = fields(of: type).map(\.name)
            throw ModelError(
                code: .unknownField,
                field: "\(type).\(field)",
                rule: "must be one of the fields of \(type): " + names.joined(separator: ", "),
                message: "a \(type) has no field '\(field)'; check the spelling against docs/model.md"
            )
        }
        return spec
    }

    static func check(
        _ spec: FieldSpec,
        _ value: Value,
        today: CalendarDate,
        exists: (RecordRef) -> Bool
    ) throws(ModelError) {
        if value.isNull {
            if spec.isRegister { return }
            throw fail(spec, .wrongKind, "a \(spec.policy.name) element cannot be null; leave it out instead")
        }
        switch spec.kind {
        case .text:
            let text = try string(spec, value)
            // A printable ASCII byte other than a space starts a character that is not whitespace: most texts are
            // settled by their first byte, without walking their characters.
            if !text.utf8.contains(where: { $0 > 0x20 && $0 < 0x7F }) && text.allSatisfy(\.isWhitespace) {
                throw fail(spec, .invalidFormat, "the text is empty; write something or leave the field out")
            }
            if text.utf8.count > FieldKind.maxTextLength {
                throw fail(spec, .invalidFormat, "the text is \(text.utf8.count) bytes long; shorten it")
            }
            if let (scalar, position) = firstControl(in: text, allowingLineBreaks: spec.policy == .log) {
                // Named by its code point and place, never quoted: the text may be patient data.
                throw fail(
                    spec,
                    .invalidFormat,
                    "the text holds a control character, U+\(String(scalar.value, radix: 16, uppercase: true)) at "
                        + "position \(position); remove it (a log entry may hold line breaks and tabs, no other "
                        + "text may)"
                )
            }
        case .code:
            let text = try string(spec, value)
            guard isCode(text) else {
                throw fail(
                    spec,
                    .invalidFormat,
                    "\(shown(spec, value)) is not a code; remove spaces and other punctuation"
                )
            }
        case .icd10:
            let text = try string(spec, value)
            guard isICD10(text) else {
                throw fail(
                    spec,
                    .invalidFormat,
                    "\(shown(spec, value)) is not an ICD-10 code; write it like E11.9 or I10"
                )
            }
        case .date:
            let text = try string(spec, value)
            guard let date = CalendarDate(text) else {
                throw fail(
                    spec,
                    .invalidDate,
                    "\(shown(spec, value)) is not a date YYYY-MM-DD; write it like 1984-03-07"
                )
            }
            try checkBounds(spec, date, today: today, value: value)
        case .dateTime:
            let text = try string(spec, value)
            guard let parsed = CalendarDate.parseDateTime(text) else {
                throw fail(
                    spec,
                    .invalidDate,
                    "\(shown(spec, value)) is not a UTC date-time; write it like 2026-11-23T10:00:00Z"
                )
            }
            try checkBounds(spec, parsed.date, today: today, value: value)
        case .enumeration(let allowed):
            let text = try string(spec, value)
            guard allowed.contains(text) else {
                throw fail(
                    spec,
                    .invalidEnum,
                    "\(shown(spec, value)) is not an allowed code; use one of: " + allowed.joined(separator: ", ")
                )
            }
        case .integer(let range):
            guard let number = value.intValue else { throw wrongKind(spec, value, expected: "a whole number") }
            guard range.contains(number) else {
                throw fail(
                    spec,
                    .outOfRange,
                    "\(shown(spec, value)) is outside \(range.lowerBound)...\(range.upperBound)"
                )
            }
        case .cents:
            guard let number = value.intValue else {
                throw wrongKind(spec, value, expected: "a whole number of cents")
            }
            guard number >= 0 else {
                throw fail(spec, .outOfRange, "\(shown(spec, value)) is negative; amounts are zero or more cents")
            }
        case .decimal:
            let text = try string(spec, value)
            guard isDecimal(text) else {
                throw fail(spec, .invalidFormat, "\(shown(spec, value)) is not a decimal number; write it like \"7.2\"")
            }
        case .bool:
            guard value.boolValue != nil else { throw wrongKind(spec, value, expected: "true or false") }
        case .phone:
            let text = try string(spec, value)
            guard isPhone(text) else {
                throw fail(
                    spec,
                    .invalidFormat,
                    "\(shown(spec, value)) is not a phone number; write 7 to 15 digits, like (406) 555-0142"
                )
            }
        case .reference(let target):
            let text = try string(spec, value)
            guard target.isValidID(text) else {
                throw fail(
                    spec,
                    .invalidID,
                    "\(shown(spec, value)) is not a \(target) id; use the id of an existing \(target)"
                )
            }
            guard exists(RecordRef(type: target.rawValue, id: text)) else {
                throw fail(
                    spec,
                    .unknownReference,
                    "no \(target) \(text) exists; create it first or use the id of an existing \(target)"
                )
            }
        }
    }

    private static func checkBounds(
        _ spec: FieldSpec,
        _ date: CalendarDate,
        today: CalendarDate,
        value: Value
    ) throws(ModelError) {
        if date < earliestDate {
            throw fail(spec, .invalidDate, "\(shown(spec, value)) is before 1900-01-01; check the year")
        }
        if spec.isNotInFuture && date > today {
            throw fail(spec, .invalidDate, "\(shown(spec, value)) is in the future (today is \(today)); check the date")
        }
    }

    /// How an error message shows a refused value: quoted, or "the value" for a sensitive field. Built only when a
    /// message is: a push checks hundreds of thousands of values and refuses few.
    private static func shown(_ spec: FieldSpec, _ value: Value) -> String {
        spec.isSensitive ? "the value" : "'\(value)'"
    }

    private static func string(_ spec: FieldSpec, _ value: Value) throws(ModelError) -> String {
        guard let text = value.stringValue else {
            throw wrongKind(spec, value, expected: spec.kind == .decimal ? "a decimal written as a string" : "a string")
        }
        return text
    }

    private static func wrongKind(_ spec: FieldSpec, _ value: Value, expected: String) -> ModelError {
        let got =
            switch value {
            case .null: "null"
            case .bool: "a boolean"
            case .int: "an integer"
            case .string: "a string"
            }
        return fail(spec, .wrongKind, "expected \(expected) but got \(got)")
    }

    static func fail(
        _ spec: FieldSpec,
        _ code: ModelError.Code,
        _ message: String,
        rule: String? = nil
    ) -> ModelError {
        let rule =
            rule ?? (code == .required ? "required when a \(spec.recordType) is created; cannot be cleared" : spec.rule)
        return ModelError(code: code, field: spec.path, rule: rule, message: message)
    }

    /// The first scalar of `text` that would act on a terminal or reorder what is shown rather than be read
    /// (``DisplayControl``; tab, line feed and carriage return allowed where `allowingLineBreaks`), with its 1-based
    /// position among the scalars. `nil` for ordinary text, which is settled by one pass over its bytes.
    static func firstControl(in text: String, allowingLineBreaks: Bool) -> (Unicode.Scalar, Int)? {
        guard DisplayControl.mayHold(text) else { return nil }
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if allowingLineBreaks && (scalar == "\t" || scalar == "\n" || scalar == "\r") { continue }
            if DisplayControl.isControl(scalar) { return (scalar, index + 1) }
        }
        return nil
    }

    /// Whether `text` has an ICD-10 code's shape (``FieldKind/icd10``).
    static func isICD10(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        func letter(_ byte: UInt8) -> Bool { byte >= 0x41 && byte <= 0x5A }
        func digit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        guard bytes.count >= 3, letter(bytes[0]), digit(bytes[1]), digit(bytes[2]) || letter(bytes[2]) else {
            return false
        }
        var rest = bytes[3...]
        if rest.first == 0x2E {
            rest = rest.dropFirst()
            guard !rest.isEmpty else { return false }
        }
        return rest.count <= 4 && rest.allSatisfy { letter($0) || digit($0) }
    }

    private static func isCode(_ text: String) -> Bool {
        let bytes = text.utf8
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x3A || byte == 0x2F
        }
    }

    private static func isDecimal(_ text: String) -> Bool {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 32 else { return false }
        if bytes[0] == UInt8(ascii: "-") { bytes.removeFirst() }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
    }

    private static func isPhone(_ text: String) -> Bool {
        var digits = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "("), UInt8(ascii: ")"),
                UInt8(ascii: " "):
                continue
            default: return false
            }
        }
        return (7...15).contains(digits)
    }
}
