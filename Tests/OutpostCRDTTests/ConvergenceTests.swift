import OutpostCRDT
import OutpostTestSupport
import Testing

/// Every replica converges to the same state once it has seen the same changes (DESIGN.md, promise 2).
struct ConvergenceTests {
    @Test(arguments: propertySeeds)
    func documentsConvergeUnderShuffledDuplicatedAndBatchedDelivery(seed: UInt64) {
        let scenario = EditScenario(seed: seed)
        CRDTLaws.assertConvergence(changes: scenario.changes, schema: scenario.schema, seed: seed)
    }

    @Test(arguments: propertySeeds)
    func replicasThatExchangedEverythingHoldIdenticalStates(seed: UInt64) throws {
        var scenario = EditScenario(seed: seed)
        scenario.syncAll()
        let reference = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        for replica in scenario.replicas {
            let differences = CRDTLaws.differences(reference, replica.document, label: "replica \(replica.id)")
            #expect(differences.isEmpty, "seed \(seed): \(differences)")
        }
    }

    @Test(arguments: propertySeeds)
    func changesArrivingBeforeTheWritesTheyReplaceGiveTheSameResult(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        // Reversed authoring order delivers every change before the writes it replaces (and removes
        // before the adds whose tags they name).
        let forward = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        let backward = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes.reversed()])
        let differences = CRDTLaws.differences(forward, backward, label: "reversed")
        #expect(differences.isEmpty, "seed \(seed): \(differences)")
    }

    @Test(arguments: propertySeeds)
    func fieldStateApplyAndMergeAreIdempotentCommutativeAndAssociative(seed: UInt64) {
        let scenario = EditScenario(seed: seed)
        for record in scenario.records {
            for field in ThingSchema.fields {
                let changes = scenario.changes(to: record, field)
                let violations = CRDTLaws.fieldStateViolations(changes: changes, seed: seed)
                #expect(violations.isEmpty, "seed \(seed), \(record).\(field): \(violations)")
            }
        }
    }

    @Test(arguments: propertySeeds)
    func recordStateMergeEqualsOpBasedDelivery(seed: UInt64) {
        let scenario = EditScenario(seed: seed)
        for record in scenario.records {
            let changes = scenario.changes.filter { $0.record == record }
            let violations = CRDTLaws.recordStateViolations(changes: changes, seed: seed)
            #expect(violations.isEmpty, "seed \(seed), \(record): \(violations)")
        }
    }

    @Test(arguments: propertySeeds)
    func applyReportsAChangeOnlyTheFirstTimeAChangeArrives(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        var document = Document(schema: scenario.schema)
        for change in scenario.changes { try document.apply(change) }
        let before = document.canonicalEncoding()
        for change in scenario.changes {
            let changed = try document.apply(change)
            #expect(!changed, "seed \(seed): re-applying \(change.id) reported a change")
        }
        #expect(document.canonicalEncoding() == before, "seed \(seed)")
    }

    @Test func emptyDeliveriesLeaveADocumentEmpty() throws {
        let document = try CRDTLaws.document(schema: ThingSchema.schema, receiving: [[], []])
        #expect(document.records.isEmpty)
        #expect(document.canonicalEncoding().isEmpty)
        #expect(document.conflicts().isEmpty)
    }
}
