import Foundation
import OutpostCRDT
import OutpostModel
import OutpostSamples
import Testing

/// `DumpRecord(plainJSON:)`, the reading `outpost import` gives each record of a practice file before
/// `JSONDecoder`: whatever it reads, it reads as `JSONDecoder` does, and what it cannot read it leaves to it.
struct PlainJSONTests {
    static func decoded(_ bytes: [UInt8]) -> DumpRecord? {
        try? JSONDecoder().decode(DumpRecord.self, from: Data(bytes))
    }

    /// Each record's JSON in a dump's text: one record per line, between the header's line and the closing one.
    static func recordLines(_ dump: PracticeDump) -> [[UInt8]] {
        Array(dump.jsonText().utf8).split(separator: UInt8(ascii: "\n")).dropFirst().dropLast().map { line in
            Array(line.last == UInt8(ascii: ",") ? line.dropLast() : line)
        }
    }

    @Test func everyRecordOfAGeneratedPracticeIsReadPlainlyAsJSONDecoderReadsIt() throws {
        let dump = PracticeGenerator(seed: 5, size: .small).generate()
        let lines = Self.recordLines(dump)
        #expect(lines.count == dump.records.count)
        for (line, record) in zip(lines, dump.records) {
            let plain = try #require(DumpRecord(plainJSON: line), "\(String(decoding: line, as: UTF8.self))")
            #expect(plain == record)
            #expect(plain == Self.decoded(line))
        }
    }

    @Test(arguments: [
        // Read plainly: the same as JSONDecoder.
        (#"{"type":"task","id":"tsk_1","fields":{}}"#, true),
        (#" { "id" : "x" , "type" : "patient" , "fields" : { "a" : null , "b" : [ 1 , -2 , 0 , true ] } } "#, true),
        (#"{"type":"t","id":"i","fields":{"n":-0,"m":9223372036854775807,"s":"Zoë ☕","e":[]}}"#, true),
        // Left to JSONDecoder: escapes, numbers that are not plain integers, repeated or unknown members.
        (#"{"type":"t","id":"i","fields":{"s":"a\"b"}}"#, false),
        (#"{"type":"t","id":"i","fields":{"s":"a\u0041"}}"#, false),
        (#"{"type":"t","id":"i","fields":{"n":1.0}}"#, false),
        (#"{"type":"t","id":"i","fields":{"n":1e3}}"#, false),
        (#"{"type":"t","id":"i","fields":{"n":01}}"#, false),
        (#"{"type":"t","id":"i","fields":{"n":9223372036854775808}}"#, false),
        (#"{"type":"t","id":"i","fields":{"n":-}}"#, false),
        (#"{"type":"t","id":"i","fields":{"a":1,"a":2}}"#, false),
        (#"{"type":"t","type":"u","id":"i","fields":{}}"#, false),
        (#"{"type":"t","id":"i","fields":{},"extra":1}"#, false),
        (#"{"type":"t","id":"i"}"#, false),
        (#"{"type":"t","id":"i","fields":{"o":{}}}"#, false),
        (#"{"type":"t","id":"i","fields":{"l":[[1]]}}"#, false),
        (#"{"type":"t","id":"i","fields":{"b":truex}}"#, false),
        (#"{"type":"t","id":"i","fields":{"b":nul}}"#, false),
        (#"{"type":"t","id":"i","fields":{}} x"#, false),
        (#"{"type":"t","id":"i","fields":{},}"#, false),
        (#"{"type":"t","id":"i","fields":{"l":[1,]}}"#, false),
        (#"{"type":1,"id":"i","fields":{}}"#, false),
    ])
    func aPlainRecordIsReadAsJSONDecoderReadsItAndAnyOtherIsLeftToIt(json: String, isPlain: Bool) {
        let bytes = Array(json.utf8)
        let plain = DumpRecord(plainJSON: bytes)
        #expect((plain != nil) == isPlain, "\(json)")
        if let plain { #expect(plain == Self.decoded(bytes), "\(json)") }
    }

    @Test func invalidUTF8AndControlCharactersAreLeftToJSONDecoder() {
        let prefix = Array(#"{"type":"t","id":"i","fields":{"s":""#.utf8)
        let suffix = Array(#""}}"#.utf8)
        for inside: [UInt8] in [[0xC3], [0xFF, 0x41], [0xED, 0xA0, 0x80], [0x0A], [0x1F]] {
            #expect(DumpRecord(plainJSON: prefix + inside + suffix) == nil, "\(inside)")
        }
    }

    /// Seeded mutations of real records (a byte changed, removed, doubled, or a span cut): whenever the plain
    /// reading answers, JSONDecoder decodes the same bytes to the same record; it never accepts what
    /// JSONDecoder refuses.
    @Test(arguments: 0..<20)
    func aMutatedRecordIsReadPlainlyOnlyAsJSONDecoderReadsIt(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let dump = PracticeGenerator(seed: seed, size: .small).generate()
        let alphabet = Array(#"{}[]":,-0123456789 truefalsnl\"#.utf8) + [0x00, 0x0A, 0xC3, 0xA9, 0xFF]
        var read = 0
        for line in Self.recordLines(dump).prefix(200) {
            var bytes = line
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] = alphabet.randomElement(using: &random)!
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(bytes[at], at: at)
                default: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &random)))
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            guard let plain = DumpRecord(plainJSON: bytes) else { continue }
            read += 1
            #expect(plain == Self.decoded(bytes), "seed \(seed): \(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(read > 0, "seed \(seed): no mutation left a plain record")
    }
}
