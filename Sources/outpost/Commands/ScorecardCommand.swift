import ArgumentParser
import Foundation
import OutpostClient
import OutpostModel

/// `outpost scorecard`: outcomes, costs and bundled payments by subgroup, team or site.
struct ScorecardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scorecard",
        abstract: "Value scorecard: member-months, outcomes, utilization, access, cost and payment per group.",
        discussion: """
            Give the period with --period (2026-Q3, 2026-07, 2026 or 2026-07-01..2026-09-30) or with --from and \
            --to; or compare two periods with --baseline D1..D2 --compare D3..D4 (the 90-day readout). \
            Every measure's numerator, denominator and source fields are in docs/scorecard.md.
            """
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("The period: 2026-Q3, 2026-07, 2026 or D1..D2.", valueName: "period"))
    var period: String?
    @Option(help: ArgumentHelp("First day of the period.", valueName: "YYYY-MM-DD")) var from: String?
    @Option(help: ArgumentHelp("Last day of the period (included).", valueName: "YYYY-MM-DD")) var to: String?
    @Option(help: ArgumentHelp("Group patients by subgroup, team or site.", valueName: "subgroup|team|site"))
    var by = "subgroup"
    @Option(help: ArgumentHelp("Baseline period for a readout.", valueName: "D1..D2")) var baseline: String?
    @Option(help: ArgumentHelp("Period compared with the baseline.", valueName: "D3..D4")) var compare: String?
    @Option(help: ArgumentHelp("The day measured up to (default: today, UTC).", valueName: "YYYY-MM-DD"))
    var today: String?
    @Flag(help: "Print JSON (stable, keys sorted) instead of a table.") var json = false
    @Flag(help: "Print CSV (one row per group; with a readout, one row per measure).") var csv = false

    mutating func run() throws {
        guard let grouping = Scorecard.Grouping(rawValue: by) else {
            throw CLIError.input("--by: '\(by)' is not a grouping; use subgroup, team or site")
        }
        if json && csv { throw CLIError.input("give --json or --csv, not both") }
        if baseline != nil || compare != nil {
            guard let baselineText = baseline, let compareText = compare else {
                throw CLIError.input("a readout needs both --baseline D1..D2 and --compare D3..D4")
            }
            guard period == nil, from == nil, to == nil else {
                throw CLIError.input("--baseline/--compare replace --period, --from and --to; give one or the other")
            }
            let day = try Self.day(today)
            let before = try Self.measured(try Self.parse(baselineText, option: "--baseline"), "--baseline", upTo: day)
            let after = try Self.measured(try Self.parse(compareText, option: "--compare"), "--compare", upTo: day)
            let data = try storeOptions.open().scorecardData()
            let readout = ScorecardReadout(
                baseline: Scorecard.compute(data, period: before, by: grouping),
                compare: Scorecard.compute(data, period: after, by: grouping)
            )
            try ScorecardOutput.print(readout, json: json, csv: csv)
            return
        }
        let chosen: ScorecardPeriod
        switch (period, from, to) {
        case (let text?, nil, nil):
            chosen = try Self.parse(text, option: "--period")
        case (nil, let first?, let last?):
            chosen = try Self.parse("\(first)..\(last)", option: "--from/--to")
        case (nil, nil, nil):
            throw CLIError.input("give the period with --period (for example 2026-Q3) or with --from and --to")
        default:
            throw CLIError.input("give --period, or both --from and --to")
        }
        let measured = try Self.measured(chosen, period == nil ? "--from/--to" : "--period", upTo: try Self.day(today))
        let scorecard = Scorecard.compute(try storeOptions.open().scorecardData(), period: measured, by: grouping)
        try ScorecardOutput.print(scorecard, json: json, csv: csv)
    }

    /// `--today`, else today (UTC).
    static func day(_ text: String?) throws -> CalendarDate {
        guard let text else { return CalendarDate(millis: SystemWallClock().nowMillis()) }
        guard let day = CalendarDate(text) else {
            throw CLIError.input("--today: '\(text)' is not a date; use YYYY-MM-DD")
        }
        return day
    }

    /// The part of `period` that has happened by `today`: a period ending later is measured up to today (its
    /// member-months and payments are not counted ahead), said on stderr; one starting later is refused.
    static func measured(
        _ period: ScorecardPeriod,
        _ option: String,
        upTo today: CalendarDate
    ) throws -> ScorecardPeriod {
        guard period.from <= today else {
            throw CLIError.input(
                "\(option): \(period) starts after today (\(today)); a scorecard measures what has happened"
            )
        }
        guard period.to > today, let clipped = ScorecardPeriod(from: period.from, to: today) else { return period }
        FileHandle.standardError.write(
            Data("outpost: note: \(period) ends after today: measured up to \(today) (\(clipped))\n".utf8)
        )
        return clipped
    }

    static func parse(_ text: String, option: String) throws -> ScorecardPeriod {
        guard let period = ScorecardPeriod(text) else {
            throw CLIError.input(
                "\(option): '\(text)' is not a period; use 2026-Q3, 2026-07, 2026 or YYYY-MM-DD..YYYY-MM-DD "
                    + "(first day not after the last)"
            )
        }
        return period
    }
}

/// Renders scorecards and readouts as tables, CSV or JSON.
enum ScorecardOutput {
    static func print(_ scorecard: Scorecard, json: Bool, csv: Bool) throws {
        let groups = scorecard.groups + [scorecard.total]
        var names: [String] = []
        for group in groups {
            for measure in group.measures where !names.contains(measure.name) { names.append(measure.name) }
        }
        func value(_ group: ScorecardGroup, _ name: String) -> Double? {
            group.measures.first { $0.name == name }?.value ?? nil
        }
        if json {
            try Terminal.json(scorecard)
        } else if csv {
            Swift.print((["group", "label"] + names).map(csvField).joined(separator: ","))
            for group in groups {
                let cells = [group.key, group.label] + names.map { value(group, $0).map(number) ?? "" }
                Swift.print(cells.map(csvField).joined(separator: ","))
            }
        } else {
            Swift.print("Scorecard \(scorecard.period) by \(scorecard.grouping.rawValue)")
            Terminal.table(
                ["measure"] + groups.map { $0.label.lowercased() },  // lowercased: the table capitalizes headers
                names.map { name in [name] + groups.map { format(name, value($0, name)) } }
            )
        }
    }

    static func print(_ readout: ScorecardReadout, json: Bool, csv: Bool) throws {
        if json {
            try Terminal.json(readout)
        } else if csv {
            Swift.print("group,label,measure,baseline,compare,change")
            for group in readout.groups {
                for line in group.lines {
                    let cells = [
                        group.key, group.label, line.name, line.baseline.map(number) ?? "",
                        line.compare.map(number) ?? "", line.change.map(number) ?? "",
                    ]
                    Swift.print(cells.map(csvField).joined(separator: ","))
                }
            }
        } else {
            Swift.print(
                "Readout by \(readout.grouping.rawValue): \(readout.compare) against baseline \(readout.baseline)"
            )
            for group in readout.groups {
                Swift.print("")
                Swift.print("\(group.label) (\(group.key))")
                Terminal.table(
                    ["measure", "baseline", "compare", "change"],
                    group.lines.map { line in
                        [
                            line.name, format(line.name, line.baseline), format(line.name, line.compare),
                            line.change.map { ($0 > 0 ? "+" : "") + number($0) } ?? "-",
                        ]
                    }
                )
            }
        }
    }

    /// A measure for people: shares with `%`, money with `$`, `-` when there is nothing to measure.
    static func format(_ name: String, _ value: Double?) -> String {
        guard let value else { return "-" }
        if name.hasSuffix(".percent") || name.hasPrefix("careGapsClosed.") { return number(value) + "%" }
        if ["cost", "costPMPM", "payment", "margin"].contains(name) {
            return (value < 0 ? "-$" : "$") + String(format: "%.2f", abs(value))
        }
        return number(value)
    }

    /// A number without a trailing `.0` when whole; at most two decimals.
    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        var text = String(format: "%.2f", value)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
