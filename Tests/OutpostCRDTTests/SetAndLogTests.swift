import OutpostCRDT
import OutpostTestSupport
import Testing

/// `set` is an add-wins observed-remove set; `log` keeps every entry, in clock order.
struct SetAndLogTests {
    private let record = ThingSchema.record(0)
    private let setField = ThingSchema.setField
    private let logField = ThingSchema.logField

    @Test func aConcurrentAddAndRemoveOfTheSameElementKeepIt() throws {
        var laptop = SimulatedReplica(id: "laptop", schema: ThingSchema.schema, wallMillis: 1_000)
        var tablet = SimulatedReplica(id: "tablet", schema: ThingSchema.schema, wallMillis: 1_000)
        let add = try laptop.add(record, setField, "asthma")
        try tablet.receive([add])
        let remove = try tablet.remove(record, setField, "asthma")
        #expect(remove.replaces == [add.id])
        #expect(tablet.field(record, setField).elements.isEmpty)
        let readd = try laptop.add(record, setField, "asthma")
        try laptop.receive([remove])
        try tablet.receive([readd])
        for replica in [laptop, tablet] {
            let state = replica.field(record, setField)
            #expect(state.elements == ["asthma"])
            #expect(state.tags(of: "asthma") == [readd.id])
        }
    }

    @Test func aRemoveTakesOnlyTheTagsItObserved() throws {
        var first = SimulatedReplica(id: "a", schema: ThingSchema.schema, wallMillis: 1_000)
        var second = SimulatedReplica(id: "b", schema: ThingSchema.schema, wallMillis: 1_000)
        let seen = try first.add(record, setField, "x")
        let unseen = try second.add(record, setField, "x")
        let other = try first.add(record, setField, "y")
        let remove = try first.remove(record, setField, "x")
        #expect(remove.replaces == [seen.id])
        try first.receive([unseen])
        try second.receive([seen, other, remove])
        for replica in [first, second] {
            #expect(replica.field(record, setField).elements == ["x", "y"])
            #expect(replica.field(record, setField).tags(of: "x") == [unseen.id])
        }
    }

    @Test func removingAnElementNeverSeenChangesNothingButIsRecorded() throws {
        var replica = SimulatedReplica(id: "a", schema: ThingSchema.schema, wallMillis: 1_000)
        let remove = try replica.remove(record, setField, "x")
        #expect(remove.replaces.isEmpty)
        #expect(replica.field(record, setField).elements.isEmpty)
        let add = try replica.add(record, setField, "x")
        #expect(replica.field(record, setField).tags(of: "x") == [add.id])
    }

    @Test(arguments: propertySeeds)
    func everyAddNotObservedByARemoveOfItsValueSurvives(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        let oracle = scenario.oracle
        let document = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes.reversed()])
        for record in scenario.records {
            let changes = scenario.changes(to: record, setField)
            let removes = changes.filter { $0.operation == .remove }
            let expected = Set(
                changes.filter { add in
                    add.operation == .add
                        && !removes.contains { $0.value == add.value && oracle.happenedBefore(add.id, $0.id) }
                }.map(\.value)
            )
            #expect(Set(document.field(record, setField).elements) == expected, "seed \(seed): \(record)")
        }
    }

    @Test func entriesAppendedOfflineOnTwoReplicasInterleaveByClock() throws {
        var first = SimulatedReplica(id: "a", schema: ThingSchema.schema, wallMillis: 1_000)
        var second = SimulatedReplica(id: "b", schema: ThingSchema.schema, wallMillis: 1_500)
        let a1 = try first.append(record, logField, "a1")
        let b1 = try second.append(record, logField, "b1")
        first.wallMillis = 2_000
        let a2 = try first.append(record, logField, "a2")
        // The second device's clock goes back: its next entry still follows its first.
        second.wallMillis = 500
        let b2 = try second.append(record, logField, "b2")
        try first.receive(second.log)
        try second.receive(first.log)
        for replica in [first, second] {
            #expect(replica.field(record, logField).entries.map(\.id) == [a1.id, b1.id, b2.id, a2.id])
        }
    }

    @Test(arguments: propertySeeds)
    func theLogKeepsEveryEntryInClockOrder(seed: UInt64) throws {
        var scenario = EditScenario(seed: seed)
        scenario.syncAll()
        for record in scenario.records {
            let appends = scenario.changes(to: record, logField)
            for replica in scenario.replicas {
                let entries = replica.field(record, logField).entries
                #expect(Set(entries.map(\.id)) == Set(appends.map(\.id)), "seed \(seed): an entry was lost")
                #expect(entries.count == appends.count, "seed \(seed)")
                let ordered = zip(entries, entries.dropFirst()).allSatisfy { ($0.clock, $0.id) < ($1.clock, $1.id) }
                #expect(ordered, "seed \(seed): entries out of clock order")
                for author in scenario.replicas.map(\.id) {
                    let own = entries.filter { $0.id.replica == author }.map(\.id.counter)
                    #expect(own == own.sorted(), "seed \(seed): \(author)'s entries out of their order")
                }
            }
        }
    }
}
