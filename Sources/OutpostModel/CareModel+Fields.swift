import OutpostCRDT

// The field table: every field of every record type, declared once.
//
// Columns: name, merge policy, kind, traits (required on create, immutable once written, sensitive patient
// data, not in the future), one-line summary. Policies follow DESIGN.md section 3: `review` for identity,
// subgroup, teams and leaders, statuses that retire records, consent and cost; `set` for memberships,
// conditions, allergies and care gaps; `log` for notes; `status` for task status; `lww` for the rest.
// docs/model.md prints this table; `FieldTableTests` checks the policies DESIGN.md names.

extension CareModel {
    private typealias Row = (name: String, policy: MergePolicy, kind: FieldKind, traits: FieldTraits, summary: String)

    private static let activeInactive: FieldKind = .enumeration(["active", "inactive"])

    /// Every field of every record type, in table order.
    static let table: [RecordType: [FieldSpec]] = [
        .practice: rows(
            .practice,
            [
                ("name", .lww, .text, [.required], "The practice's name."),
                ("address", .lww, .text, [], "Main postal address."),
                ("phone", .lww, .phone, [], "Main phone number."),
                ("timeZone", .lww, .text, [], "IANA time zone, for example America/Denver."),
                ("status", .review, activeInactive, [.required], "inactive retires the practice."),
            ]
        ),
        .site: rows(
            .site,
            [
                ("name", .lww, .text, [.required], "The site's name."),
                (
                    "kind", .lww, .enumeration(["clinic", "home-visit", "school", "workplace", "pharmacy", "virtual"]),
                    [.required], "What sort of place it is."
                ),
                ("address", .lww, .text, [], "Postal address (none for virtual sites)."),
                ("phone", .lww, .phone, [], "Phone number."),
                ("status", .review, activeInactive, [.required], "inactive retires the site."),
            ]
        ),
        .person: rows(
            .person,
            [
                ("name", .lww, .text, [.required], "Staff member's name as shown to colleagues."),
                (
                    "role", .lww,
                    .enumeration([
                        "physician", "np-pa", "rn", "pharmacist", "behavioral-health", "care-navigator",
                        "medical-assistant", "front-office", "social-worker", "specialist",
                    ]), [.required], "Role on care teams."
                ),
                ("email", .lww, .text, [], "Work email."),
                ("phone", .lww, .phone, [], "Work phone."),
                ("sites", .set, .reference(.site), [], "Sites where the person works."),
                ("status", .review, activeInactive, [.required], "inactive retires the person."),
            ]
        ),
        .team: rows(
            .team,
            [
                ("name", .lww, .text, [.required], "The team's name."),
                ("subgroup", .review, .reference(.subgroup), [.required], "The subgroup the team serves."),
                ("leader", .review, .reference(.person), [.required], "The team's named leader."),
                ("members", .set, .reference(.person), [], "Staff on the team (roles are the persons' roles)."),
                ("status", .review, activeInactive, [.required], "inactive retires the team."),
            ]
        ),
        .subgroup: rows(
            .subgroup,
            [
                ("key", .review, .code, [.required], "Short stable key, for example complex."),
                ("label", .lww, .text, [.required], "Name shown to people, for example Complex needs."),
                ("description", .lww, .text, [], "Who belongs in the subgroup."),
                ("monthlyPaymentCents", .review, .cents, [.required], "Bundled payment per member-month."),
                ("status", .review, activeInactive, [.required], "inactive retires the subgroup."),
            ]
        ),
        .patient: rows(
            .patient,
            [
                ("givenName", .review, .text, [.required, .sensitive], "Legal given name."),
                ("familyName", .review, .text, [.required, .sensitive], "Legal family name."),
                ("birthDate", .review, .date, [.required, .sensitive, .notInFuture], "Date of birth."),
                (
                    "sex", .review, .enumeration(["male", "female", "other", "unknown"]), [.required, .sensitive],
                    "Administrative gender (FHIR)."
                ),
                ("mrn", .review, .code, [.sensitive], "Medical record number in the practice's EHR."),
                ("deceasedOn", .review, .date, [.sensitive, .notInFuture], "Date of death."),
                ("phone", .lww, .phone, [.sensitive], "Phone number for outreach."),
                ("address", .lww, .text, [.sensitive], "Home address."),
                ("preferredLanguage", .lww, .code, [], "BCP 47 language tag, for example es."),
                (
                    "subgroup", .review, .reference(.subgroup), [.required, .placement],
                    "Subgroup; drives payment per member-month. Unset while awaiting assignment."
                ),
                (
                    "riskTier", .lww, .enumeration(["low", "moderate", "high", "very-high"]), [],
                    "Risk stratification tier."
                ),
                (
                    "primaryTeam", .review, .reference(.team), [.required, .placement],
                    "The team responsible for the patient. Unset while awaiting assignment."
                ),
                ("sites", .set, .reference(.site), [], "Sites where the patient is seen."),
                ("conditions", .set, .icd10, [.sensitive], "Active problems, ICD-10 codes such as E11.9."),
                ("allergies", .set, .text, [.sensitive], "Allergies and intolerances."),
                ("careGaps", .set, .code, [.sensitive], "Open care gaps, for example a1c-overdue."),
                ("consentToText", .review, .bool, [], "Consents to text messages."),
                ("consentToShare", .review, .bool, [], "Consents to sharing records within the network."),
                (
                    "status", .review, .enumeration(["active", "inactive", "deceased", "entered-in-error"]),
                    [.required], "Panel status; anything but active retires the patient."
                ),
                ("notes", .log, .text, [.sensitive], "Notes and addenda, append-only."),
                (
                    "mergedInto", .review, .reference(.patient), [],
                    "Set when this patient is a duplicate: the patient it was merged into ('outpost patient merge')."
                ),
                (
                    "merges", .log, .text, [.sensitive],
                    "Merges and unmerges of this patient as a duplicate: the survivor and the reason given."
                ),
            ]
        ),
        .task: rows(
            .task,
            [
                ("patient", .lww, .reference(.patient), [.required, .immutable], "The patient the task is for."),
                ("team", .lww, .reference(.team), [.required], "The team that owns the task."),
                (
                    "kind", .lww,
                    .enumeration([
                        "outreach", "screening", "gap-closure", "medication-review", "referral", "ed-follow-up",
                        "discharge-follow-up", "remote-monitoring", "behavioral-screening", "social-needs",
                        "home-visit", "school-visit", "group-visit",
                    ]), [.required], "What sort of work it is."
                ),
                ("title", .lww, .text, [.required, .sensitive], "What to do, in a line."),
                (
                    "status", .status(taskStatusRules),
                    .enumeration([
                        "requested", "ready", "in-progress", "on-hold", "completed", "cancelled", "failed",
                        "entered-in-error",
                    ]), [.required], "FHIR Task status; terminal states beat stale edits."
                ),
                (
                    "priority", .lww, .enumeration(["routine", "urgent", "asap", "stat"]), [.required],
                    "FHIR request priority."
                ),
                ("dueDate", .lww, .date, [], "When the task is due."),
                ("assignee", .lww, .reference(.person), [], "Who is doing it."),
                (
                    "channel", .lww, .enumeration(["in-person", "phone", "video", "message", "home", "school"]), [],
                    "How the patient is reached."
                ),
                ("attempts", .lww, .integer(0...99), [], "Contact attempts made so far."),
                ("notes", .log, .text, [.sensitive], "Progress notes, append-only."),
                ("referredTo", .lww, .text, [], "Referral: the service or specialist referred to."),
                ("referralSentOn", .lww, .date, [.notInFuture], "Referral: when it was sent."),
                ("appointmentOn", .lww, .date, [], "Referral: the appointment date."),
                ("resultReceivedOn", .lww, .date, [.notInFuture], "Referral: when the result came back."),
                (
                    "referralStatus", .review,
                    .enumeration(["draft", "sent", "scheduled", "seen", "result-received", "closed", "declined"]), [],
                    "Referral loop: closed when the result is back and acted on."
                ),
            ]
        ),
        .observation: rows(
            .observation,
            [
                ("patient", .lww, .reference(.patient), [.required, .immutable], "The patient measured."),
                (
                    "code", .lww,
                    .enumeration(["4548-4", "8480-6", "8462-4", "39156-5", "29463-7", "44261-6", "2089-1"]),
                    [.required, .immutable],
                    "LOINC: HbA1c, systolic, diastolic, BMI, weight, PHQ-9 total, LDL cholesterol."
                ),
                ("value", .lww, .decimal, [.required, .immutable, .sensitive], "The measured value."),
                ("unit", .lww, .text, [.required, .immutable], "UCUM unit, for example % or mm[Hg]."),
                ("effectiveAt", .lww, .dateTime, [.required, .immutable, .notInFuture], "When it was measured."),
                ("site", .lww, .reference(.site), [.immutable], "Where it was measured."),
                (
                    "status", .review, .enumeration(["final", "entered-in-error"]), [.required],
                    "FHIR Observation status; entered-in-error retires it."
                ),
            ]
        ),
        .encounter: rows(
            .encounter,
            [
                ("patient", .lww, .reference(.patient), [.required, .immutable], "The patient seen."),
                (
                    "kind", .lww,
                    .enumeration(["office", "virtual", "home", "school", "ed-visit", "admission", "specialist"]),
                    [.required, .immutable], "Setting; maps to the FHIR Encounter class (CareModel.encounterClass)."
                ),
                ("occurredAt", .lww, .dateTime, [.required, .immutable, .notInFuture], "When it started."),
                ("site", .lww, .reference(.site), [.immutable], "Where it happened, when at one of the sites."),
                ("costCents", .review, .cents, [.immutable], "Total cost; may arrive later (claims), once."),
                (
                    "status", .review, .enumeration(["finished", "cancelled", "entered-in-error"]), [.required],
                    "FHIR Encounter status; entered-in-error retires it."
                ),
            ]
        ),
    ]

    /// Every record type ends with this field: the conflict resolutions made on the record, so a
    /// resolution's reason syncs and is audited like any edit.
    private static let resolutions: Row = (
        "resolutions", .log, .text, [.sensitive],
        "Conflict resolutions: the field, the value chosen and why ('outpost conflicts resolve')."
    )

    /// Every record type ends with this field too: the FHIR resources the record was imported from
    /// (`Patient/123`), so importing the same FHIR data again finds the record instead of making another
    /// (`outpost fhir import`, docs/fhir.md).
    private static let fhirIDs: Row = (
        "fhirIDs", .set, .text, [.sensitive],
        "FHIR resources this record was imported from, ResourceType/id ('outpost fhir import')."
    )

    private static func rows(_ type: RecordType, _ rows: [Row]) -> [FieldSpec] {
        (rows + [fhirIDs, resolutions]).map { row in
            FieldSpec(
                recordType: type,
                name: row.name,
                policy: row.policy,
                kind: row.kind,
                traits: row.traits,
                summary: row.summary
            )
        }
    }
}
