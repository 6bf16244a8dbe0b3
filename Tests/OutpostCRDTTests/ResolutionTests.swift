import OutpostCRDT
import OutpostTestSupport
import Testing

/// A person resolves a conflict with an edit that syncs like any other (DESIGN.md, promise 3).
struct ResolutionTests {
    private let record = ThingSchema.record(0)
    private let field = ThingSchema.reviewField

    /// A scenario after full sync, with at least one open conflict on `record.field` made by replicas 0 and 1.
    private func scenarioWithConflict(seed: UInt64) throws -> EditScenario {
        var scenario = EditScenario(seed: seed)
        scenario.syncAll()
        let (record, field) = (record, field)
        let first = try scenario.edit(by: 0) { replica throws(CRDTError) in
            try replica.assign(record, field, "from r0")
        }
        let second = try scenario.edit(by: 1) { replica throws(CRDTError) in
            try replica.assign(record, field, "from r1")
        }
        _ = (first, second)
        scenario.syncAll()
        return scenario
    }

    @Test(arguments: propertySeeds)
    func aResolutionClearsTheConflictOnEveryReplicaOnceDelivered(seed: UInt64) throws {
        var scenario = try scenarioWithConflict(seed: seed)
        let open = scenario.replicas[0].document.conflicts()
        try #require(!open.isEmpty, "seed \(seed)")
        var resolutions: [Change] = []
        for conflict in open {
            // Whoever resolves picks one of the values on show (a terminal one, for a status).
            let chosen = conflict.provisionalWinner.value
            let change = try scenario.edit(by: 0) { replica throws(CRDTError) in
                try replica.resolve(conflict.record, conflict.field, chosen)
            }
            resolutions.append(change)
        }
        #expect(scenario.replicas[0].document.conflicts().isEmpty, "seed \(seed): the resolver still sees conflicts")
        for index in scenario.replicas.indices.dropFirst() {
            #expect(!scenario.replicas[index].document.conflicts().isEmpty, "seed \(seed): resolved before delivery")
            try scenario.deliver(resolutions, to: index)
            let replica = scenario.replicas[index]
            #expect(replica.document.conflicts().isEmpty, "seed \(seed): replica \(replica.id) still has conflicts")
            for resolution in resolutions {
                let state = replica.field(resolution.record, resolution.field)
                #expect(state.liveIDs == [resolution.id], "seed \(seed): the resolution is the only live value")
            }
        }
    }

    @Test(arguments: propertySeeds)
    func twoResolutionsMadeApartProduceANewConflictAndLoseNeither(seed: UInt64) throws {
        var scenario = try scenarioWithConflict(seed: seed)
        let (record, field) = (record, field)
        let old = scenario.replicas[0].field(record, field).liveIDs
        let first = try scenario.edit(by: 0) { replica throws(CRDTError) in
            try replica.resolve(record, field, "resolved by r0")
        }
        let second = try scenario.edit(by: 1) { replica throws(CRDTError) in
            try replica.resolve(record, field, "resolved by r1")
        }
        #expect(first.replaces == old && second.replaces == old, "seed \(seed): both resolvers saw the whole conflict")
        scenario.syncAll()
        for replica in scenario.replicas {
            let state = replica.field(record, field)
            #expect(state.liveIDs == [first.id, second.id].sorted(), "seed \(seed): replica \(replica.id)")
            #expect(state.resolution(under: .review).isConflict, "seed \(seed): replica \(replica.id)")
            #expect(Set(state.live.map(\.value)) == ["resolved by r0", "resolved by r1"], "seed \(seed)")
        }
        // A third person who sees both resolutions ends it for everyone.
        let last = try scenario.edit(by: scenario.replicas.count - 1) { replica throws(CRDTError) in
            try replica.resolve(record, field, "agreed")
        }
        scenario.syncAll()
        for replica in scenario.replicas {
            #expect(replica.field(record, field).liveIDs == [last.id], "seed \(seed)")
            #expect(!replica.document.conflicts().contains { $0.record == record && $0.field == field }, "seed \(seed)")
        }
    }

    @Test func aResolutionThatMissedOneConcurrentValueLeavesAConflictWithIt() throws {
        let schema = ThingSchema.schema
        var first = SimulatedReplica(id: "a", schema: schema, wallMillis: 1_000)
        var second = SimulatedReplica(id: "b", schema: schema, wallMillis: 1_000)
        var third = SimulatedReplica(id: "c", schema: schema, wallMillis: 1_000)
        let one = try first.assign(record, field, "one")
        let two = try second.assign(record, field, "two")
        let three = try third.assign(record, field, "three")
        try first.receive([two])
        let resolution = try first.resolve(record, field, "two")
        #expect(resolution.replaces == [one.id, two.id])
        try first.receive([three])
        let state = first.field(record, field)
        #expect(state.liveIDs == [resolution.id, three.id].sorted())
        #expect(state.resolution(under: .review).isConflict)
    }
}
