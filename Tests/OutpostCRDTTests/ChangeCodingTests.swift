import Foundation
import OutpostCRDT
import Testing

struct ChangeCodingTests {
    /// A change as it appears on the wire (keys sorted).
    static let golden = #"""
        {"author":"person-1","clock":{"c":2,"ms":1700000000000},"field":"status","id":"laptop-7\/42","op":"assign","record":{"id":"task_1","type":"careTask"},"replaces":["laptop-7\/41","tablet-2\/9"],"site":"site-1","value":"completed"}
        """#

    static let change = Change(
        id: ChangeID(replica: ReplicaID(unchecked: "laptop-7"), counter: 42),
        record: RecordRef(type: "careTask", id: "task_1"),
        field: "status",
        operation: .assign,
        value: "completed",
        replaces: [
            ChangeID(replica: ReplicaID(unchecked: "tablet-2"), counter: 9),
            ChangeID(replica: ReplicaID(unchecked: "laptop-7"), counter: 41),
            ChangeID(replica: ReplicaID(unchecked: "tablet-2"), counter: 9),
        ],
        clock: Timestamp(millis: 1_700_000_000_000, counter: 2),
        author: "person-1",
        site: "site-1"
    )

    private func encode(_ change: Change) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(change), as: UTF8.self)
    }

    @Test func aChangeEncodesToTheGoldenJSON() throws {
        #expect(try encode(Self.change) == Self.golden)
    }

    @Test func theGoldenJSONDecodesToTheChange() throws {
        let decoded = try JSONDecoder().decode(Change.self, from: Data(Self.golden.utf8))
        #expect(decoded == Self.change)
        #expect(
            decoded.write
                == Write(id: decoded.id, value: "completed", clock: decoded.clock, author: "person-1", site: "site-1")
        )
    }

    @Test func replacesAreSortedAndDeduplicated() {
        #expect(Self.change.replaces.map(\.description) == ["laptop-7/41", "tablet-2/9"])
    }

    /// Bug: `Change`'s synthesized `init(from:)` bypasses `init(...)`, so a decoded change keeps `replaces`
    /// unsorted and duplicated, unlike the documented invariant, and differs from the same change made in code.
    @Test func decodingSortsAndDeduplicatesReplacesLikeTheInitializer() throws {
        let scrambled = Self.golden.replacingOccurrences(
            of: #""replaces":["laptop-7\/41","tablet-2\/9"]"#,
            with: #""replaces":["tablet-2\/9","laptop-7\/41","tablet-2\/9"]"#
        )
        #expect(scrambled != Self.golden)
        let decoded = try JSONDecoder().decode(Change.self, from: Data(scrambled.utf8))
        #expect(decoded.replaces.map(\.description) == ["laptop-7/41", "tablet-2/9"])
        #expect(decoded == Self.change)
    }

    @Test(arguments: OutpostCRDT.Operation.allCases)
    func everyOperationAndAMissingSiteRoundTrip(operation: OutpostCRDT.Operation) throws {
        let change = Change(
            id: ChangeID(replica: ReplicaID(unchecked: "r"), counter: 1),
            record: RecordRef(type: "thing", id: "t0"),
            field: "f",
            operation: operation,
            value: .null,
            clock: Timestamp(millis: 5, counter: 0),
            author: "p"
        )
        let json = try encode(change)
        #expect(!json.contains("site"))
        #expect(json.contains(#""op":"\#(operation.rawValue)""#))
        #expect(try JSONDecoder().decode(Change.self, from: Data(json.utf8)) == change)
    }

    @Test func aChangeWithABadIDIsRefused() {
        let bad = Self.golden.replacingOccurrences(of: #""id":"laptop-7\/42""#, with: #""id":"laptop 7\/42""#)
        #expect(bad != Self.golden)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Change.self, from: Data(bad.utf8)) }
    }
}
