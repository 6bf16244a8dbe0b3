import OutpostCRDT

/// The fields of a patient that panel lists show, read from a ``MaterializedRecord``.
///
/// Holds patient data: never log it.
public struct PatientView: Sendable, Hashable {
    /// The patient's id.
    public var id: PatientID
    /// Legal given name.
    public var givenName: String?
    /// Legal family name.
    public var familyName: String?
    /// Date of birth.
    public var birthDate: CalendarDate?
    /// Administrative gender.
    public var sex: String?
    /// Phone number.
    public var phone: String?
    /// The subgroup (payment group).
    public var subgroup: SubgroupID?
    /// Risk tier.
    public var riskTier: String?
    /// The responsible team.
    public var primaryTeam: TeamID?
    /// The sites where the patient is seen, sorted.
    public var sites: [SiteID]
    /// Panel status (`active`, `inactive`, `deceased`, `entered-in-error`).
    public var status: String?
    /// ICD-10 codes of active problems, sorted.
    public var conditions: [String]
    /// Open care gaps, sorted.
    public var careGaps: [String]
    /// Fields with concurrent values awaiting review.
    public var conflictedFields: [String]
    /// Whether the patient is retired from the panel.
    public var isRetired: Bool

    /// Reads a patient; `nil` when `record` is not a patient with a well-formed id.
    public init?(_ record: MaterializedRecord) {
        guard record.type == .patient, let id = PatientID(record.id) else { return nil }
        self.id = id
        givenName = record.string("givenName")
        familyName = record.string("familyName")
        birthDate = record.string("birthDate").flatMap { CalendarDate($0) }
        sex = record.string("sex")
        phone = record.string("phone")
        subgroup = record.string("subgroup").flatMap { SubgroupID($0) }
        riskTier = record.string("riskTier")
        primaryTeam = record.string("primaryTeam").flatMap { TeamID($0) }
        sites = Set(record.values("sites").compactMap(\.stringValue)).sorted().compactMap { SiteID($0) }
        status = record.string("status")
        conditions = record.values("conditions").compactMap(\.stringValue)
        careGaps = record.values("careGaps").compactMap(\.stringValue)
        conflictedFields = record.conflictedFields
        isRetired = record.isRetired
    }

    /// "Family, Given", or the id when no name is known.
    public var displayName: String {
        switch (familyName, givenName) {
        case (let family?, let given?): "\(family), \(given)"
        case (let family?, nil): family
        case (nil, let given?): given
        case (nil, nil): id.rawValue
        }
    }
}
