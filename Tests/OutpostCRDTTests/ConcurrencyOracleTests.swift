import OutpostCRDT
import OutpostTestSupport
import Testing

/// Field states agree with an independent oracle of causality: a conflict is reported exactly when
/// writes were concurrent with different values, never for sequential writes.
struct ConcurrencyOracleTests {
    /// Compares one field of `document` with the oracle's expectation over `known` (the changes seen).
    private func compare(
        _ document: Document,
        known: [Change],
        oracle: CausalOracle,
        records: [RecordRef],
        label: String
    ) {
        let conflicted = Set(document.conflicts().map { "\($0.record).\($0.field)" })
        for record in records {
            for field in ThingSchema.fields {
                let policy = ThingSchema.policy(of: field)
                let changes = known.filter { $0.record == record && $0.field == field }
                let expected = oracle.expectation(of: changes, under: policy)
                let state = document.field(record, field)
                let place = "\(label), \(record).\(field)"
                #expect(state.liveIDs == expected.live.map(\.id), "\(place): live writes differ from the oracle's")
                switch policy {
                case .lww, .review, .status:
                    let resolution = state.resolution(under: policy)
                    #expect(resolution.winner?.id == expected.winner?.id, "\(place): winner")
                    #expect(resolution.isConflict == expected.isConflict, "\(place): conflict flag")
                    #expect(conflicted.contains("\(record).\(field)") == expected.isConflict, "\(place): inbox")
                case .set:
                    #expect(state.elements == expected.elements, "\(place): elements")
                    #expect(!conflicted.contains("\(record).\(field)"), "\(place): a set never conflicts")
                case .log:
                    #expect(state.entries.map(\.id) == expected.entries.map(\.id), "\(place): entries")
                    #expect(!conflicted.contains("\(record).\(field)"), "\(place): a log never conflicts")
                }
            }
        }
    }

    @Test(arguments: propertySeeds)
    func everyReplicaMidScenarioAgreesWithTheOracleOnWhatItHasSeen(seed: UInt64) {
        let scenario = EditScenario(seed: seed)
        let oracle = scenario.oracle
        for replica in scenario.replicas {
            compare(
                replica.document,
                known: replica.log,
                oracle: oracle,
                records: scenario.records,
                label: "seed \(seed), replica \(replica.id)"
            )
        }
    }

    @Test(arguments: propertySeeds)
    func fullyDeliveredDocumentsAgreeWithTheOracle(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        var random = SeededGenerator(seed: seed)
        let batches = CRDTLaws.randomDelivery(of: scenario.changes, using: &random)
        let document = try CRDTLaws.document(schema: scenario.schema, receiving: batches)
        compare(
            document,
            known: scenario.changes,
            oracle: scenario.oracle,
            records: scenario.records,
            label: "seed \(seed)"
        )
    }

    @Test(arguments: propertySeeds)
    func aConflictAlwaysHasTwoConcurrentWritesWithDifferentValuesAndSequentialWritesNeverConflict(
        seed: UInt64
    ) throws {
        let scenario = EditScenario(seed: seed)
        let oracle = scenario.oracle
        let document = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        for conflict in document.conflicts() {
            let pairs = conflict.values.flatMap { first in conflict.values.map { (first, $0) } }
            let concurrentAndDifferent = pairs.contains { first, second in
                oracle.areConcurrent(first.id, second.id) && first.value != second.value
            }
            #expect(concurrentAndDifferent, "seed \(seed): \(CRDTLaws.describe(conflict)) has no concurrent pair")
        }
        for record in scenario.records {
            for field in ThingSchema.fields {
                let writes = scenario.changes(to: record, field)
                let sequential = writes.indices.allSatisfy { index in
                    writes[..<index].allSatisfy { oracle.happenedBefore($0.id, writes[index].id) }
                }
                guard sequential else { continue }
                let resolution = document.field(record, field).resolution(under: ThingSchema.policy(of: field))
                #expect(!resolution.isConflict, "seed \(seed): sequential writes to \(record).\(field) conflict")
                if ThingSchema.policy(of: field).isRegister, let last = writes.last {
                    #expect(resolution.winner?.id == last.id, "seed \(seed): the last sequential write must win")
                }
            }
        }
    }

    @Test(arguments: propertySeeds)
    func lastWriterWinsNeverReportsAConflictAndTheLatestWriteWins(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        let document = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        for record in scenario.records {
            let writes = scenario.changes(to: record, ThingSchema.lwwField)
            let resolution = document.field(record, ThingSchema.lwwField).resolution(under: .lww)
            #expect(!resolution.isConflict, "seed \(seed)")
            let latest = writes.max { ($0.clock, $0.id) < ($1.clock, $1.id) }
            #expect(resolution.winner?.id == latest?.id, "seed \(seed): \(record)")
        }
        #expect(!document.conflicts().contains { $0.field == ThingSchema.lwwField }, "seed \(seed)")
    }

    @Test(arguments: propertySeeds)
    func aWriteThatSawAnotherCarriesALargerClock(seed: UInt64) {
        let scenario = EditScenario(seed: seed)
        let oracle = scenario.oracle
        let byID = Dictionary(uniqueKeysWithValues: scenario.changes.map { ($0.id, $0) })
        for change in scenario.changes {
            for earlier in oracle.ancestors[change.id] ?? [] {
                guard let before = byID[earlier] else { continue }
                #expect(before.clock < change.clock, "seed \(seed): \(earlier) happened before \(change.id)")
            }
        }
    }

    @Test func scenariosProduceConcurrentAndSequentialWritesAndConflicts() throws {
        // A guard on the generator: the property tests above are only as good as the histories they see.
        var concurrentPairs = 0
        var sequentialPairs = 0
        var conflicts = 0
        var removals = 0
        for seed in propertySeeds {
            let scenario = EditScenario(seed: seed)
            let oracle = scenario.oracle
            for (index, change) in scenario.changes.enumerated() {
                for other in scenario.changes[..<index]
                where other.record == change.record && other.field == change.field {
                    if oracle.areConcurrent(other.id, change.id) { concurrentPairs += 1 } else { sequentialPairs += 1 }
                }
                if change.operation == .remove && !change.replaces.isEmpty { removals += 1 }
            }
            conflicts += try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes]).conflicts().count
        }
        #expect(concurrentPairs > 1_000)
        #expect(sequentialPairs > 1_000)
        #expect(conflicts > 100)
        #expect(removals > 100)
    }
}
