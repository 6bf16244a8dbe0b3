import GRDB
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// A push that names records by abbreviation has them resolved in its write transaction, one look-up each.
struct PushResolutionPlanTests {
    @Test func eachAbbreviationIsASearchOfTheRecordKeyNotAScan() async throws {
        let directory = try TemporaryDirectory("outpost-resolution-plan")
        let (store, _, _) = try await RecordTailTests().practice(directory)
        let plan = try store.read { db in
            try Row.fetchAll(
                db,
                sql: "EXPLAIN QUERY PLAN " + ServerStore.resolutionSQL,
                arguments: ["p", "t", "a", "b"]
            )
            .map { $0["detail"] as String }
        }
        #expect(plan.count == 1, "\(plan)")
        #expect(
            plan.allSatisfy {
                $0.hasPrefix("SEARCH record USING PRIMARY KEY (practice=? AND type=? AND id>? AND id<?)")
            },
            "\(plan)"
        )
    }
}
