import OutpostCRDT

/// A patient's team and sites: the two fields that decide which scopes hold the patient, and the one rule that
/// decides it (``isIn(sites:teams:)``).
///
/// The server's token scopes (`Scope.contains`), its scoped pulls and pushes, the client's `--team` and `--site`
/// filters and the store's projection all read a patient's team and sites here, and decide membership by this
/// rule. The server's SQL (`patient_scope`, `patient_site`) stores these same keys and selects by the same rule.
extension PatientView {
    /// The fields that place a patient in scopes: the primary team and the sites where it is seen.
    ///
    /// Ids are kept as the record holds them (not re-parsed), so that every store indexes exactly what it holds.
    public struct ScopeKeys: Sendable, Hashable {
        /// The primary team's id (the register's winner, provisional while in conflict); `nil` when unset.
        public var team: String?
        /// The ids of the sites where the patient is seen, sorted, each once.
        public var sites: [String]

        /// Creates keys; the sites are sorted and deduplicated.
        public init(team: String?, sites: some Sequence<String>) {
            self.team = team
            self.sites = Set(sites).sorted()
        }

        /// The fields of a patient's state the keys are read from (``init(state:)``).
        public static let fields: Set<String> = ["primaryTeam", "sites"]

        /// Reads a patient's state through the field table's policies (`primaryTeam` a review register,
        /// `sites` a set), without materializing its other fields (``fields``).
        public init(state: RecordState) {
            let team = CareModel.spec(.patient, "primaryTeam").map { state["primaryTeam"].resolution(under: $0.policy) }
            self.init(
                team: team?.winner?.value.stringValue,
                sites: state["sites"].elements.compactMap(\.stringValue)
            )
        }

        /// Reads a materialized patient.
        public init(_ record: MaterializedRecord) {
            self.init(team: record.string("primaryTeam"), sites: record.values("sites").compactMap(\.stringValue))
        }

        /// Whether a patient with these keys is in a scope of `sites` and `teams`: both empty is the whole
        /// practice, which holds everyone; otherwise the primary team is one of `teams`, or one of the
        /// patient's sites is one of `sites`.
        public func isIn(sites scopeSites: some Collection<String>, teams scopeTeams: some Collection<String>) -> Bool {
            if scopeSites.isEmpty && scopeTeams.isEmpty { return true }
            if let team, scopeTeams.contains(team) { return true }
            return sites.contains { scopeSites.contains($0) }
        }
    }

    /// The patient's team and sites, as scopes read them.
    public var scopeKeys: ScopeKeys {
        ScopeKeys(team: primaryTeam?.rawValue, sites: sites.map(\.rawValue))
    }
}

extension CareModel {
    /// Whether a scope holds a record, given whether it holds a patient: the practice's structure (sites,
    /// people, teams, subgroups) always; a patient when `holdsPatient` says so; a record a patient owns (a task,
    /// an observation, an encounter) when it holds the owner. A record that should have an owner but has none
    /// yet (its creation is split across pushes) is held only by the whole practice, until its owner is known.
    ///
    /// `owner` is the value of the record's ``ownerField`` (ignored for a patient and for the structure).
    public static func scopeHolds(
        type: String,
        id: String,
        owner: String?,
        holdsPatient: (String) -> Bool
    ) -> Bool {
        if type == RecordType.patient.rawValue { return holdsPatient(id) }
        guard let owner else { return ownerField[type] == nil }
        return holdsPatient(owner)
    }
}
