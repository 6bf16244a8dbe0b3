public import OutpostModel

/// The code systems, extensions and mappings between FHIR R4 and the care model (docs/fhir.md).
public enum FHIRVocabulary {
    /// Outpost's own URIs: under `.invalid`, a top-level domain reserved never to resolve, so nothing claims
    /// to be published there.
    public static let base = "http://outpost.invalid/fhir"
    /// The extension carrying `field` of an Outpost `type` that FHIR has no element for.
    public static func extensionURL(_ type: RecordType, _ field: String) -> String {
        "\(base)/StructureDefinition/\(type.rawValue)-\(field)"
    }
    /// The identifier system of the FHIR resources a record was imported from (its `fhirIDs`).
    public static let sourceIDSystem = "\(base)/sid/source-id"
    /// The code system of an Outpost enumeration field (`task-kind`, `site-kind`, `person-role`,
    /// `encounter-kind`, `subgroup-key`).
    public static func codeSystem(_ name: String) -> String { "\(base)/CodeSystem/\(name)" }

    public static let loinc = "http://loinc.org"
    public static let ucum = "http://unitsofmeasure.org"
    public static let icd10 = ["http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"]
    public static let actCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    public static let identifierType = "http://terminology.hl7.org/CodeSystem/v2-0203"
    public static let bcp47 = "urn:ietf:bcp:47"
    public static let observationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
    public static let conditionClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    public static let allergyClinical = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    public static let practitionerRole = "http://terminology.hl7.org/CodeSystem/practitioner-role"

    /// The FHIR resource type of each record type.
    public static let resourceType: [RecordType: String] = [
        .practice: "Organization", .site: "Location", .person: "Practitioner", .team: "CareTeam",
        .subgroup: "Group", .patient: "Patient", .task: "Task", .observation: "Observation",
        .encounter: "Encounter",
    ]

    /// Resource types `outpost fhir import` reads.
    public static let importedTypes: Set<String> = [
        "Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "CareTeam", "Group", "Task",
        "Observation", "Encounter", "Condition", "AllergyIntolerance",
    ]

    /// Resource types `outpost fhir export` writes, in the order of its manifest.
    public static let exportedTypes = [
        "Organization", "Location", "Practitioner", "PractitionerRole", "Group", "CareTeam", "Patient", "Condition",
        "AllergyIntolerance", "Encounter", "Observation", "Task",
    ]

    /// The FHIR id of an Outpost id: `pat_01JD…` is `pat-01JD…` (FHIR ids allow no `_`).
    public static func fhirID(_ outpostID: String) -> String {
        outpostID.replacingFirst("_", with: "-")
    }

    /// The Outpost id a FHIR id stands for, when it is one written by ``fhirID(_:)`` for `type`.
    public static func outpostID(_ fhirID: String, _ type: RecordType) -> String? {
        let id = fhirID.replacingFirst("-", with: "_")
        return type.isValidID(id) ? id : nil
    }

    /// Encounter class (v3 ActCode) to encounter kind, for resources with no Outpost kind coding.
    public static let kindOfClass: [String: String] = [
        "AMB": "office", "VR": "virtual", "HH": "home", "FLD": "school", "EMER": "ed-visit", "IMP": "admission",
        "ACUTE": "admission", "NONAC": "admission", "SS": "admission",
    ]

    /// HL7 practitioner-role codes to Outpost roles.
    public static let roleOfPractitionerRole: [String: String] = [
        "doctor": "physician", "nurse": "rn", "pharmacist": "pharmacist",
    ]

    /// The display of each modelled LOINC code.
    public static let loincDisplay: [String: String] = [
        "4548-4": "Hemoglobin A1c/Hemoglobin.total in Blood",
        "8480-6": "Systolic blood pressure",
        "8462-4": "Diastolic blood pressure",
        "39156-5": "Body mass index (BMI) [Ratio]",
        "29463-7": "Body weight",
        "44261-6": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        "2089-1": "Cholesterol in LDL [Mass/volume] in Serum or Plasma",
    ]
    /// The LOINC code of a blood-pressure panel, whose components are systolic and diastolic.
    public static let bloodPressurePanel = ["85354-9", "55284-4", "35094-2"]
}

extension String {
    func replacingFirst(_ target: Character, with replacement: Character) -> String {
        guard let index = firstIndex(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(index...index, with: String(replacement))
        return copy
    }
}
