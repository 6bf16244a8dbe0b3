import OutpostCRDT
import OutpostModel
import OutpostTestSupport
import Testing

/// `RecordFields` (what the local store's projection reads) against `MaterializedRecord` (what views read):
/// the same values for every field of every type, with fields unset, written once, written concurrently,
/// replaced, and values of other kinds than the field's.
struct RecordFieldsTests {
    @Test(arguments: 0..<120)
    func aStateReadsTheSameThroughBoth(seed: Int) {
        var generator = SeededGenerator(seed: UInt64(seed))
        for type in RecordType.allCases {
            let record = RecordRef(type: type.rawValue, id: Fixture.id(type, UInt64(seed)))
            let state = Self.randomState(of: type, record: record, &generator)
            let materialized = MaterializedRecord(type: type, id: record.id, state: state)
            let fields = RecordFields(type: type, state: state)
            for name in CareModel.fields(of: type).map(\.name) + ["unknownField"] {
                #expect(fields.value(name) == materialized.value(name), "seed \(seed): \(type).\(name)")
                #expect(fields.string(name) == materialized.string(name), "seed \(seed): \(type).\(name)")
                #expect(fields.values(name) == materialized.values(name), "seed \(seed): \(type).\(name)")
            }
            #expect(fields.conflictedFields == materialized.conflictedFields, "seed \(seed): \(type)")
            #expect(fields.isRetired == materialized.isRetired, "seed \(seed): \(type)")
            #expect(
                CareModel.isAwaitingAssignment(fields) == CareModel.isAwaitingAssignment(materialized),
                "seed \(seed): \(type)"
            )
        }
    }

    @Test func concurrentReviewValuesAreAConflictAndOneWriteIsNot() {
        let record = RecordRef(type: "patient", id: Fixture.id(.patient))
        var state = RecordState()
        state.apply(Change.test(record, "familyName", .assign, "Ruiz", replica: "a", counter: 1))
        #expect(RecordFields(type: .patient, state: state).conflictedFields.isEmpty)
        state.apply(Change.test(record, "familyName", .assign, "RUIZ", replica: "b", counter: 1))
        state.apply(Change.test(record, "phone", .assign, "1", replica: "a", counter: 2))
        state.apply(Change.test(record, "phone", .assign, "2", replica: "b", counter: 2))
        let fields = RecordFields(type: .patient, state: state)
        // familyName is a review register; phone is last-writer-wins, never in conflict.
        #expect(fields.conflictedFields == ["familyName"])
        #expect(fields.string("phone") == "2")
        #expect(
            fields.string("familyName")
                == MaterializedRecord(type: .patient, id: record.id, state: state).string("familyName")
        )
    }

    /// A state of `type` whose every field is, at random: unset, written once, written concurrently by up to
    /// three replicas, or written and then replaced; values are drawn from the field's statuses, other text,
    /// numbers and booleans.
    static func randomState(of type: RecordType, record: RecordRef, _ generator: inout SeededGenerator) -> RecordState {
        var state = RecordState()
        let texts: [Value] = [
            "active", "inactive", "deceased", "completed", "requested", "entered-in-error", "cancelled", "a", "b",
            .string(Fixture.id(.team)), .int(3), .bool(true),
        ]
        var counter: UInt64 = 0
        for spec in CareModel.fields(of: type) {
            let shape = generator.next() % 4
            guard shape > 0 else { continue }
            let operation: Operation =
                switch spec.policy {
                case .set: .add
                case .log: .append
                case .lww, .review, .status: .assign
                }
            let writers = shape == 2 ? 1 + Int(generator.next() % 3) : 1
            var written: [Change] = []
            for writer in 0..<writers {
                counter += 1
                let change = Change.test(
                    record,
                    spec.name,
                    operation,
                    texts[Int(generator.next() % UInt64(texts.count))],
                    replica: "r\(writer)",
                    counter: counter,
                    millis: 1_000 + generator.next() % 5
                )
                state.apply(change)
                written.append(change)
            }
            if shape == 3, operation == .assign {
                counter += 1
                state.apply(
                    Change.test(
                        record,
                        spec.name,
                        .assign,
                        texts[Int(generator.next() % UInt64(texts.count))],
                        replica: "r9",
                        counter: counter,
                        replaces: written.map(\.id)
                    )
                )
            }
        }
        return state
    }

}
