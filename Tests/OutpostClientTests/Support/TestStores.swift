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

/// A new store of the care model for `replica`, encrypted with ``testStoreKey`` when `encrypted`.
func careStore(_ replica: String, encrypted: Bool = false) throws -> LocalStore {
    try LocalStore.create(
        at: temporaryStorePath(),
        replicaID: ReplicaID(replica),
        configuration: CareStore.configuration(wallClock: TestClock(), key: encrypted ? testStoreKey : nil)
    )
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
    /// Applies a received page as a pull does (``applyPage(changes:records:forms:removed:checkpoint:preloaded:unprojected:)``):
    /// its changes, records taken whole (prepared or not), patients removed, checkpoint, the records read ahead for
    /// it and their unprojected set, none unless given.
    func applyReceived(
        _ changes: [Change],
        records: [SnapshotRecord] = [],
        forms: [PreparedRecord?]? = nil,
        removed: [String] = [],
        checkpoint: String? = nil,
        preloaded: PreloadedRecords? = nil,
        unprojected: Set<RecordRef>? = nil
    ) throws -> AppliedPage {
        try applyPage(
            changes: changes,
            records: records,
            forms: forms,
            removed: removed,
            checkpoint: checkpoint,
            preloaded: preloaded,
            unprojected: unprojected
        )
    }
}
