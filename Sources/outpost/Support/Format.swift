import OutpostCRDT
import OutpostModel

/// Human-readable renderings of clocks and times, through the model's formatters (``CalendarDate``).
enum Format {
    /// A timestamp as UTC date and time, for example `2026-11-23 10:04:05Z`.
    static func clock(_ timestamp: Timestamp) -> String {
        millis(timestamp.millis)
    }

    /// Milliseconds since 1970 as UTC date and time, for example `2026-11-23 10:04:05Z`.
    static func millis(_ millis: UInt64) -> String {
        CalendarDate.readableDateTime(millis: millis)
    }

    /// Now, in UTC as ISO 8601 (`2026-11-23T10:04:05Z`), the form dateTime fields take.
    static func nowISO8601() -> String {
        CalendarDate.dateTime(millis: SystemWallClock().nowMillis())
    }
}
