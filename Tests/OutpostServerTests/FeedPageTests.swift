import OutpostCRDT
import OutpostProtocol
import Testing

@testable import OutpostServer

/// What a pull page names by abbreviation in layout 3 (``FeedPage/recordsHeld(since:)``).
struct FeedPageTests {
    static let replica = ReplicaID(unchecked: "laptop-rn-04")

    static func change(_ record: RecordRef, _ counter: UInt64) -> Change {
        Change(
            id: ChangeID(replica: replica, counter: counter),
            record: record,
            field: "phone",
            operation: .assign,
            value: "555-0100",
            clock: Timestamp(millis: 1_760_000_000_000 + counter),
            author: "per_01KJYKKBT1YWAT28G7VFNAJGNS"
        )
    }

    let held = RecordRef(type: "patient", id: "pat_01KKBFJZCTT8BHAW9GPEZGQKFM")
    let created = RecordRef(type: "patient", id: "pat_01KKBFK0AAT8BHAW9GPEZGQKFM")
    let entering = RecordRef(type: "observation", id: "obs_01KKBFK1AAT8BHAW9GPEZGQKFM")

    @Test func everyRecordAChangeNamesButThoseThePageCreatesOrCarriesWhole() throws {
        let state = RecordState()
        let page = FeedPage(
            changes: [Self.change(held, 1), Self.change(created, 2), Self.change(entering, 3), Self.change(held, 4)],
            checkpoint: 40,
            hasMore: false,
            records: [SnapshotRecord(record: entering, state: state)],
            created: [created]
        )
        #expect(page.recordsHeld(since: 36) == [held])
        // A device pulling from 0 holds nothing yet.
        #expect(page.recordsHeld(since: 0).isEmpty)
    }
}
