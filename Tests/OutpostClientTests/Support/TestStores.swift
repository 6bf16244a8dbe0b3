import Foundation
import OutpostCRDT
import OutpostProtocol
import OutpostTestSupport

@testable import OutpostClient

// Stores for the client tests: a small schema, a clock the test controls, a fresh temporary path.

/// A wall clock that tests move by hand.
final class TestClock: WallClock, @unchecked Sendable {
    // Only read and written from the test's own task.
    var millis: UInt64 = 1_700_000_000_000
    func nowMillis() -> UInt64 { millis }
}

let testSchema = Schema(types: [
    "patient": [
        "phone": .lww,
        "birthDate": .review,
        "conditions": .set,
        "notes": .log,
    ],
    "task": [
        "patient": .lww,
        "status": .status(StatusRules(terminal: ["completed", "cancelled"], overriding: ["entered-in-error"])),
    ],
])

/// The key of the client tests' encrypted stores: a key file's 32 bytes, the same in every test.
let testStoreKey: StoreKeySource = { () throws(ClientError) -> StoreKey in
    try StoreKey.keyFile(contents: [UInt8](repeating: 7, count: 32))
}

func temporaryStorePath() -> String {
    let directory = TestScratch.folder("store")
    return directory.appendingPathComponent("store.sqlite").path
}

func makeTestStore(_ path: String = temporaryStorePath(), replica: String = "laptop") throws -> LocalStore {
    try LocalStore.create(
        at: path,
        replicaID: ReplicaID(replica),
        configuration: .init(schema: testSchema, ownerField: ["task": "patient"], wallClock: TestClock())
    )
}

extension LocalStore {
    /// Applies a received page as a pull does (``applyPage(changes:records:forms:removed:checkpoint:preloaded:unprojected:)``),
    /// with no prepared forms and no checkpoint: its changes, records taken whole, patients removed, the records read
    /// ahead for it and their unprojected set, if any.
    func applyReceived(
        _ changes: [Change],
        records: [SnapshotRecord] = [],
        removed: [String] = [],
        preloaded: PreloadedRecords? = nil,
        unprojected: Set<RecordRef>? = nil
    ) throws -> AppliedPage {
        try applyPage(
            changes: changes,
            records: records,
            forms: nil,
            removed: removed,
            checkpoint: nil,
            preloaded: preloaded,
            unprojected: unprojected
        )
    }
}
