import OutpostCRDT

/// A value scorecard: for each group of patients (by subgroup, team or site) and for the whole panel,
/// member-months, outcomes, utilization, access, follow-through, total cost of care and the bundled
/// payment, over one period.
///
/// Compute one with ``compute(_:period:by:)``; docs/scorecard.md defines every measure (numerator,
/// denominator, source fields) so a payer can check it.
///
/// ```swift
/// let card = Scorecard.compute(data, period: ScorecardPeriod("2026-Q3")!, by: .subgroup)
/// card.total.paymentCents
/// ```
public struct Scorecard: Sendable, Hashable, Codable {
    /// How patients are grouped.
    public enum Grouping: String, Sendable, Hashable, Codable, CaseIterable {
        /// By the subgroup the patient is in on each day (payment follows it).
        case subgroup
        /// By the patient's primary team.
        case team
        /// By each of the patient's sites (a patient seen at two sites counts in both).
        case site
    }

    /// The period covered.
    public var period: ScorecardPeriod
    /// How patients are grouped.
    public var grouping: Grouping
    /// One entry per group, in id order; `none` last when some patients have no team or site.
    public var groups: [ScorecardGroup]
    /// The whole panel (each patient and event counted once).
    public var total: ScorecardGroup
}

/// A share: how many of `denominator` meet the measure.
public struct Ratio: Sendable, Hashable, Codable {
    /// How many meet the measure.
    public var numerator: Int
    /// How many are eligible.
    public var denominator: Int
    /// `numerator / denominator` in percent, one decimal; `nil` when nobody is eligible.
    public var percent: Double?

    /// Creates a share.
    public init(numerator: Int, denominator: Int) {
        self.numerator = numerator
        self.denominator = denominator
        percent = denominator == 0 ? nil : ((Double(numerator) * 1000 / Double(denominator)).rounded() / 10)
    }
}

/// One group's measures. Money is in cents; rates are per 1,000 patients per year; days are calendar days.
public struct ScorecardGroup: Sendable, Hashable, Codable {
    /// The group's id (a subgroup, team or site id), `none`, or `all` for the whole panel.
    public var key: String
    /// What people call it: the subgroup's key, the team's or site's name.
    public var label: String

    /// Distinct patients who were members on at least one day of the period.
    public var patients: Int
    /// Member-months: each member day counts 1 / (days in its month); two decimals.
    public var memberMonths: Double

    /// Patients with diabetes whose latest HbA1c (12 months to the period's end) is under 8%.
    public var diabetesControl: Ratio
    /// Patients with diabetes with no HbA1c in those 12 months (in the denominator, not controlled).
    public var diabetesNoReading: Int
    /// Patients with hypertension whose latest blood pressure is under 140/90.
    public var hypertensionControl: Ratio
    /// Patients with hypertension with no blood pressure pair in those 12 months.
    public var hypertensionNoReading: Int
    /// By care gap code: patients with the gap open during the period, and those whose gap was closed in it.
    public var careGapsClosed: [String: Ratio]
    /// Screening, gap-closure and behavioral-screening tasks completed in the period.
    public var screeningTasksDone: Int

    /// Finished ED visits in the period.
    public var edVisits: Int
    /// Finished admissions in the period.
    public var admissions: Int
    /// ED visits per 1,000 patients per year (`edVisits × 12,000 / memberMonths`), one decimal.
    public var edVisitsPer1000: Double?
    /// Admissions per 1,000 patients per year, one decimal.
    public var admissionsPer1000: Double?

    /// Tasks completed in the period (with a dated completion).
    public var tasksDone: Int
    /// Median days from a task's creation to its completion, one decimal.
    public var medianDaysToDone: Double?
    /// The same median by task kind.
    public var medianDaysToDoneByKind: [String: Double]
    /// Tasks due in the period (not cancelled or entered in error) done by their due date.
    public var doneByDueDate: Ratio

    /// Referrals sent in the period whose result was received by the period's end.
    public var referralsClosed: Ratio
    /// Median days from sending a referral to receiving its result, one decimal.
    public var medianDaysToCloseReferral: Double?
    /// ED visits in the period followed by a completed ed-follow-up task within 7 days.
    public var edFollowUpWithin7Days: Ratio
    /// Admissions in the period followed by a completed discharge-follow-up task within 7 days.
    public var dischargeFollowUpWithin7Days: Ratio

    /// Total cost of finished encounters in the period.
    public var costCents: Int64
    /// Finished encounters in the period with no cost recorded yet.
    public var uncostedEncounters: Int
    /// Total cost per member-month, whole cents.
    public var costPMPMCents: Int64?
    /// Bundled payment: for each member day, the subgroup's monthly payment / days in the month; whole cents.
    public var paymentCents: Int64
    /// Payment minus cost.
    public var marginCents: Int64
}
