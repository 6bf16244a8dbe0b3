import ArgumentParser
import OutpostClient
import OutpostModel

/// `outpost panel`: panel composition by team, subgroup and risk tier; open care gaps; work to do.
struct PanelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "panel",
        abstract: "Panel composition: active patients by subgroup and risk tier per team, open care gaps per subgroup.",
        discussion: "Patients with no (or a retired) team or subgroup are listed at the end as work to do."
    )

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    mutating func run() throws {
        let store = try storeOptions.open()
        let summary = PanelSummary(try store.panelData())
        if output.json {
            try Terminal.json(summary)
            return
        }
        let subgroups = try store.records(.subgroup).filter { !$0.isRetired }.compactMap { $0.string("key") }
        let extraSubgroups = summary.teams.flatMap(\.bySubgroup.keys).filter { !subgroups.contains($0) }
        let subgroupColumns = subgroups + Array(Set(extraSubgroups)).sorted()
        let tiers = ["low", "moderate", "high", "very-high"]
        let tierColumns = tiers + Array(Set(summary.teams.flatMap(\.byRiskTier.keys)).subtracting(tiers)).sorted()
        Terminal.table(
            ["team", "patients"] + subgroupColumns + tierColumns.map { "risk " + $0 },
            summary.teams.map { team in
                [team.label, String(team.patients)] + subgroupColumns.map { String(team.bySubgroup[$0] ?? 0) }
                    + tierColumns.map { String(team.byRiskTier[$0] ?? 0) }
            }
        )
        print("")
        print("Open care gaps by subgroup")
        Terminal.table(
            ["subgroup", "gap", "patients"],
            summary.openGapsBySubgroup.keys.sorted().flatMap { subgroup in
                (summary.openGapsBySubgroup[subgroup] ?? [:]).sorted { $0.key < $1.key }.map {
                    [subgroup, $0.key, String($0.value)]
                }
            }
        )
        print("")
        print(
            "Work to do: \(summary.withoutTeam.count) patient(s) with no team, "
                + "\(summary.withoutSubgroup.count) with no subgroup"
        )
        for id in summary.awaitingAssignment { print("awaiting assignment: \(id)") }
        for id in summary.withoutTeam { print("no team: \(id)") }
        for id in summary.withoutSubgroup { print("no subgroup: \(id)") }
    }
}
