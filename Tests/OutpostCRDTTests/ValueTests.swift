import Foundation
import OutpostCRDT
import Testing

struct ValueTests {
    static let samples: [Value] = [
        .null, false, true, 0, 1, -1, .int(.max), .int(.min), "", "1", "true", "null", "a", "b", "é🙂 \"quoted\"\n",
    ]

    @Test(arguments: samples)
    func valuesRoundTripThroughJSON(value: Value) throws {
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(Value.self, from: data) == value)
        let wrapped = try JSONEncoder().encode([value])
        #expect(try JSONDecoder().decode([Value].self, from: wrapped) == [value])
    }

    /// Skipping a value leaves the reader where reading it would: every other sample still reads back, and a
    /// string whose length runs past the end is refused, as reading it is.
    @Test func skippingAValueLandsOnTheNextOne() throws {
        var writer = BinaryWriter()
        for value in Self.samples { writer.write(value) }
        for skipped in Self.samples.indices {
            var reader = BinaryReader(writer.bytes)
            for (index, value) in Self.samples.enumerated() {
                if index == skipped { try reader.skipValue() } else { #expect(try reader.readValue() == value) }
            }
            #expect(reader.isAtEnd)
        }
        var truncated = BinaryReader([4, 9, 0x61])
        #expect(throws: CRDTError.self) { try truncated.skipValue() }
        var unknown = BinaryReader([7])
        #expect(throws: CRDTError.self) { try unknown.skipValue() }
    }

    @Test func valuesAreWrittenAsThemselvesInJSON() throws {
        let data = try JSONEncoder().encode([Value.null, true, 42, -7, "text", "1"])
        #expect(String(decoding: data, as: UTF8.self) == #"[null,true,42,-7,"text","1"]"#)
    }

    @Test(arguments: ["1.5", "[1]", #"{"a":1}"#, "18446744073709551615"])
    func otherJSONIsRefused(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Value.self, from: Data(json.utf8)) }
    }

    @Test func valuesHaveATotalOrderNullBooleansIntegersStrings() {
        let expected: [Value] = [
            .null, false, true, .int(.min), -1, 0, 1, .int(.max), "", "1", "a", "b", "null", "true",
        ]
        var random = SeededGenerator(seed: 3)
        #expect(expected.shuffled(using: &random).sorted() == expected)
        for a in Self.samples {
            #expect(!(a < a))
            for b in Self.samples {
                let relations = [a < b, b < a, a == b].filter { $0 }.count
                #expect(relations == 1, "\(a) vs \(b)")
                for c in Self.samples where a < b && b < c {
                    #expect(a < c, "\(a) < \(b) < \(c)")
                }
            }
        }
    }

    @Test func accessorsReadOnlyTheirOwnCase() {
        #expect(Value.string("x").stringValue == "x")
        #expect(Value.int(3).stringValue == nil)
        #expect(Value.int(3).intValue == 3)
        #expect(Value.bool(true).boolValue == true)
        #expect(Value.string("true").boolValue == nil)
        #expect(Value.null.isNull)
        #expect(!Value.string("").isNull)
    }
}
