import OutpostCRDT
import OutpostModel
import OutpostServer
import Testing

/// The pure decisions of compaction: where the floor goes, who holds it back, what may be dropped.
struct CompactionPlannerTests {
    let day: UInt64 = 86_400_000
    let now: UInt64 = 1_800_000_000_000

    func device(
        _ replica: String,
        _ heldTo: Int64?,
        seenDaysAgo days: UInt64 = 0,
        retired: Bool = false
    )
        -> CompactionPlanner.Device
    {
        CompactionPlanner.Device(
            replica: replica,
            heldTo: heldTo,
            lastSeenMillis: now - days * day,
            isRetired: retired
        )
    }

    func floor(
        _ devices: [CompactionPlanner.Device],
        head: Int64 = 100,
        current: Int64 = 0
    )
        -> CompactionPlanner.Floor
    {
        CompactionPlanner.floor(head: head, current: current, devices: devices, now: now, horizonMillis: 90 * day)
    }

    @Test func theFloorIsTheLowestCheckpointOfAnActiveDevice() {
        let decided = floor([device("a", 80), device("b", 40, seenDaysAgo: 30), device("c", 40)])
        #expect(decided.position == 40)
        #expect(decided.heldBy == ["b", "c"])
        #expect(decided.expired.isEmpty)
    }

    @Test func aDeviceGonePastTheHorizonOrRetiredNoLongerHoldsItBackAndIsExpired() {
        let decided = floor([
            device("a", 80), device("gone", 10, seenDaysAgo: 91), device("lost", 5, retired: true),
            device("recent", 90, seenDaysAgo: 89),
        ])
        #expect(decided.position == 80)
        #expect(decided.heldBy == ["a"])
        #expect(decided.expired == ["gone", "lost"])
    }

    @Test func withNoActiveCheckpointTheFloorIsTheHeadAndADeviceThatNeverPulledHoldsNothing() {
        #expect(floor([]).position == 100)
        #expect(floor([device("new", nil)]).position == 100)
        #expect(floor([device("new", nil, seenDaysAgo: 200)]).expired.isEmpty, "it has no checkpoint to lose")
    }

    @Test func theFloorNeverMovesBackNorPassesTheHead() {
        #expect(floor([device("a", 20)], current: 50).position == 50)
        #expect(floor([device("a", 300)], head: 100).position == 100)
    }

    @Test func aPullIsServedFromTheFloorOnAndRefusedBelowIt() {
        #expect(CompactionPlanner.isServable(since: 40, floor: 40))
        #expect(CompactionPlanner.isServable(since: 0, floor: 0))
        #expect(!CompactionPlanner.isServable(since: 39, floor: 40))
    }

    let patient = RecordRef(type: "patient", id: "pat_01JD0000000000000000000001")

    func change(
        _ counter: UInt64,
        _ field: String,
        _ value: Value,
        replaces: [ChangeID] = [],
        op: Operation = .assign
    )
        -> Change
    {
        Change(
            id: ChangeID(replica: ReplicaID("office")!, counter: counter),
            record: patient,
            field: field,
            operation: op,
            value: value,
            replaces: replaces,
            clock: Timestamp(millis: 1_000 + counter, counter: 0),
            author: "per_1",
            site: nil
        )
    }

    @Test func onlyAcknowledgedSupersededValuesOutsideConflictsAndDatedFieldsMayBeDropped() {
        let first = change(1, "phone", "555-0100")
        let second = change(2, "phone", "555-0101", replaces: [first.id])
        let subgroupOld = change(3, "subgroup", "sgr_a")
        let subgroupNew = change(4, "subgroup", "sgr_b", replaces: [subgroupOld.id])
        var state = RecordState()
        for change in [first, second, subgroupOld, subgroupNew] { state.apply(change) }
        func mayDrop(_ change: Change, acknowledged: Bool = true, conflicted: Set<String> = []) -> Bool {
            CompactionRule.mayDrop(change, acknowledged: acknowledged, state: state, conflicted: conflicted)
        }
        #expect(mayDrop(first), "superseded")
        #expect(!mayDrop(second), "the current value")
        #expect(!mayDrop(first, acknowledged: false), "not every replica has it")
        #expect(!mayDrop(first, conflicted: ["phone"]), "its field is in conflict")
        #expect(!mayDrop(subgroupOld), "the scorecard dates a patient's subgroup from its history")
        #expect(
            CompactionRule.mayDrop(first, acknowledged: true, state: nil, conflicted: []),
            "the record is gone (purged)"
        )
    }

    @Test func aSetRemovalHoldsNoValueAndMayBeDroppedTheElementsStay() {
        let added = change(1, "conditions", "E11", op: .add)
        let kept = change(2, "conditions", "I10", op: .add)
        let removed = change(3, "conditions", "E11", replaces: [added.id], op: .remove)
        var state = RecordState()
        for change in [added, kept, removed] { state.apply(change) }
        #expect(CompactionRule.mayDrop(removed, acknowledged: true, state: state, conflicted: []))
        #expect(CompactionRule.mayDrop(added, acknowledged: true, state: state, conflicted: []))
        #expect(!CompactionRule.mayDrop(kept, acknowledged: true, state: state, conflicted: []))
    }

    /// Convergence: a replica that applies only what compaction keeps, on top of the compacted state, reaches the
    /// state of one that saw every change.
    @Test func whatIsKeptAndTheStateGiveTheSameStateAsEveryChange() {
        let first = change(1, "phone", "555-0100")
        let second = change(2, "phone", "555-0101", replaces: [first.id])
        let third = change(3, "phone", "555-0102", replaces: [second.id])
        var full = RecordState()
        for change in [first, second, third] { full.apply(change) }
        let kept = [first, second, third].filter {
            !CompactionRule.mayDrop($0, acknowledged: true, state: full, conflicted: [])
        }
        #expect(kept == [third])
        var rebuilt = full
        for change in [first, second, third] { rebuilt.apply(change) }
        #expect(rebuilt == full, "a late duplicate of a dropped change changes nothing")
    }
}
