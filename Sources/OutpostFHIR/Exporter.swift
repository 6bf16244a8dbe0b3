import OutpostCRDT
public import OutpostModel

/// Writes Outpost records as FHIR R4 resources (docs/fhir.md has the tables). Pure.
public enum FHIRExporter {
    /// The fields each record type writes to FHIR elements of its own; the others (but `fhirIDs`, written as
    /// identifiers, and `resolutions`, not exported) go in Outpost extensions.
    static let native: [RecordType: Set<String>] = [
        .practice: ["name", "address", "phone", "status"],
        .site: ["name", "kind", "address", "phone", "status"],
        .person: ["name", "email", "phone", "status", "role", "sites"],
        .team: ["name", "subgroup", "leader", "members", "status"],
        .subgroup: ["key", "label", "status"],
        .patient: [
            "givenName", "familyName", "birthDate", "sex", "mrn", "deceasedOn", "phone", "address", "preferredLanguage",
            "conditions", "allergies",
        ],
        .task: ["patient", "team", "kind", "title", "status", "priority", "dueDate", "notes"],
        .observation: ["patient", "code", "value", "unit", "effectiveAt", "status"],
        .encounter: ["patient", "kind", "occurredAt", "site", "status"],
    ]

    /// The FHIR resources of one record, with the time of its latest write (`meta.lastUpdated`): one, or for
    /// a person a Practitioner and a PractitionerRole, for a patient the Patient and a Condition per
    /// condition and an AllergyIntolerance per allergy.
    public static func resources(of record: MaterializedRecord, lastUpdated: UInt64?) -> [(type: String, json: JSON)] {
        var out: [(String, JSON)] = []
        let type = FHIRVocabulary.resourceType[record.type] ?? ""
        var members: [(String, JSON)] = [
            ("resourceType", .string(type)), ("id", .string(FHIRVocabulary.fhirID(record.id))),
        ]
        if let lastUpdated {
            members.append(("meta", .object([("lastUpdated", .string(CalendarDate.dateTime(millis: lastUpdated)))])))
        }
        let extensions = Self.extensions(of: record)
        if !extensions.isEmpty { members.append(("extension", .array(extensions))) }
        var identifiers: [JSON] = record.values("fhirIDs").compactMap(\.stringValue).map {
            .object([("system", .string(FHIRVocabulary.sourceIDSystem)), ("value", .string($0))])
        }
        func text(_ field: String) -> String? { record.string(field) }
        func put(_ name: String, _ value: JSON?) { if let value { members.append((name, value)) } }
        func string(_ value: String?) -> JSON? { value.map { .string($0) } }
        func telecom(_ fields: [(String, String)]) -> JSON? {
            let items: [JSON] = fields.compactMap { system, field in
                text(field).map { .object([("system", .string(system)), ("value", .string($0))]) }
            }
            return items.isEmpty ? nil : .array(items)
        }
        func address() -> JSON? { text("address").map { .array([.object([("text", .string($0))])]) } }
        func active() -> JSON { .bool(text("status") == "active") }
        func ref(_ type: RecordType, _ id: String?) -> JSON? {
            guard let id, let resourceType = FHIRVocabulary.resourceType[type] else { return nil }
            return .object([("reference", .string("\(resourceType)/\(FHIRVocabulary.fhirID(id))"))])
        }
        func concept(_ system: String, _ code: String, _ display: String? = nil) -> JSON {
            var coding: [(String, JSON)] = [("system", .string(system)), ("code", .string(code))]
            if let display { coding.append(("display", .string(display))) }
            return .object([("coding", .array([.object(coding)]))])
        }
        let patientRef = ref(.patient, text("patient"))

        switch record.type {
        case .practice:
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("active", active())
            put("name", string(text("name")))
            put("telecom", telecom([("phone", "phone")]))
            put("address", address())
        case .site:
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("status", .string(text("status") == "active" ? "active" : "inactive"))
            put("name", string(text("name")))
            put("type", text("kind").map { .array([concept(FHIRVocabulary.codeSystem("site-kind"), $0)]) })
            put("telecom", telecom([("phone", "phone")]))
            put("address", text("address").map { .object([("text", .string($0))]) })
        case .person:
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("active", active())
            put("name", text("name").map { .array([.object([("text", .string($0))])]) })
            put("telecom", telecom([("phone", "phone"), ("email", "email")]))
            var role: [(String, JSON)] = [
                ("resourceType", .string("PractitionerRole")),
                ("id", .string(FHIRVocabulary.fhirID(record.id) + "-role")),
                ("active", active()), ("practitioner", ref(.person, record.id) ?? .null),
            ]
            if let code = text("role") {
                role.append(("code", .array([concept(FHIRVocabulary.codeSystem("person-role"), code)])))
            }
            let sites = record.values("sites").compactMap { ref(.site, $0.stringValue) }
            if !sites.isEmpty { role.append(("location", .array(sites))) }
            out.append(("PractitionerRole", .object(role)))
        case .team:
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("status", .string(text("status") == "active" ? "active" : "inactive"))
            put("name", string(text("name")))
            put("subject", ref(.subgroup, text("subgroup")))
            var participants: [JSON] = []
            if let leader = ref(.person, text("leader")) {
                participants.append(
                    .object([
                        ("role", .array([concept(FHIRVocabulary.codeSystem("team-role"), "leader")])),
                        ("member", leader),
                    ])
                )
            }
            for member in record.values("members") {
                if let member = ref(.person, member.stringValue) { participants.append(.object([("member", member)])) }
            }
            put("participant", participants.isEmpty ? nil : .array(participants))
        case .subgroup:
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("active", active())
            put("type", .string("person"))
            put("actual", .bool(true))
            put("code", text("key").map { concept(FHIRVocabulary.codeSystem("subgroup-key"), $0) })
            put("name", string(text("label")))
        case .patient:
            if let mrn = text("mrn") {
                identifiers.insert(
                    .object([
                        ("use", .string("usual")), ("type", concept(FHIRVocabulary.identifierType, "MR")),
                        ("value", .string(mrn)),
                    ]),
                    at: 0
                )
            }
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            // A merged duplicate is no longer an active record: FHIR says so with `active` false and a link to the
            // patient that replaced it (its status, kept as it was, is in the status extension).
            let survivor = ref(.patient, text("mergedInto"))
            put("active", survivor == nil ? active() : .bool(false))
            put("link", survivor.map { .array([.object([("other", $0), ("type", .string("replaced-by"))])]) })
            var name: [(String, JSON)] = [("use", .string("official"))]
            if let family = text("familyName") { name.append(("family", .string(family))) }
            if let given = text("givenName") { name.append(("given", .array([.string(given)]))) }
            put("name", .array([.object(name)]))
            put("telecom", telecom([("phone", "phone")]))
            put("gender", string(text("sex")))
            put("birthDate", string(text("birthDate")))
            put("deceasedDateTime", string(text("deceasedOn")))
            put("address", address())
            put(
                "communication",
                text("preferredLanguage").map {
                    .array([.object([("language", concept(FHIRVocabulary.bcp47, $0))])])
                }
            )
            let subject = ref(.patient, record.id) ?? .null
            let meta = members.first { $0.0 == "meta" }
            for (field, resourceType, subjectName) in [
                ("conditions", "Condition", "subject"), ("allergies", "AllergyIntolerance", "patient"),
            ] {
                for value in record.values(field) {
                    guard let code = value.stringValue else { continue }
                    var resource: [(String, JSON)] = [
                        ("resourceType", .string(resourceType)),
                        ("id", .string(FHIRVocabulary.fhirID(record.id) + "-" + derivedID(code))),
                    ]
                    if let meta { resource.append(meta) }
                    if field == "conditions" {
                        resource.append(("clinicalStatus", concept(FHIRVocabulary.conditionClinical, "active")))
                        resource.append(("code", concept(FHIRVocabulary.icd10[0], code)))
                    } else {
                        resource.append(("clinicalStatus", concept(FHIRVocabulary.allergyClinical, "active")))
                        resource.append(("code", .object([("text", .string(code))])))
                    }
                    resource.append((subjectName, subject))
                    out.append((resourceType, .object(resource)))
                }
            }
        case .task:
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("status", string(text("status")))
            put("intent", .string("order"))
            put("priority", string(text("priority")))
            put("code", text("kind").map { concept(FHIRVocabulary.codeSystem("task-kind"), $0) })
            put("description", string(text("title")))
            put("for", patientRef)
            put("owner", ref(.team, text("team")))
            put(
                "restriction",
                text("dueDate").map { .object([("period", .object([("end", .string($0))]))]) }
            )
            let notes: [JSON] = record.values("notes").compactMap(\.stringValue).map {
                .object([("text", .string($0))])
            }
            put("note", notes.isEmpty ? nil : .array(notes))
        case .observation:
            let code = text("code") ?? ""
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("status", string(text("status")))
            let category: String
            switch code {
            case "4548-4", "2089-1": category = "laboratory"
            case "44261-6": category = "survey"
            default: category = "vital-signs"
            }
            put("category", .array([concept(FHIRVocabulary.observationCategory, category)]))
            put("code", concept(FHIRVocabulary.loinc, code, FHIRVocabulary.loincDisplay[code]))
            put("subject", patientRef)
            put("effectiveDateTime", string(text("effectiveAt")))
            var quantity: [(String, JSON)] = []
            if let value = text("value") { quantity.append(("value", .number(decimalJSON(value)))) }
            if let unit = text("unit") {
                quantity += [
                    ("unit", .string(unit)), ("system", .string(FHIRVocabulary.ucum)), ("code", .string(unit)),
                ]
            }
            put("valueQuantity", .object(quantity))
        case .encounter:
            let kind = text("kind") ?? ""
            put("identifier", identifiers.isEmpty ? nil : .array(identifiers))
            put("status", string(text("status")))
            put(
                "class",
                .object([
                    ("system", .string(FHIRVocabulary.actCode)),
                    ("code", .string(CareModel.encounterClass[kind] ?? "AMB")),
                ])
            )
            put("type", .array([concept(FHIRVocabulary.codeSystem("encounter-kind"), kind)]))
            put("subject", patientRef)
            put("period", text("occurredAt").map { .object([("start", .string($0))]) })
            put("location", ref(.site, text("site")).map { .array([.object([("location", $0)])]) })
        }
        out.insert((type, .object(members)), at: 0)
        return out
    }

    /// A FHIR decimal's JSON text for an Outpost decimal (`.5` is written `0.5`).
    static func decimalJSON(_ text: String) -> String {
        var text = text
        if text.hasPrefix(".") { text = "0" + text }
        if text.hasPrefix("-.") { text = "-0" + text.dropFirst() }
        return text
    }

    /// A short FHIR-id-safe name for a set element: the code itself when it is one, else a hash of it.
    static func derivedID(_ value: String) -> String {
        let safe = value.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D
                || $0 == 0x2E
        }
        if safe && value.utf8.count <= 24 { return value }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in value.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "h" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Outpost extensions for the record's fields FHIR has no element for.
    static func extensions(of record: MaterializedRecord) -> [JSON] {
        var out: [JSON] = []
        let native = native[record.type] ?? []
        for spec in CareModel.fields(of: record.type)
        where !native.contains(spec.name) && spec.name != "fhirIDs" && spec.name != "resolutions" {
            for value in record.values(spec.name) {
                guard let json = extensionValue(value, spec) else { continue }
                out.append(
                    .object([("url", .string(FHIRVocabulary.extensionURL(record.type, spec.name))), json])
                )
            }
        }
        return out
    }

    static func extensionValue(_ value: Value, _ spec: FieldSpec) -> (String, JSON)? {
        switch (spec.kind, value) {
        case (.reference(let type), .string(let id)):
            guard let resourceType = FHIRVocabulary.resourceType[type] else { return nil }
            return ("valueReference", .object([("reference", .string("\(resourceType)/\(FHIRVocabulary.fhirID(id))"))]))
        case (.integer, .int(let number)), (.cents, .int(let number)): return ("valueInteger", .number(String(number)))
        case (.bool, .bool(let flag)): return ("valueBoolean", .bool(flag))
        case (.decimal, .string(let text)): return ("valueDecimal", .number(decimalJSON(text)))
        case (.date, .string(let text)): return ("valueDate", .string(text))
        case (.dateTime, .string(let text)): return ("valueDateTime", .string(text))
        case (.code, .string(let text)), (.enumeration, .string(let text)): return ("valueCode", .string(text))
        case (_, .string(let text)): return ("valueString", .string(text))
        default: return nil
        }
    }

    /// A Bulk Data `$export` manifest for the files written (`type`, file name relative to the manifest,
    /// count), at `transactionTime`.
    public static func manifest(
        transactionTime: UInt64,
        request: String,
        output: [(type: String, file: String, count: Int)]
    ) -> JSON {
        .object([
            ("transactionTime", .string(CalendarDate.dateTime(millis: transactionTime))),
            ("request", .string(request)),
            ("requiresAccessToken", .bool(false)),
            (
                "output",
                .array(
                    output.map {
                        .object([
                            ("type", .string($0.type)), ("url", .string($0.file)), ("count", .number(String($0.count))),
                        ])
                    }
                )
            ),
            ("error", .array([])),
        ])
    }
}
