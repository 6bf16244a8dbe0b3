import OutpostCRDT
import OutpostTestSupport
import Testing

/// A record state holds its fields sorted by name: however they arrive (changes in any order, an encoding's
/// fields in or out of order, a merge), the state is the one the fields make, and a name is held once.
struct RecordStateTests {
    private static func field(_ counter: UInt64, _ value: String) -> FieldState {
        var state = FieldState()
        state.apply(
            Change(
                id: ChangeID(replica: ReplicaID(unchecked: "r"), counter: counter),
                record: RecordRef(type: "thing", id: "t1"),
                field: "f",
                operation: .assign,
                value: .string(value),
                replaces: [],
                clock: Timestamp(millis: counter, counter: 0),
                author: "p",
                site: nil
            )
        )
        return state
    }

    private static func read(_ reader: inout BinaryReader) throws -> RecordState { try reader.readRecordState() }

    @Test(arguments: propertySeeds.prefix(100))
    func fieldsAreHeldSortedAndOnceWhateverOrderTheyCameIn(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        var random = SeededGenerator(seed: seed)
        let document = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        for record in document.records.values {
            let names = record.sortedFields.map(\.name)
            #expect(names == names.sorted() && Set(names).count == names.count, "seed \(seed)")
            #expect(RecordState(fields: record.fields) == record, "seed \(seed)")
            var rebuilt = RecordState()
            for field in record.sortedFields.shuffled(using: &random) {
                let inserted = rebuilt.insertDecoded(field.name, field.state)
                #expect(inserted, "seed \(seed)")
            }
            #expect(rebuilt == record, "seed \(seed)")
            for field in record.sortedFields {
                let insertedAgain = rebuilt.insertDecoded(field.name, FieldState())
                #expect(!insertedAgain, "seed \(seed)")
                #expect(rebuilt.field(field.name) == field.state, "seed \(seed)")
            }
            #expect(rebuilt == record, "seed \(seed)")
            #expect(rebuilt.field("never written") == nil && rebuilt["never written"].isEmpty)
        }
    }

    /// The merge walks both states in name order; it must give what merging field by field gives.
    @Test(arguments: propertySeeds.prefix(100))
    func mergingKeepsEveryFieldOfEitherStateMergedByName(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        var random = SeededGenerator(seed: seed &+ 7)
        let left = try CRDTLaws.document(
            schema: scenario.schema,
            receiving: [scenario.changes.filter { _ in Bool.random(using: &random) }]
        )
        let right = try CRDTLaws.document(
            schema: scenario.schema,
            receiving: [scenario.changes.filter { _ in Bool.random(using: &random) }]
        )
        for ref in Set(left.records.keys).union(right.records.keys) {
            let mine = left.records[ref] ?? RecordState()
            let theirs = right.records[ref] ?? RecordState()
            var expected = mine.fields
            for (name, state) in theirs.fields { expected[name, default: FieldState()].merge(state) }
            var merged = mine
            merged.merge(theirs)
            #expect(merged == RecordState(fields: expected), "seed \(seed), \(ref)")
            var other = theirs
            other.merge(mine)
            #expect(other == merged, "seed \(seed), \(ref)")
        }
    }

    /// The stored form's reader takes fields in any order (its writer sorts them) and refuses a name twice.
    @Test func theStoredFormsReaderSortsFieldsAndRefusesANameTwice() throws {
        func encoded(_ fields: [(String, FieldState)]) -> [UInt8] {
            var writer = BinaryWriter()
            writer.write(varint: UInt64(fields.count))
            for (name, state) in fields {
                writer.write(name)
                writer.write(state)
            }
            return writer.bytes
        }
        let a = Self.field(1, "one")
        let b = Self.field(2, "two")
        var reader = BinaryReader(encoded([("b", b), ("a", a)]))
        let state = try reader.readRecordState()
        #expect(state.sortedFields.map(\.name) == ["a", "b"])
        #expect(state == RecordState(fields: ["a": a, "b": b]))
        var sorted = BinaryWriter()
        sorted.write(state)
        #expect(sorted.bytes == encoded([("a", a), ("b", b)]))

        var twice = BinaryReader(encoded([("a", a), ("b", b), ("a", b)]))
        #expect(throws: CRDTError.self) { _ = try Self.read(&twice) }
        // Read for some fields only, a name twice is refused too, whether the repeated field is read or skipped.
        for fields: Set<String> in [[], ["a"], ["b"], ["a", "b"]] {
            var partly = BinaryReader(encoded([("a", a), ("b", b), ("a", b)]))
            #expect(throws: CRDTError.self, "\(fields)") { _ = try partly.readRecordState(fields: fields) }
            // A field whose writes are out of order is refused, read or skipped.
            var writer = BinaryWriter()
            writer.write(varint: 2)
            for name in ["a", "b"] {
                writer.write(name)
                writer.write(varint: 2)
                for counter in [UInt64(2), 1] {
                    writer.write(ChangeID(replica: ReplicaID(unchecked: "r"), counter: counter))
                    writer.write(Value.string("v"))
                    writer.write(Timestamp(millis: counter, counter: 0))
                    writer.write("p")
                    writer.write(optional: nil)
                }
                writer.write(varint: 0)
            }
            var disordered = BinaryReader(writer.bytes)
            #expect(throws: CRDTError.self, "\(fields)") { _ = try disordered.readRecordState(fields: fields) }
            var unsorted = BinaryReader(encoded([("b", b), ("a", a)]))
            #expect(
                try unsorted.readRecordState(fields: fields)
                    == RecordState(fields: state.fields.filter { fields.contains($0.key) })
            )
            #expect(unsorted.isAtEnd)
        }
    }

    /// A state read for some of its fields is the whole state's reading with only those fields, and reads to the
    /// same end; a state cut anywhere is refused as a whole reading refuses it (the server's push reads only the
    /// fields it judges: ``BinaryReader/readRecordState(fields:)``).
    @Test(arguments: propertySeeds.prefix(60))
    func aStateReadForSomeFieldsIsTheWholeReadingWithThoseFieldsOnly(seed: UInt64) throws {
        let scenario = EditScenario(seed: seed)
        var random = SeededGenerator(seed: seed &+ 11)
        let document = try CRDTLaws.document(schema: scenario.schema, receiving: [scenario.changes])
        for record in document.records.values {
            var writer = BinaryWriter()
            writer.write(record)
            let bytes = writer.bytes
            let names = record.fieldNames + ["never written"]
            let fields = Set(names.filter { _ in Bool.random(using: &random) })
            var reader = BinaryReader(bytes)
            let partial = try reader.readRecordState(fields: fields)
            #expect(reader.isAtEnd, "seed \(seed)")
            #expect(partial == RecordState(fields: record.fields.filter { fields.contains($0.key) }), "seed \(seed)")
            let cut = Int.random(in: 0..<bytes.count, using: &random)
            var short = BinaryReader(Array(bytes[..<cut]))
            #expect(throws: CRDTError.self, "seed \(seed), cut at \(cut)") {
                _ = try short.readRecordState(fields: fields)
            }
        }
    }
}
