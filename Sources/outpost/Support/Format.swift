import Foundation
import OutpostCRDT

/// Human-readable renderings of clocks and times.
enum Format {
    /// A timestamp as UTC date and time, for example `2026-11-23 10:04:05Z`.
    static func clock(_ timestamp: Timestamp) -> String {
        millis(timestamp.millis)
    }

    /// Milliseconds since 1970 as UTC date and time.
    static func millis(_ millis: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
