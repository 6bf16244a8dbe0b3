import Foundation
import OutpostModel
import OutpostSamples
import Testing

struct FixtureTests {
    @Test func smallPracticeFixtureIsTheGeneratorsOutputAndValid() throws {
        let bytes = try Fixture.bytes("fixtures/practice-small.json")
        let generated = PracticeGenerator(seed: 1, size: .small).generate()
        #expect(bytes == Array(generated.jsonText().utf8), "regenerate: outpost-bench generate --seed 1 --size small")
        let decoded = try PracticeDump.decode(bytes)
        #expect(decoded == generated)
        try decoded.validate(today: PracticeGenerator.asOf)
    }

    /// Every fixture under fixtures/invalid has one problem, refused with this code on this field.
    static let invalid: [(file: String, code: ModelError.Code, field: String, hidden: String?)] = [
        ("bad-format", .invalidDump, "dump.format", nil),
        ("bad-version", .invalidDump, "dump.version", nil),
        ("not-json", .invalidDump, "dump", nil),
        ("unknown-record-type", .unknownRecordType, "invoice", nil),
        ("unknown-field", .unknownField, "practice.color", nil),
        ("missing-required", .required, "practice.name", nil),
        ("invalid-enum", .invalidEnum, "site.kind", nil),
        ("future-birth-date", .invalidDate, "patient.birthDate", "2999-01-01"),
        ("malformed-birth-date", .invalidDate, "patient.birthDate", "04/05/1970"),
        ("negative-cents", .outOfRange, "subgroup.monthlyPaymentCents", nil),
        ("dangling-reference", .unknownReference, "team.subgroup", nil),
        ("wrong-id-prefix", .invalidID, "site", nil),
        ("duplicate-id", .duplicateID, "site", nil),
        ("register-as-array", .wrongKind, "practice.name", nil),
        ("bad-phone", .invalidFormat, "patient.phone", "call me maybe"),
        ("missing-practice-record", .unknownReference, "dump.practice.id", nil),
    ]

    @Test(arguments: invalid.indices)
    func invalidDumpIsRefusedNamingTheFieldAndRule(index: Int) throws {
        let expected = Self.invalid[index]
        let bytes = try Fixture.bytes("fixtures/invalid/\(expected.file).json")
        let error = modelError { () throws(ModelError) in
            try PracticeDump.decode(bytes).validate(today: PracticeGenerator.asOf)
        }
        let refused = try #require(error, "\(expected.file) was accepted")
        #expect(refused.code == expected.code, "\(expected.file): \(refused)")
        #expect(refused.field == expected.field, "\(expected.file): \(refused)")
        #expect(!refused.rule.isEmpty)
        if let hidden = expected.hidden {
            #expect(!refused.description.contains(hidden), "\(expected.file) leaked a sensitive value")
        }
    }

    @Test func everyInvalidFixtureIsListed() throws {
        let files = try FileManager.default.contentsOfDirectory(
            atPath: Fixture.root.appendingPathComponent("fixtures/invalid").path
        )
        let listed = Set(Self.invalid.map { "\($0.file).json" })
        #expect(Set(files.filter { $0.hasSuffix(".json") }) == listed)
    }
}
