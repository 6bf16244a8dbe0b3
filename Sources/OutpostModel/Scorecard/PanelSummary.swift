import OutpostCRDT

/// Panel composition: active patients by subgroup and risk tier for each primary team, open care gaps by
/// subgroup, and the patients whose team or subgroup is missing (work to do).
public struct PanelSummary: Sendable, Hashable, Codable {
    /// One team's panel.
    public struct Team: Sendable, Hashable, Codable {
        /// The team's id, or `none`.
        public var team: String
        /// The team's name.
        public var label: String
        /// Active patients whose primary team it is.
        public var patients: Int
        /// By subgroup key.
        public var bySubgroup: [String: Int]
        /// By risk tier (`unknown` when unset).
        public var byRiskTier: [String: Int]
    }

    /// Teams in id order, then `none`.
    public var teams: [Team]
    /// Open care gaps: subgroup key → gap code → active patients with it open.
    public var openGapsBySubgroup: [String: [String: Int]]
    /// Active patients whose primary team is missing or retired, by id.
    public var withoutTeam: [String]
    /// Active patients whose subgroup is missing or retired, by id.
    public var withoutSubgroup: [String]
    /// Active patients awaiting assignment (``CareModel/isAwaitingAssignment(_:)``: subgroup or primary team
    /// never given, as a FHIR import leaves them), by id; also in ``withoutTeam`` or ``withoutSubgroup``.
    public var awaitingAssignment: [String]

    /// Summarizes the active (not retired) patients of `data`.
    public init(_ data: ScorecardData) {
        let teamRecords = data.records(.team).filter { !$0.isRetired }
        let teamNames = Dictionary(uniqueKeysWithValues: teamRecords.map { ($0.id, $0.string("name") ?? $0.id) })
        let subgroupKeys = Dictionary(
            uniqueKeysWithValues: data.records(.subgroup).filter { !$0.isRetired }.map {
                ($0.id, $0.string("key") ?? $0.id)
            }
        )
        var rows: [String: Team] = [:]
        var gaps: [String: [String: Int]] = [:]
        var withoutTeam: [String] = []
        var withoutSubgroup: [String] = []
        var awaitingAssignment: [String] = []
        for patient in data.records(.patient) where !patient.isRetired {
            if CareModel.isAwaitingAssignment(patient) { awaitingAssignment.append(patient.id) }
            let team = patient.string("primaryTeam").flatMap { teamNames[$0] != nil ? $0 : nil }
            let subgroup = patient.string("subgroup").flatMap { subgroupKeys[$0] }
            if team == nil { withoutTeam.append(patient.id) }
            if subgroup == nil { withoutSubgroup.append(patient.id) }
            let key = team ?? "none"
            var row =
                rows[key]
                ?? Team(
                    team: key,
                    label: team.flatMap { teamNames[$0] } ?? "(none)",
                    patients: 0,
                    bySubgroup: [:],
                    byRiskTier: [:]
                )
            row.patients += 1
            row.bySubgroup[subgroup ?? "none", default: 0] += 1
            row.byRiskTier[patient.string("riskTier") ?? "unknown", default: 0] += 1
            rows[key] = row
            for gap in patient.values("careGaps").compactMap(\.stringValue) {
                gaps[subgroup ?? "none", default: [:]][gap, default: 0] += 1
            }
        }
        teams =
            teamRecords.map {
                rows[$0.id]
                    ?? Team(
                        team: $0.id,
                        label: teamNames[$0.id] ?? $0.id,
                        patients: 0,
                        bySubgroup: [:],
                        byRiskTier: [:]
                    )
            } + (rows["none"].map { [$0] } ?? [])
        openGapsBySubgroup = gaps
        self.withoutTeam = withoutTeam
        self.withoutSubgroup = withoutSubgroup
        self.awaitingAssignment = awaitingAssignment
    }
}
