import OutpostCRDT
import OutpostModel
import Testing

struct RecordIDTests {
    @Test func everyTypeHasADistinctThreeLetterPrefix() {
        let prefixes = RecordType.allCases.map(\.idPrefix)
        #expect(Set(prefixes).count == RecordType.allCases.count)
        #expect(prefixes.allSatisfy { $0.count == 3 })
        #expect(RecordType.patient.idPrefix == "pat")
        #expect(RecordType.task.idPrefix == "tsk")
    }

    @Test func madeIdsParseAsTheirTypeOnly() throws {
        var generator = SeededGenerator(seed: 42)
        let patient = PatientID.make(millis: 1_780_000_000_000, using: &generator)
        #expect(patient.rawValue.hasPrefix("pat_"))
        #expect(patient.rawValue.count == 30)
        #expect(PatientID(patient.rawValue) == patient)
        #expect(TaskID(patient.rawValue) == nil)
        #expect(patient.millis == 1_780_000_000_000)
        #expect(patient.ref == RecordRef(type: "patient", id: patient.rawValue))
        #expect(PatientID("pat_") == nil)
        #expect(PatientID("pat_not-a-sortable-id-at-all") == nil)
        #expect(PatientID(patient.rawValue.lowercased()) == nil)
    }

    @Test func idsMadeLaterSortAfterEarlierOnes() {
        var generator = SeededGenerator(seed: 7)
        let ids = (0..<200).map { TaskID.make(millis: 1_700_000_000_000 + UInt64($0) * 3, using: &generator) }
        #expect(ids == ids.sorted())
        #expect(ids.map(\.rawValue) == ids.map(\.rawValue).sorted())
    }

    @Test func sameSeedGivesSameIds() {
        var first = SeededGenerator(seed: 9)
        var second = SeededGenerator(seed: 9)
        #expect(SiteID.make(millis: 5, using: &first) == SiteID.make(millis: 5, using: &second))
    }

    @Test func typeIsInferredFromThePrefix() {
        for type in RecordType.allCases {
            let id = Fixture.id(type)
            #expect(RecordType(idPrefixOf: id) == type)
            #expect(RecordType.ref(forID: id) == RecordRef(type: type.rawValue, id: id))
            #expect(type.isValidID(id))
        }
        #expect(RecordType(idPrefixOf: "xyz_01JD") == nil)
        #expect(RecordType(idPrefixOf: "patient") == nil)
        #expect(RecordType.ref(forID: "pat_short") == nil)
    }

    @Test func idsOfTheWrongShapeAreRefused() {
        let id = Fixture.id(.patient)
        let body = String(id.dropFirst(4))
        let short = String(body.dropLast())
        let lower = body.lowercased()
        let accented = "\u{E9}" + String(body.dropFirst(2))
        let texts: [String] = [
            "", "pat", "pat_", "pat-" + body, "PAT_" + body, "tsk_" + body, "pat_" + short, id + "0",
            "pat__" + String(body.dropFirst()), "pat_" + lower, "pat_" + accented, "pa\u{E9}" + body,
        ]
        for text in texts {
            #expect(!RecordType.patient.isValidID(text), "\(text)")
            #expect(PatientID(text) == nil, "\(text)")
        }
        #expect(RecordType.patient.isValidID(id) && RecordType.patient.isValidID(Substring(id)))
        // A substring in the middle of a longer text is read in place too.
        let inside = ("x" + id + "y").dropFirst().dropLast()
        #expect(RecordType.patient.isValidID(inside) && !RecordType.task.isValidID(inside))
        #expect(!RecordType.patient.isValidID(("x" + id + "y").dropFirst()))
    }

    @Test func everyTypeMakesIdsOfTheOneIdLength() {
        var generator = SeededGenerator(seed: 3)
        for type in RecordType.allCases {
            let id = type.makeID(millis: 1_700_000_000_000, using: &generator)
            #expect(id.utf8.count == RecordType.idLength, "\(type)")
            #expect(type.isValidID(id), "\(type)")
        }
    }

    @Test func typedIdsRoundTripThroughCodable() throws {
        let id = try #require(PatientID(Fixture.id(.patient)))
        let data = try JSONEncoderShim.encode(id)
        #expect(try JSONEncoderShim.decode(PatientID.self, data) == id)
        #expect(throws: (any Error).self) { try JSONEncoderShim.decode(TeamID.self, data) }
    }
}
