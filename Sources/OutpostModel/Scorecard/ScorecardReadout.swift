import OutpostCRDT

extension ScorecardGroup {
    /// The group's measures as named numbers in a fixed order (table rows, CSV columns, readout lines):
    /// shares in percent, money in dollars, rates per 1,000 patients per year, days. Per-gap and per-kind
    /// entries are named `careGapsClosed.<gap>` and `medianDaysToDone.<kind>`.
    public var measures: [(name: String, value: Double?)] {
        func dollars(_ cents: Int64?) -> Double? { cents.map { Double($0) / 100 } }
        var list: [(String, Double?)] = [
            ("patients", Double(patients)),
            ("memberMonths", memberMonths),
            ("diabetesControl.percent", diabetesControl.percent),
            ("diabetesControl.denominator", Double(diabetesControl.denominator)),
            ("diabetesNoReading", Double(diabetesNoReading)),
            ("hypertensionControl.percent", hypertensionControl.percent),
            ("hypertensionControl.denominator", Double(hypertensionControl.denominator)),
            ("hypertensionNoReading", Double(hypertensionNoReading)),
        ]
        for code in careGapsClosed.keys.sorted() {
            list.append(("careGapsClosed.\(code)", careGapsClosed[code]?.percent))
        }
        list += [
            ("screeningTasksDone", Double(screeningTasksDone)),
            ("edVisits", Double(edVisits)),
            ("edVisitsPer1000", edVisitsPer1000),
            ("admissions", Double(admissions)),
            ("admissionsPer1000", admissionsPer1000),
            ("tasksDone", Double(tasksDone)),
            ("medianDaysToDone", medianDaysToDone),
        ]
        for kind in medianDaysToDoneByKind.keys.sorted() {
            list.append(("medianDaysToDone.\(kind)", medianDaysToDoneByKind[kind]))
        }
        list += [
            ("doneByDueDate.percent", doneByDueDate.percent),
            ("referralsClosed.percent", referralsClosed.percent),
            ("referralsClosed.denominator", Double(referralsClosed.denominator)),
            ("medianDaysToCloseReferral", medianDaysToCloseReferral),
            ("edFollowUpWithin7Days.percent", edFollowUpWithin7Days.percent),
            ("dischargeFollowUpWithin7Days.percent", dischargeFollowUpWithin7Days.percent),
            ("cost", dollars(costCents)),
            ("uncostedEncounters", Double(uncostedEncounters)),
            ("costPMPM", dollars(costPMPMCents)),
            ("payment", dollars(paymentCents)),
            ("margin", dollars(marginCents)),
        ]
        return list
    }
}

/// The 90-day readout: every measure of a scorecard against the same measure in a baseline period.
public struct ScorecardReadout: Sendable, Hashable, Codable {
    /// One measure in both periods.
    public struct Line: Sendable, Hashable, Codable {
        /// The measure's name (as in ``ScorecardGroup/measures``).
        public var name: String
        /// Its value in the baseline period.
        public var baseline: Double?
        /// Its value in the compared period.
        public var compare: Double?
        /// `compare - baseline`, rounded to two decimals; `nil` when either is missing.
        public var change: Double?
    }

    /// One group's lines.
    public struct Group: Sendable, Hashable, Codable {
        /// The group's key (`all` for the whole panel).
        public var key: String
        /// The group's label.
        public var label: String
        /// Every measure.
        public var lines: [Line]
    }

    /// The baseline period.
    public var baseline: ScorecardPeriod
    /// The compared period.
    public var compare: ScorecardPeriod
    /// How patients are grouped.
    public var grouping: Scorecard.Grouping
    /// The groups of either scorecard (baseline order, then new ones), the whole panel last.
    public var groups: [Group]

    /// Compares two scorecards of the same grouping.
    public init(baseline: Scorecard, compare: Scorecard) {
        self.baseline = baseline.period
        self.compare = compare.period
        grouping = compare.grouping
        var order = baseline.groups.map { ($0.key, $0.label) }
        for group in compare.groups where !order.contains(where: { $0.0 == group.key }) {
            order.append((group.key, group.label))
        }
        func lines(_ before: ScorecardGroup?, _ after: ScorecardGroup?) -> [Line] {
            let old = before?.measures ?? []
            let new = after?.measures ?? []
            var names = old.map(\.name)
            for entry in new where !names.contains(entry.name) { names.append(entry.name) }
            return names.map { name in
                let was = old.first { $0.name == name }?.value ?? nil
                let now = new.first { $0.name == name }?.value ?? nil
                let change = was.flatMap { was in now.map { (($0 - was) * 100).rounded() / 100 } }
                return Line(name: name, baseline: was, compare: now, change: change)
            }
        }
        groups =
            order.map { key, label in
                Group(
                    key: key,
                    label: label,
                    lines: lines(
                        baseline.groups.first { $0.key == key },
                        compare.groups.first { $0.key == key }
                    )
                )
            } + [Group(key: "all", label: compare.total.label, lines: lines(baseline.total, compare.total))]
    }
}
