import OutpostCRDT
import OutpostModel
import Testing

struct FieldTableTests {
    @Test func everyRecordTypeHasFieldsWithUniqueNamesAndARetiringStatus() throws {
        for type in RecordType.allCases {
            let fields = CareModel.fields(of: type)
            #expect(!fields.isEmpty, "\(type) has no fields")
            #expect(Set(fields.map(\.name)).count == fields.count, "\(type) declares a field twice")
            let status = try #require(CareModel.spec(type, "status"), "\(type) has no status")
            #expect(status.isRequired)
            #expect(!status.isImmutable, "\(type).status must stay writable so the record can be retired")
            for retired in CareModel.retiredStatuses(of: type) {
                #expect(status.kind.allowedValues.contains(retired), "\(type) cannot be retired as \(retired)")
            }
            for spec in fields {
                #expect(spec.recordType == type)
                #expect(CareModel.spec(type, spec.name) == spec)
                #expect(!spec.summary.isEmpty)
            }
        }
    }

    /// Every reference to another type names a type of lower creation rank, so records written in rank order name
    /// only records written before them; the ranks are the ones the docs list.
    @Test func everyReferenceNamesATypeOfLowerCreationRank() throws {
        for type in RecordType.allCases {
            let rank = try #require(CareModel.creationRank[type])
            for spec in CareModel.fields(of: type) {
                guard case .reference(let target) = spec.kind, target != type else { continue }
                #expect(try #require(CareModel.creationRank[target]) < rank, "\(type).\(spec.name) names \(target)")
            }
        }
        let byRank = Dictionary(grouping: RecordType.allCases) { CareModel.creationRank[$0] ?? -1 }
            .mapValues { Set($0.map(\.rawValue)) }
        #expect(byRank[0] == ["practice", "site", "subgroup"], "\(byRank)")
        #expect(byRank[1] == ["person"], "\(byRank)")
        #expect(byRank[2] == ["team"], "\(byRank)")
        #expect(byRank[3] == ["patient"], "\(byRank)")
    }

    @Test func schemaHasThePolicyOfEveryField() {
        for type in RecordType.allCases {
            #expect(CareModel.schema.types[type.rawValue]?.count == CareModel.fields(of: type).count)
            for spec in CareModel.fields(of: type) {
                #expect(CareModel.schema.policy(type: type.rawValue, field: spec.name) == spec.policy)
            }
        }
    }

    @Test(
        arguments: [
            // DESIGN.md section 3, typical fields of each policy.
            (RecordType.patient, "phone", "lww"), (.patient, "address", "lww"), (.task, "dueDate", "lww"),
            (.task, "assignee", "lww"), (.task, "priority", "lww"), (.task, "title", "lww"),
            (.patient, "givenName", "review"), (.patient, "familyName", "review"), (.patient, "birthDate", "review"),
            (.patient, "sex", "review"), (.patient, "mrn", "review"), (.patient, "deceasedOn", "review"),
            (.patient, "subgroup", "review"), (.patient, "primaryTeam", "review"), (.team, "leader", "review"),
            (.patient, "status", "review"), (.patient, "consentToText", "review"),
            (.patient, "consentToShare", "review"), (.task, "referralStatus", "review"),
            (.encounter, "costCents", "review"), (.subgroup, "monthlyPaymentCents", "review"),
            (.team, "members", "set"), (.patient, "conditions", "set"), (.patient, "careGaps", "set"),
            (.patient, "sites", "set"), (.patient, "allergies", "set"), (.patient, "notes", "log"),
            (.task, "notes", "log"), (.task, "status", "status"),
        ]
    )
    func policiesFollowTheDesign(type: RecordType, field: String, policy: String) throws {
        let spec = try #require(CareModel.spec(type, field))
        #expect(spec.policy.name == policy)
    }

    @Test func taskStatusEndsWorkAndEnteredInErrorOverrides() throws {
        let spec = try #require(CareModel.spec(.task, "status"))
        #expect(spec.policy == .status(CareModel.taskStatusRules))
        #expect(CareModel.taskStatusRules.terminal == ["completed", "cancelled", "failed"])
        #expect(CareModel.taskStatusRules.overriding == ["entered-in-error"])
        #expect(
            spec.kind.allowedValues == [
                "requested", "ready", "in-progress", "on-hold", "completed", "cancelled", "failed", "entered-in-error",
            ]
        )
        #expect(CareModel.spec(.task, "priority")?.kind.allowedValues == ["routine", "urgent", "asap", "stat"])
        #expect(CareModel.spec(.patient, "sex")?.kind.allowedValues == ["male", "female", "other", "unknown"])
    }

    @Test func observationAndEncounterFactsAreImmutable() {
        for type in [RecordType.observation, .encounter] {
            // The status can mark an entry in error; resolutions record how its conflicts were settled; fhirIDs
            // name the FHIR resources it was imported from.
            for spec in CareModel.fields(of: type) where !["status", "resolutions", "fhirIDs"].contains(spec.name) {
                #expect(spec.isImmutable, "\(spec.path) should be immutable")
            }
        }
        #expect(CareModel.spec(.task, "patient")?.isImmutable == true)
        #expect(CareModel.spec(.patient, "givenName")?.isImmutable == false)
    }

    @Test func everyRecordTypeEndsWithItsResolutionsLog() {
        for type in RecordType.allCases {
            let spec = CareModel.fields(of: type).last
            #expect(spec?.name == "resolutions")
            #expect(spec?.policy.name == "log")
            #expect(spec?.isSensitive == true)
        }
    }

    @Test func patientDataIsSensitive() {
        let sensitive = [
            "patient.givenName", "patient.familyName", "patient.birthDate", "patient.phone", "patient.address",
            "patient.notes", "patient.conditions", "observation.value", "task.notes", "task.title",
        ]
        for path in sensitive {
            let parts = path.split(separator: ".").map(String.init)
            let spec = RecordType(rawValue: parts[0]).flatMap { CareModel.spec($0, parts[1]) }
            #expect(spec?.isSensitive == true, "\(path) should be sensitive")
        }
        #expect(CareModel.spec(.task, "status")?.isSensitive == false)
    }

    @Test func referencesPointAtRealTypesAndObservationsUseLOINC() {
        #expect(CareModel.spec(.patient, "subgroup")?.kind == .reference(.subgroup))
        #expect(CareModel.spec(.patient, "primaryTeam")?.kind == .reference(.team))
        #expect(CareModel.spec(.task, "assignee")?.kind == .reference(.person))
        let codes = CareModel.spec(.observation, "code")?.kind.allowedValues ?? []
        #expect(codes.contains("4548-4") && codes.contains("8480-6") && codes.contains("8462-4"))
        for kind in CareModel.spec(.encounter, "kind")?.kind.allowedValues ?? [] {
            #expect(CareModel.encounterClass[kind] != nil, "encounter kind \(kind) has no FHIR class")
        }
        #expect(CareModel.ownerField["task"] == "patient")
    }

    /// Every observation code has its units, and only those are accepted on a new observation; an HbA1c in
    /// mmol/mol reads in % by the IFCC–NGSP master equation.
    @Test func everyObservationCodeHasItsUnitsAndNoOthersAreAccepted() throws {
        let codes = CareModel.spec(.observation, "code")?.kind.allowedValues ?? []
        #expect(Set(CareModel.observationUnits.keys) == Set(codes))
        func new(_ code: String, _ unit: String, _ value: String? = nil) throws {
            let value = value ?? CareModel.plausibleReadings[code]?[unit].map { String($0.lowerBound) } ?? "7"
            try CareModel.validateNew(
                .observation,
                fields: [
                    "patient": [.string(Fixture.id(.patient))], "code": [.string(code)], "value": [.string(value)],
                    "unit": [.string(unit)], "effectiveAt": ["2026-05-01T09:00:00Z"], "status": ["final"],
                ],
                today: CalendarDate(year: 2026, month: 6, day: 1)!
            )
        }
        for (code, units) in CareModel.observationUnits {
            #expect(Set(CareModel.plausibleReadings[code]?.keys.map { $0 } ?? []) == Set(units), "\(code)")
            for unit in units { try new(code, unit) }
        }
        // A slip of a digit, a sign or a unit: outside what the reading can be, refused without quoting it.
        for (code, unit, value) in [
            ("4548-4", "%", "123456789012"), ("29463-7", "kg", "-5"), ("8480-6", "mm[Hg]", "1420"),
            ("44261-6", "{score}", "28"), ("4548-4", "mmol/mol", "-1"), ("4548-4", "mmol/mol", "9.5"),
        ] {
            let slip = try #require(throws: ModelError.self) { try new(code, unit, value) }
            #expect(slip.code == .outOfRange && slip.field == "observation.value", "\(code) \(value)")
            #expect(!slip.description.contains(value), "\(slip)")
        }
        try new("29463-7", "kg", "3.2")
        let error = try #require(throws: ModelError.self) { try new("8480-6", "kPa") }
        #expect(error.code == .invalidEnum && error.field == "observation.unit")
        #expect(error.message.contains("mm[Hg]"))
        #expect(throws: ModelError.self) { try new("4548-4", "mg/dL") }
        #expect(CareModel.percentHbA1c(7.2, unit: "%") == 7.2)
        #expect(CareModel.percentHbA1c(7.2, unit: nil) == nil)
        #expect(abs((CareModel.percentHbA1c(53, unit: "mmol/mol") ?? 0) - 7.00044) < 0.0001)
        #expect(CareModel.percentHbA1c(53, unit: "mg/dL") == nil)
    }
}
