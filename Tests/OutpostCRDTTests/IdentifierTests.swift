import Foundation
import OutpostCRDT
import Testing

struct IdentifierTests {
    @Test(arguments: ["laptop-7", "server", "A", "a_b-C9", String(repeating: "x", count: 64)])
    func validReplicaIDsAreAccepted(text: String) throws {
        let id = try #require(ReplicaID(text))
        #expect(id.rawValue == text)
        #expect(id.description == text)
        #expect(ReplicaID.isValid(text))
    }

    @Test(arguments: ["", String(repeating: "x", count: 65), "with space", "slash/ed", "dot.ted", "é", "tab\t", "🙂"])
    func invalidReplicaIDsAreRefused(text: String) {
        #expect(ReplicaID(text) == nil)
        #expect(!ReplicaID.isValid(text))
    }

    @Test func replicaIDsDecodeOnlyWhenValid() throws {
        let decoder = JSONDecoder()
        #expect(try decoder.decode(ReplicaID.self, from: Data(#""tablet-2""#.utf8)) == ReplicaID("tablet-2"))
        #expect(throws: DecodingError.self) { try decoder.decode(ReplicaID.self, from: Data(#""bad id""#.utf8)) }
        #expect(String(decoding: try JSONEncoder().encode(ReplicaID(unchecked: "r1")), as: UTF8.self) == #""r1""#)
    }

    @Test func changeIDsParseAndPrintAsReplicaSlashCounter() throws {
        let id = try #require(ChangeID("laptop-7/42"))
        #expect(id.replica == ReplicaID("laptop-7"))
        #expect(id.counter == 42)
        #expect(id.description == "laptop-7/42")
        #expect(ChangeID(id.description) == id)
        let largest = ChangeID(replica: ReplicaID(unchecked: "r"), counter: .max)
        #expect(ChangeID(largest.description) == largest)
    }

    @Test(arguments: [
        "", "laptop", "laptop/", "/1", "laptop/0", "laptop/-1", "laptop/1x", "laptop/ 1", "bad id/1", "a/b/1",
        "laptop/18446744073709551616",
    ])
    func malformedChangeIDsAreRefused(text: String) {
        #expect(ChangeID(text) == nil)
    }

    /// Bug: `ChangeID.init?(_:)` parses the counter with `UInt64(_:)`, which also takes a leading `+` and
    /// leading zeros, so one id has several spellings and text → id → text does not round-trip.
    @Test(arguments: ["laptop/+5", "laptop/05", "laptop/007"])
    func onlyTheCanonicalSpellingOfAChangeIDIsAccepted(text: String) {
        let parsed = ChangeID(text)
        #expect(parsed == nil, "'\(text)' parsed as \(parsed?.description ?? "nil")")
    }

    @Test func changeIDsOrderByReplicaThenCounter() {
        let a2 = ChangeID(replica: ReplicaID(unchecked: "a"), counter: 2)
        let a10 = ChangeID(replica: ReplicaID(unchecked: "a"), counter: 10)
        let b1 = ChangeID(replica: ReplicaID(unchecked: "b"), counter: 1)
        #expect([b1, a10, a2].sorted() == [a2, a10, b1])
    }

    @Test func changeIDsCodeAsTheirText() throws {
        let id = ChangeID(replica: ReplicaID(unchecked: "tablet-2"), counter: 9)
        let data = try JSONEncoder().encode(id)
        #expect(
            String(decoding: data, as: UTF8.self) == #""tablet-2\/9""#
                || String(decoding: data, as: UTF8.self) == #""tablet-2/9""#
        )
        #expect(try JSONDecoder().decode(ChangeID.self, from: data) == id)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ChangeID.self, from: Data(#""tablet-2/0""#.utf8))
        }
    }
}

struct SortableIDTests {
    @Test(arguments: propertySeeds)
    func idsAreTwentySixValidCharactersAndCarryTheirMillis(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        let millis = UInt64.random(in: 0...0xFFFF_FFFF_FFFF, using: &random)
        let id = SortableID.make(millis: millis, using: &random)
        #expect(id.count == 26, "seed \(seed)")
        #expect(SortableID.isValid(id), "seed \(seed): \(id)")
        #expect(SortableID.millis(of: id) == millis, "seed \(seed): \(id)")
    }

    @Test(arguments: propertySeeds)
    func idsMadeInALaterMillisecondSortAfter(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let earlier = UInt64.random(in: 0..<0xFFFF_FFFF_FFFF, using: &random)
        let later = UInt64.random(in: (earlier + 1)...0xFFFF_FFFF_FFFF, using: &random)
        let first = SortableID.make(millis: earlier, using: &random)
        let second = SortableID.make(millis: later, using: &random)
        #expect(first < second, "seed \(seed): \(first) vs \(second)")
    }

    @Test func theSameSeedMakesTheSameIDsAndAnotherSeedOthers() {
        func ids(seed: UInt64) -> [String] {
            var random = SeededGenerator(seed: seed)
            return (0..<20).map { SortableID.make(millis: 1_700_000_000_000 + UInt64($0), using: &random) }
        }
        #expect(ids(seed: 7) == ids(seed: 7))
        #expect(Set(ids(seed: 7)).isDisjoint(with: ids(seed: 8)))
        #expect(Set(ids(seed: 7)).count == 20)
    }

    @Test func theEncodingOfKnownTimesIsFixed() {
        var random = SeededGenerator(seed: 1)
        #expect(SortableID.make(millis: 0, using: &random).prefix(10) == "0000000000")
        #expect(SortableID.make(millis: 0xFFFF_FFFF_FFFF, using: &random).prefix(10) == "7ZZZZZZZZZ")
        #expect(SortableID.make(millis: 1_700_000_000_000, using: &random).prefix(10) == "01HF7YAT00")
    }

    @Test func everyByteIsADigitExactlyWhenTheAlphabetHasIt() {
        // The check reads a string's bytes in place and other sequences byte by byte: both agree with the
        // alphabet for every byte, in the first place (at most '7': 48 bits of time) and in the others.
        let base = Array("01HF7YAT00ABCDEFGHJKMNPQRS".utf8)
        for byte in UInt8.min...UInt8.max {
            for place in [0, 1, 25] {
                var bytes = base
                bytes[place] = byte
                let expected = SortableID.alphabet.contains(byte) && (place > 0 || byte <= UInt8(ascii: "7"))
                #expect(SortableID.isValid(bytes: bytes) == expected, "byte \(byte) at \(place)")
                #expect(SortableID.isValid(bytes: bytes.lazy.map { $0 }) == expected, "byte \(byte) at \(place)")
                if let text = String(validating: bytes, as: UTF8.self) {
                    #expect(SortableID.isValid(text) == expected, "byte \(byte) at \(place)")
                }
            }
        }
    }

    @Test(arguments: [
        "", "01HF7YAT00", "01hf7yat00abcdefghjkmnpqrs", "81HF7YAT00ABCDEFGHJKMNPQRS", "01HF7YAT00ABCDEFGHJKMNPQRSX",
        "01HF7YAT00ABCDEFGHIJKLMNOP", "01HF7YAT00ABCDEFGHJKMNPQRU", "01HF7YAT00ABCDEFGHJKMNPQ\u{E9}",
        "01HF7YAT00ABCDEFGHJKMNPQR", "01HF7YAT00ABCDEFGHJKMNPQR\u{0}", "\u{0}1HF7YAT00ABCDEFGHJKMNPQRS",
    ])
    func malformedIDsAreRefused(text: String) {
        #expect(!SortableID.isValid(text))
        #expect(SortableID.millis(of: text) == nil)
    }

    @Test func theSeededGeneratorRepeatsItsSequence() {
        var first = SeededGenerator(seed: 42)
        var second = SeededGenerator(seed: 42)
        let a = (0..<5).map { _ in first.next() }
        #expect(a == (0..<5).map { _ in second.next() })
        #expect(Set(a).count == 5)
    }

    @Test func anIdsBitsGiveTheIdBackAndOnlyAValidIdHasBits() {
        var generator = SeededGenerator(seed: 7)
        for index in 0..<200 {
            let millis = UInt64(index) * 7_919_113 % (1 << 48)
            let id = SortableID.make(millis: millis, using: &generator)
            let bits = Array(id.utf8).withUnsafeBufferPointer { SortableID.bits(of: $0) }
            #expect(bits?.millis == millis && bits.map(SortableID.text) == id, "\(id)")
        }
        for text in [
            "01jwmckyew8y2z3yfnj58p8xpg", "81JWMCKYEW8Y2Z3YFNJ58P8XPG", "01JWMCKYEW8Y2Z3YFNJ58P8XP",
            "01JWMCKYEW8Y2Z3YFNJ58P8XPI",
        ] {
            #expect(Array(text.utf8).withUnsafeBufferPointer { SortableID.bits(of: $0) } == nil, "\(text)")
        }
        #expect(SortableID.Bits(millis: 1 << 48, high: 0, low: 0) == nil)
        #expect(SortableID.Bits(millis: 0, high: 1 << 40, low: 0) == nil)
    }
}
