import Foundation
import OutpostCRDT
import OutpostTestSupport
import Testing

/// A field state read back from storage or the wire must keep the invariants that apply and merge rely on.
struct FieldStateCodingTests {
    private func write(_ replica: String, _ counter: UInt64) -> Write {
        Write(
            id: ChangeID(replica: ReplicaID(unchecked: replica), counter: counter),
            value: "v",
            clock: Timestamp(millis: counter, counter: 0),
            author: "p",
            site: nil
        )
    }

    @Test(arguments: propertySeeds.prefix(50))
    func fieldStatesRoundTripThroughJSONAndBinary(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        let document = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        for record in document.records.values {
            let json = try JSONEncoder().encode(record)
            #expect(try JSONDecoder().decode(RecordState.self, from: json) == record, "seed \(seed)")
            var writer = BinaryWriter()
            writer.write(record)
            var reader = BinaryReader(writer.bytes)
            #expect(try reader.readRecordState() == record, "seed \(seed)")
            #expect(reader.isAtEnd, "seed \(seed)")
        }
    }

    @Test func theValidatingInitializerRefusesUnsortedOrOverlappingParts() {
        let (a, b) = (write("a", 1), write("b", 1))
        #expect(FieldState(live: [a, b], superseded: []) != nil)
        #expect(FieldState(live: [a], superseded: [b.id]) != nil)
        #expect(FieldState(live: [b, a], superseded: []) == nil)
        #expect(FieldState(live: [a, a], superseded: []) == nil)
        #expect(FieldState(live: [a], superseded: [b.id, a.id]) == nil)
        #expect(FieldState(live: [a], superseded: [a.id]) == nil)
    }

    private func json(_ write: Write) -> String {
        #"{"id":"\#(write.id)","value":"v","clock":{"ms":\#(write.clock.millis),"c":0},"author":"p"}"#
    }

    /// Bug: `FieldState`'s synthesized `init(from:)` does not run the checks of `init?(live:superseded:)`
    /// (which `BinaryReader` does run). A state decoded from JSON with unsorted live writes breaks the binary
    /// searches of `apply` and `merge`: a change that replaces a live write leaves it live (and superseded).
    @Test func decodingJSONRefusesAnUnsortedFieldState() throws {
        let unsorted = [write("c", 1), write("b", 1), write("a", 1)]
        let text = #"""
            {"live":[\#(unsorted.map(json).joined(separator: ","))],"superseded":[]}
            """#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(FieldState.self, from: Data(text.utf8)) }

        // What goes wrong when it is accepted: the replaced write `a/1` stays live.
        guard var state = try? JSONDecoder().decode(FieldState.self, from: Data(text.utf8)) else { return }
        state.apply(
            Change(
                id: ChangeID(replica: ReplicaID(unchecked: "d"), counter: 1),
                record: ThingSchema.record(0),
                field: ThingSchema.lwwField,
                operation: .assign,
                value: "new",
                replaces: [unsorted[2].id],
                clock: Timestamp(millis: 9, counter: 0),
                author: "p"
            )
        )
        #expect(!state.liveIDs.contains(unsorted[2].id), "a replaced write is still live")
    }
}
