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

    /// The server's check that a stored state holds only one replica's writes (`own=skip`) reads the encoding
    /// without making the state, and answers what the decoded state says; cut anywhere, the encoding is refused
    /// or answered, never read past its end.
    @Test(arguments: propertySeeds.prefix(50))
    func whetherOneReplicaWroteAStateIsReadWithoutDecodingIt(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        let first = try #require(scenario.changes.first).id.replica
        let everyone = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        let alone = try CRDTLaws.document(
            schema: scenario.schema,
            receiving: [
                scenario.changes.filter { $0.id.replica == first && $0.replaces.allSatisfy { $0.replica == first } }
            ]
        )
        for record in Array(everyone.records.values) + Array(alone.records.values) {
            var writer = BinaryWriter()
            writer.write(record)
            let writers = Set(
                record.fields.values.flatMap { field in field.live.map(\.id.replica) + field.superseded.map(\.replica) }
            )
            for replica in writers.union([ReplicaID(unchecked: "nobody")]) {
                var reader = BinaryReader(writer.bytes)
                let answer = try reader.recordStateIsWritten(onlyBy: replica)
                #expect(answer == writers.isSubset(of: [replica]), "seed \(seed), \(replica)")
            }
            for end in 0..<writer.bytes.count {
                var cut = BinaryReader(Array(writer.bytes[..<end]))
                _ = try? cut.recordStateIsWritten(onlyBy: first)
            }
        }
        let aloneWriters = alone.records.values.map { record in
            var writer = BinaryWriter()
            writer.write(record)
            var reader = BinaryReader(writer.bytes)
            return (try? reader.recordStateIsWritten(onlyBy: first)) ?? false
        }
        #expect(aloneWriters.contains(true), "seed \(seed): one replica's own records")
    }

    /// The reader reuses the replica id, author and site it read last when the next one has the same bytes: ids
    /// of the same length that differ, alternating ones and a site that comes and goes are each read as written,
    /// and a malformed replica id is refused after a well-formed one of its length.
    @Test func repeatedReplicasAuthorsAndSitesAreReadAsWritten() throws {
        let writes = [
            ("site-a", "per_1", "sit_1"), ("site-a", "per_1", nil), ("site-b", "per_2", "sit_1"),
            ("site-a", "per_2", "sit_2"), ("site-b", "per_1", "sit_2"),
        ].enumerated().map { index, parts in
            Write(
                id: ChangeID(replica: ReplicaID(unchecked: parts.0), counter: UInt64(index + 1)),
                value: "v",
                clock: Timestamp(millis: UInt64(index), counter: 0),
                author: parts.1,
                site: parts.2
            )
        }
        let state = RecordState(fields: [
            "one": try #require(FieldState(live: Array(writes.prefix(3)), superseded: [])),
            "two": try #require(FieldState(live: Array(writes.suffix(2)), superseded: [writes[0].id, writes[2].id])),
        ])
        var writer = BinaryWriter()
        writer.write(state)
        var reader = BinaryReader(writer.bytes)
        #expect(try reader.readRecordState() == state)
        #expect(reader.isAtEnd)

        var bad = BinaryWriter()
        bad.write(ChangeID(replica: ReplicaID(unchecked: "site-a"), counter: 1))
        bad.write(ChangeID(replica: ReplicaID(unchecked: "site a"), counter: 2))
        var badReader = BinaryReader(bad.bytes)
        #expect(try badReader.readChangeID().replica.rawValue == "site-a")
        #expect(throws: CRDTError.self) { try badReader.readChangeID() }
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
