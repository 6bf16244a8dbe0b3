import OutpostProtocol
import OutpostTestSupport

@testable import OutpostServer

extension ServerStore {
    /// A new administrator token of the tiny practice (``TinyPractice``), which the store must hold.
    func tinyPracticeAdminToken() throws -> TokenEntry {
        try issueToken(
            practice: TinyPractice.practice,
            role: .admin,
            scope: .practice,
            label: "test",
            expiresAtMillis: nil,
            now: nowMillis()
        ).entry
    }
}
