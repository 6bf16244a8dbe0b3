import OutpostCRDT

/// The days a scorecard covers: from the first to the last day, both included (UTC calendar days).
///
/// Written `2026-Q3` (a quarter), `2026-07` (a month), `2026` (a year) or `2026-07-01..2026-09-30`.
/// For example:
///
/// ```swift
/// let quarter = ScorecardPeriod("2026-Q3")   // 2026-07-01..2026-09-30
/// let days = ScorecardPeriod(from: start, to: end)  // nil when end is before start
/// ```
public struct ScorecardPeriod: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The first day.
    public let from: CalendarDate
    /// The last day (included).
    public let to: CalendarDate

    /// The period from `from` to `to`, both included; `nil` when `to` is before `from`.
    public init?(from: CalendarDate, to: CalendarDate) {
        guard from <= to else { return nil }
        self.from = from
        self.to = to
    }

    /// Parses `2026-Q3`, `2026-07`, `2026` or `D1..D2`; `nil` when the text is none of these.
    public init?(_ text: String) {
        if let range = text.firstRange(of: "..") {
            guard let from = CalendarDate(text[..<range.lowerBound]), let to = CalendarDate(text[range.upperBound...])
            else { return nil }
            self.init(from: from, to: to)
            return
        }
        let pieces = text.split(separator: "-", omittingEmptySubsequences: false)
        guard let yearText = pieces.first, yearText.count == 4, let year = Int(yearText), year >= 1900 else {
            return nil
        }
        switch pieces.count {
        case 1:
            guard let from = CalendarDate(year: year, month: 1, day: 1),
                let to = CalendarDate(year: year, month: 12, day: 31)
            else { return nil }
            self.init(from: from, to: to)
        case 2 where pieces[1].count == 2 && pieces[1].first == "Q":
            guard let quarter = Int(pieces[1].dropFirst()), (1...4).contains(quarter),
                let from = CalendarDate(year: year, month: quarter * 3 - 2, day: 1)
            else { return nil }
            self.init(from: from, to: Self.lastDay(year: year, month: quarter * 3))
        case 2 where pieces[1].count == 2:
            guard let month = Int(pieces[1]), let from = CalendarDate(year: year, month: month, day: 1) else {
                return nil
            }
            self.init(from: from, to: Self.lastDay(year: year, month: month))
        default:
            return nil
        }
    }

    /// How many days the period covers.
    public var days: Int { to.daysSinceEpoch - from.daysSinceEpoch + 1 }

    /// Whether `date` is one of the period's days.
    public func contains(_ date: CalendarDate) -> Bool { from <= date && date <= to }

    /// `2026-07-01..2026-09-30`.
    public var description: String { "\(from)..\(to)" }

    /// The last day of `month` of `year`.
    static func lastDay(year: Int, month: Int) -> CalendarDate {
        let next =
            month == 12
            ? CalendarDate(year: year + 1, month: 1, day: 1)
            : CalendarDate(
                year: year,
                month: month + 1,
                day: 1
            )
        return (next ?? CalendarDate(daysSinceEpoch: 0)).adding(days: -1)
    }

    /// The number of days in the month that holds `date`.
    static func daysInMonth(of date: CalendarDate) -> Int {
        lastDay(year: date.year, month: date.month).day
    }
}
