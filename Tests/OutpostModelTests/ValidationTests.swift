import OutpostCRDT
import OutpostModel
import Testing

struct ValidationTests {
    let today = Fixture.today
    let subgroup = Fixture.id(.subgroup, 2)
    let team = Fixture.id(.team, 3)
    let patient = Fixture.id(.patient, 4)

    var patientFields: [String: [Value]] {
        [
            "givenName": ["Zebulon"], "familyName": ["Quixotic"], "birthDate": ["1970-05-04"], "sex": ["male"],
            "subgroup": [.string(subgroup)], "primaryTeam": [.string(team)], "status": ["active"],
            "conditions": ["E11.9", "I10"], "notes": ["Prefers mornings."],
        ]
    }

    /// Checks the error's code, field and rule, and that `hidden` (a sensitive value) is nowhere in it.
    func check(
        _ error: ModelError?,
        _ code: ModelError.Code,
        _ field: String,
        rule: String,
        hidden: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error else {
            Issue.record("expected \(code) on \(field), but the value was accepted", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == code, sourceLocation: sourceLocation)
        #expect(error.field == field, sourceLocation: sourceLocation)
        #expect(error.rule.contains(rule), "rule was: \(error.rule)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
        #expect(error.description.contains(field), sourceLocation: sourceLocation)
        if let hidden {
            #expect(
                !error.description.contains(hidden),
                "sensitive value leaked: \(error)",
                sourceLocation: sourceLocation
            )
        }
    }

    func value(_ type: RecordType, _ field: String, _ value: Value) -> ModelError? {
        modelError { () throws(ModelError) in try CareModel.validate(type, field: field, value: value, today: today) }
    }

    @Test func aCompletePatientIsAccepted() throws {
        try CareModel.validateNew(.patient, fields: patientFields, today: today)
    }

    @Test func requiredFieldsMustBeGivenOnCreate() {
        var fields = patientFields
        fields["birthDate"] = nil
        let error = modelError { () throws(ModelError) in
            try CareModel.validateNew(.patient, fields: fields, today: today)
        }
        check(error, .required, "patient.birthDate", rule: "required")
        fields["birthDate"] = [.null]
        check(
            modelError { () throws(ModelError) in try CareModel.validateNew(.patient, fields: fields, today: today) },
            .required,
            "patient.birthDate",
            rule: "required"
        )
    }

    @Test func requiredFieldsCannotBeCleared() {
        let error = modelError { () throws(ModelError) in
            try CareModel.validateEdit(
                .patient,
                field: "familyName",
                operation: .assign,
                value: .null,
                current: FieldState(),
                today: today
            )
        }
        check(error, .required, "patient.familyName", rule: "cannot be cleared")
    }

    @Test func unknownFieldsAreRefused() {
        check(value(.patient, "favouriteColour", "blue"), .unknownField, "patient.favouriteColour", rule: "givenName")
        var fields = patientFields
        fields["shoeSize"] = [42]
        check(
            modelError { () throws(ModelError) in try CareModel.validateNew(.patient, fields: fields, today: today) },
            .unknownField,
            "patient.shoeSize",
            rule: "must be one of the fields of patient"
        )
        // Of several unknown names, the first in sorted order is the one refused, whatever the dictionary's order.
        fields["zz"] = ["x"]
        fields["aa"] = ["x"]
        check(
            modelError { () throws(ModelError) in try CareModel.validateNew(.patient, fields: fields, today: today) },
            .unknownField,
            "patient.aa",
            rule: "must be one of the fields of patient"
        )
    }

    /// Every field of every type is found by its name, and a name the table lacks (one character short or long of
    /// a field's, or one that sorts before or after every field) is not.
    @Test func everyFieldIsFoundByItsNameAndNoOther() {
        for type in RecordType.allCases {
            let fields = CareModel.fields(of: type)
            for spec in fields {
                #expect(CareModel.spec(type, spec.name)?.name == spec.name)
                #expect(
                    CareModel.spec(type, String(spec.name.dropLast())) == nil
                        || fields.contains { $0.name == String(spec.name.dropLast()) }
                )
                #expect(CareModel.spec(type, spec.name + "s") == nil || fields.contains { $0.name == spec.name + "s" })
            }
            #expect(CareModel.spec(type, "") == nil)
            #expect(CareModel.spec(type, "~") == nil)
            #expect(CareModel.specsSortedByName(of: type).map(\.name) == fields.map(\.name).sorted())
        }
    }

    @Test func enumValuesMustBeListedAndAreShownOnlyWhenNotSensitive() throws {
        let error = value(.task, "priority", "whenever")
        check(error, .invalidEnum, "task.priority", rule: "must be one of: routine, urgent, asap, stat")
        #expect(try #require(error).message.contains("'whenever'"))
        check(value(.patient, "sex", "zorblax"), .invalidEnum, "patient.sex", rule: "male", hidden: "zorblax")
        check(value(.task, "status", "done"), .invalidEnum, "task.status", rule: "completed")
    }

    @Test func datesMustBeWellFormed() {
        check(
            value(.patient, "birthDate", "04/05/1970"),
            .invalidDate,
            "patient.birthDate",
            rule: "must be a date YYYY-MM-DD",
            hidden: "04/05/1970"
        )
        check(value(.task, "dueDate", "2026-02-30"), .invalidDate, "task.dueDate", rule: "YYYY-MM-DD")
        check(
            value(.observation, "effectiveAt", "2026-01-05 10:00"),
            .invalidDate,
            "observation.effectiveAt",
            rule: "UTC date-time"
        )
    }

    @Test func birthDatesAreNotInTheFutureNorBefore1900() {
        check(
            value(.patient, "birthDate", "2027-01-01"),
            .invalidDate,
            "patient.birthDate",
            rule: "not in the future",
            hidden: "2027-01-01"
        )
        check(
            value(.patient, "birthDate", "1899-12-31"),
            .invalidDate,
            "patient.birthDate",
            rule: "from 1900-01-01",
            hidden: "1899-12-31"
        )
        #expect(value(.patient, "birthDate", .string(today.description)) == nil)
        #expect(value(.task, "dueDate", "2030-01-01") == nil, "due dates may be in the future")
        check(
            value(.encounter, "occurredAt", "2026-11-24T00:00:00Z"),
            .invalidDate,
            "encounter.occurredAt",
            rule: "not in the future"
        )
    }

    @Test func amountsAreZeroOrMoreCents() {
        check(value(.encounter, "costCents", -1), .outOfRange, "encounter.costCents", rule: "zero or more")
        #expect(value(.encounter, "costCents", 0) == nil)
        check(value(.task, "attempts", 100), .outOfRange, "task.attempts", rule: "from 0 to 99")
    }

    /// A text that would act on a terminal (an escape sequence clearing the screen, a carriage return overwriting the
    /// line, NUL, a bell) or reorder what is shown (a right-to-left override) is refused, named by its code point and
    /// place, never quoted; a log entry (notes) may hold line breaks and tabs.
    @Test func controlCharactersAreRefusedOutsideALogsLineBreaks() {
        for (text, scalar, position) in [
            ("\u{1B}[2JEve", "1B", 1), ("Esc\rOverwritten", "D", 4), ("Ann\u{0}", "0", 4), ("Bo\u{7}b", "7", 3),
            ("Ann\u{202E}lraC", "202E", 4), ("A\u{85}", "85", 2), ("Line\nbreak", "A", 5), ("\t-", "9", 1),
        ] {
            let error = value(.patient, "givenName", .string(text))
            check(error, .invalidFormat, "patient.givenName", rule: "text", hidden: text)
            #expect(
                error?.message.contains("U+\(scalar) at position \(position)") == true,
                "\(String(describing: error))"
            )
        }
        #expect(value(.patient, "notes", "Seen at home.\r\nNext:\tcall Friday.") == nil)
        check(value(.patient, "notes", "\u{1B}]0;owned\u{7}"), .invalidFormat, "patient.notes", rule: "text")
        for good in ["José Núñez", "محمد", "李小龙", "O'Brien-Smith", "Zoë\u{200D}"] {
            #expect(value(.patient, "givenName", .string(good)) == nil, "\(good)")
        }
    }

    /// A condition is an ICD-10 code by its shape; a made-up code is refused, named but not quoted (conditions are
    /// patient data).
    @Test func conditionsAreICD10Codes() {
        for good in ["E11.9", "I10", "Z79.4", "R73.03", "E119", "U07.1", "M54.50"] {
            #expect(value(.patient, "conditions", .string(good)) == nil, "\(good)")
        }
        for bad in ["ZZZ.999", "e11.9", "E1", "E11.", "E11.12345", "11.9", "E11 9", "diabetes"] {
            check(value(.patient, "conditions", .string(bad)), .invalidFormat, "patient.conditions", rule: "ICD-10")
        }
        check(
            value(.patient, "conditions", "ZZZ.999"),
            .invalidFormat,
            "patient.conditions",
            rule: "ICD-10",
            hidden: "ZZZ.999"
        )
    }

    @Test func decimalsPhonesCodesAndTextHaveTheirShape() {
        check(
            value(.observation, "value", "seven"),
            .invalidFormat,
            "observation.value",
            rule: "decimal",
            hidden: "seven"
        )
        for good in ["7.2", "-0.5", "120"] { #expect(value(.observation, "value", .string(good)) == nil) }
        for bad in ["7.", ".5", "1.2.3", "", "1e5"] {
            #expect(value(.observation, "value", .string(bad))?.code == .invalidFormat, "\(bad)")
        }
        check(
            value(.patient, "phone", "call 555-0199 x"),
            .invalidFormat,
            "patient.phone",
            rule: "7 to 15 digits",
            hidden: "555-0199"
        )
        check(value(.patient, "phone", "12345"), .invalidFormat, "patient.phone", rule: "phone", hidden: "12345")
        #expect(value(.patient, "phone", "+1 (406) 555-0142") == nil)
        check(
            value(.patient, "conditions", "E11 .9"),
            .invalidFormat,
            "patient.conditions",
            rule: "code",
            hidden: "E11 .9"
        )
        check(value(.patient, "givenName", "   "), .invalidFormat, "patient.givenName", rule: "non-empty text")
        // Whitespace beyond ASCII's is still empty text; one printable character anywhere is text.
        for blank in ["\t\n", "\u{00A0}\u{2003}", " \u{3000}\r\n"] {
            check(
                value(.patient, "givenName", .string(blank)),
                .invalidFormat,
                "patient.givenName",
                rule: "non-empty text"
            )
        }
        for text in ["a", "  x  ", "\u{00A0}é", "\u{2003}李", " -"] {
            #expect(value(.patient, "givenName", .string(text)) == nil, "\(Array(text.unicodeScalars))")
        }
        check(
            value(.patient, "notes", .string(String(repeating: "x", count: 10_001))),
            .invalidFormat,
            "patient.notes",
            rule: "at most 10000 bytes"
        )
    }

    @Test func valuesOfTheWrongKindAreRefused() {
        check(value(.patient, "birthDate", 19_700_504), .wrongKind, "patient.birthDate", rule: "date")
        check(value(.subgroup, "monthlyPaymentCents", "500"), .wrongKind, "subgroup.monthlyPaymentCents", rule: "cents")
        check(value(.patient, "consentToText", "yes"), .wrongKind, "patient.consentToText", rule: "true or false")
        check(value(.patient, "conditions", .null), .wrongKind, "patient.conditions", rule: "code")
        var fields = patientFields
        fields["familyName"] = ["Quixotic", "Zanzibar"]
        let error = modelError { () throws(ModelError) in
            try CareModel.validateNew(.patient, fields: fields, today: today)
        }
        check(error, .wrongKind, "patient.familyName", rule: "text", hidden: "Zanzibar")
    }

    @Test func referencesMustBeIdsOfTheRightTypeThatExist() {
        let knownTeam = RecordRef(type: "team", id: team)
        let exists: (RecordRef) -> Bool = { $0 == knownTeam }
        let missing = Fixture.id(.team, 99)
        let error = modelError { () throws(ModelError) in
            try CareModel.validate(
                .patient,
                field: "primaryTeam",
                value: .string(missing),
                today: today,
                exists: exists
            )
        }
        check(error, .unknownReference, "patient.primaryTeam", rule: "existing team")
        #expect(error?.message.contains(missing) == true, "ids may be named")
        check(value(.patient, "primaryTeam", .string(patient)), .invalidID, "patient.primaryTeam", rule: "tea_")
        #expect(
            modelError { () throws(ModelError) in
                try CareModel.validate(
                    .patient,
                    field: "primaryTeam",
                    value: .string(team),
                    today: today,
                    exists: exists
                )
            } == nil
        )
        var fields = patientFields
        fields["subgroup"] = [.string(Fixture.id(.subgroup, 77))]
        let newError = modelError { () throws(ModelError) in
            try CareModel.validateNew(.patient, fields: fields, today: today, exists: { $0.type != "subgroup" })
        }
        check(newError, .unknownReference, "patient.subgroup", rule: "existing subgroup")
    }

    @Test func draftsNeedAnIdOfTheirType() {
        let draft = DraftRecord(type: .patient, id: Fixture.id(.task), fields: patientFields)
        check(
            modelError { () throws(ModelError) in try CareModel.validate(draft, today: today) },
            .invalidID,
            "patient",
            rule: "pat_"
        )
    }

    @Test func immutableFieldsAreWrittenOnce() throws {
        var document = Document(schema: CareModel.schema)
        let observation = RecordRef(type: "observation", id: Fixture.id(.observation))
        let write = Change(
            id: ChangeID(replica: ReplicaID(unchecked: "a"), counter: 1),
            record: observation,
            field: "value",
            operation: .assign,
            value: "7.2",
            clock: Timestamp(millis: 1),
            author: "per_x"
        )
        try document.apply(write)
        func edit(_ field: String, _ value: Value) -> ModelError? {
            modelError { () throws(ModelError) in
                try CareModel.validateEdit(
                    .observation,
                    field: field,
                    operation: .assign,
                    value: value,
                    current: document.field(observation, field),
                    today: today
                )
            }
        }
        check(edit("value", "9.9"), .immutable, "observation.value", rule: "cannot change once written", hidden: "9.9")
        #expect(edit("status", "entered-in-error") == nil, "status stays writable to retire the record")
        #expect(edit("unit", "%") == nil, "an unwritten immutable field may be written once")
    }

    @Test func operationsMustSuitThePolicy() {
        func edit(_ field: String, _ operation: Operation, _ value: Value) -> ModelError? {
            modelError { () throws(ModelError) in
                try CareModel.validateEdit(
                    .patient,
                    field: field,
                    operation: operation,
                    value: value,
                    current: FieldState(),
                    today: today
                )
            }
        }
        check(edit("conditions", .assign, "E11.9"), .wrongOperation, "patient.conditions", rule: "add or remove")
        check(edit("notes", .add, "x"), .wrongOperation, "patient.notes", rule: "append")
        check(edit("phone", .append, "555-0100"), .wrongOperation, "patient.phone", rule: "assign")
        #expect(edit("conditions", .remove, "E11.9") == nil)
        #expect(edit("notes", .append, "Called back.") == nil)
    }

    @Test func aRemovedValueIsCheckedLikeAnAddedOne() {
        func edit(_ field: String, _ operation: Operation, _ value: Value) -> ModelError? {
            modelError { () throws(ModelError) in
                try CareModel.validateEdit(
                    .patient,
                    field: field,
                    operation: operation,
                    value: value,
                    current: FieldState(),
                    today: today,
                    exists: { _ in false }
                )
            }
        }
        for value: Value in [false, 12_345, .null] {
            let added = edit("careGaps", .add, value)
            let removed = edit("careGaps", .remove, value)
            #expect(added != nil, "adding \(value) to a set of codes is refused")
            #expect(removed?.code == added?.code, "removing \(value) is refused as adding it is")
            #expect(removed?.field == "patient.careGaps")
        }
        check(edit("conditions", .remove, "E11 9"), .invalidFormat, "patient.conditions", rule: "")
        #expect(edit("careGaps", .remove, "a1c-overdue") == nil)
    }

    @Test func sensitiveValuesNeverAppearInAnyError() {
        let secret = "Zyxwvut-1984"
        for spec in RecordType.allCases.flatMap(CareModel.fields(of:)) where spec.isSensitive {
            for candidate: Value in [.string(secret), .string("\(secret) \(secret)"), .int(19_841_984)] {
                guard let error = value(spec.recordType, spec.name, candidate) else { continue }
                #expect(!error.description.contains(secret), "\(spec.path) leaked: \(error)")
                #expect(!error.description.contains("19841984"), "\(spec.path) leaked: \(error)")
            }
        }
    }
}
