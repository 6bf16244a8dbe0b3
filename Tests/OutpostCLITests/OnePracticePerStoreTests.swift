import Foundation
import OutpostTestSupport
import Testing

/// Issue 8: a store holds one practice. Importing another practice's dump into a store that holds one is
/// refused (exit 2, one line, nothing written); the same dump goes into a new store.
struct OnePracticePerStoreTests {
    static let small = "pra_01JWMCKG0116Q4G4JXDH22YAN4"
    static let scorecard = "pra_01KE5Q86014TFF59TDWH9EDD1R"

    @Test func importingAnotherPracticesDumpIntoAStoreThatHoldsAPracticeIsRefused() async throws {
        let sandbox = try await Sandbox.withPractice()
        let result = try await sandbox.expectRefused(
            ["import", Sandbox.fixture("practice-scorecard.json")],
            status: 2,
            mentioning: [Self.small, Self.scorecard, "one practice", "outpost init"]
        )
        #expect(!result.stderr.contains("Scorecard Sample Practice"), "\(result)")

        // Into a new store, the same dump imports.
        let other = try Sandbox()
        try await other.outpost("init")
        try await other.outpost("import", Sandbox.fixture("practice-scorecard.json"))
    }
}
