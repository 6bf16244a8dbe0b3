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

    /// A new store in `directory` holding the tiny practice (its row, no records), with an administrator token of it.
    static func tinyPractice(in directory: String) throws -> (store: ServerStore, admin: TokenEntry) {
        let store = try ServerStore.quiet(directory)
        let practice = PracticeEntry(id: TinyPractice.practice, name: "Tiny", createdAtMillis: 0)
        try store.write { db in try ServerStore.insertPractice(practice, now: nowMillis(), db: db) }
        return (store, try store.tinyPracticeAdminToken())
    }
}
