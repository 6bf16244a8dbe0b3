import OutpostProtocol
import Testing

@testable import OutpostServer

/// ``RestoreCarryOver``'s plan, as pure code: what a restore keeps of the store it replaces.
struct RestoreCarryOverTests {
    func token(_ id: String, revokedAt: UInt64?) -> TokenEntry {
        TokenEntry(
            id: id,
            practice: "pra_a",
            role: .clinician,
            scope: .practice,
            label: "",
            createdAtMillis: 1,
            revokedAtMillis: revokedAt
        )
    }

    func purge(_ practice: String, _ patient: String, at: UInt64) -> PurgeEntry {
        PurgeEntry(practice: practice, patient: patient, reason: "court order", records: 3, atMillis: at)
    }

    @Test func aRevocationAndAPurgeTheRestoredStoreLacksAreMadeAgainAndOnlyThose() {
        let replaced = RestoreCarryOver.Replaced(
            revoked: [
                token("tok_lost", revokedAt: 50), token("tok_old", revokedAt: 5), token("tok_new", revokedAt: 60),
            ],
            purges: [purge("pra_a", "pat_2", at: 70), purge("pra_a", "pat_1", at: 2), purge("pra_b", "pat_9", at: 80)],
            audit: []
        )
        let plan = RestoreCarryOver.plan(
            replaced,
            restoredPractices: ["pra_a"],
            // tok_lost active in the backup, tok_old revoked there already; tok_new issued after the backup.
            restoredTokens: [token("tok_lost", revokedAt: nil), token("tok_old", revokedAt: 5)],
            restoredPurges: [purge("pra_a", "pat_1", at: 2)]
        )
        #expect(plan.revoke == ["tok_lost"])
        #expect(plan.purges.map(\.patient) == ["pat_2"])
        #expect(plan.outsidePractices.map(\.patient) == ["pat_9"], "a practice added after the backup")
        #expect(!plan.isEmpty)
        let nothing = RestoreCarryOver.plan(
            RestoreCarryOver.Replaced(),
            restoredPractices: ["pra_a"],
            restoredTokens: [],
            restoredPurges: []
        )
        #expect(nothing.isEmpty)
    }
}
