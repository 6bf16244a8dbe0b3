import OutpostModel
import Testing

struct CalendarDateTests {
    @Test(arguments: ["2026-11-23", "1900-01-01", "2024-02-29", "1970-01-01", "2000-12-31"])
    func validDatesRoundTrip(text: String) throws {
        let date = try #require(CalendarDate(text))
        #expect(date.description == text)
        #expect(CalendarDate(daysSinceEpoch: date.daysSinceEpoch) == date)
    }

    @Test(arguments: ["2025-02-29", "2026-13-01", "2026-1-5", "26-01-05", "2026-01-32", "2026/01/05", ""])
    func invalidDatesAreRefused(text: String) {
        #expect(CalendarDate(text) == nil)
    }

    @Test func dayArithmeticCrossesMonthsAndYears() throws {
        let date = try #require(CalendarDate("2026-12-31"))
        #expect(date.adding(days: 1).description == "2027-01-01")
        #expect(date.adding(days: -365).description == "2025-12-31")
        #expect(CalendarDate(millis: 0).description == "1970-01-01")
        #expect(CalendarDate(millis: date.millis) == date)
    }

    @Test func dateTimesParseInUTCOnly() throws {
        let parsed = try #require(CalendarDate.parseDateTime("2026-11-23T10:00:00Z"))
        #expect(parsed.date.description == "2026-11-23")
        #expect(CalendarDate.dateTime(millis: UInt64(parsed.millis)) == "2026-11-23T10:00:00Z")
        #expect(CalendarDate.parseDateTime("2026-11-23T10:00:00.250Z")?.millis == parsed.millis + 250)
        #expect(CalendarDate.parseDateTime("2026-11-23T10:00:00+01:00") == nil)
        #expect(CalendarDate.parseDateTime("2026-11-23 10:00:00Z") == nil)
        #expect(CalendarDate.parseDateTime("2026-11-23T24:00:00Z") == nil)
        #expect(CalendarDate.parseDateTime("2026-11-23T10:00:00.Z") == nil)
    }
}
