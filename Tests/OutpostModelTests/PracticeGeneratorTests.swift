import OutpostCRDT
import OutpostModel
import OutpostSamples
import Testing

struct PracticeGeneratorTests {
    @Test func sameSeedGivesIdenticalBytes() {
        let first = PracticeGenerator(seed: 11, size: .small).generate().jsonText()
        let second = PracticeGenerator(seed: 11, size: .small).generate().jsonText()
        #expect(first == second)
        #expect(first != PracticeGenerator(seed: 12, size: .small).generate().jsonText())
    }

    @Test(arguments: [PracticeGenerator.Size.small, .medium])
    func everyGeneratedRecordPassesValidation(size: PracticeGenerator.Size) throws {
        let dump = PracticeGenerator(seed: 3, size: size).generate()
        try dump.validate(today: PracticeGenerator.asOf)
        #expect(dump.records.filter { $0.type == "patient" }.count == size.patients)
    }

    @Test func referencePracticeMatchesTheDesignWorkload() throws {
        let dump = PracticeGenerator(seed: 1, size: .reference).generate()
        try dump.validate(today: PracticeGenerator.asOf)
        let byType = Dictionary(grouping: dump.records, by: \.type)
        #expect(byType["patient"]?.count == 2500)
        #expect(byType["team"]?.count == 10)
        #expect(byType["task"]?.count == 50000)
        #expect(byType["subgroup"]?.count == 4)
        #expect((byType["observation"]?.count ?? 0) >= 2500)
        #expect((byType["encounter"]?.count ?? 0) >= 2500)

        let subgroupKey = Dictionary(
            uniqueKeysWithValues: (byType["subgroup"] ?? []).compactMap { record -> (String, String)? in
                guard case .value(.string(let key)) = record.fields["key"] else { return nil }
                return (record.id, key)
            }
        )
        var mix: [String: Int] = [:]
        for patient in byType["patient"] ?? [] {
            guard case .value(.string(let subgroup)) = patient.fields["subgroup"] else { continue }
            mix[subgroupKey[subgroup] ?? "?", default: 0] += 1
        }
        #expect(mix == ["healthy": 1125, "at-risk": 625, "chronic": 500, "complex": 250])
        let payments = (byType["subgroup"] ?? []).compactMap { record -> Int64? in
            guard case .value(.int(let cents)) = record.fields["monthlyPaymentCents"] else { return nil }
            return cents
        }
        #expect(payments.sorted() == [500, 1000, 2500, 10000])
    }

    @Test func idsAreSortableAndUnique() {
        let dump = PracticeGenerator(seed: 5, size: .small).generate()
        let ids = dump.records.map(\.id)
        #expect(Set(ids).count == ids.count)
        let times = ids.compactMap { id in RecordType.ref(forID: id).map { _ in String(id.dropFirst(4).prefix(10)) } }
        #expect(times.count == ids.count)
        #expect(times == times.sorted())
    }

    @Test func generatedChangesApplyToACRDTDocument() throws {
        let dump = PracticeGenerator(seed: 2, size: .small).generate()
        let changes = try dump.changes(
            replica: ReplicaID(unchecked: "gen"),
            clock: Timestamp(millis: 1),
            author: "per_test"
        )
        var document = Document(schema: CareModel.schema)
        try document.apply(changes)
        #expect(document.records.count == dump.records.count)
        #expect(document.conflicts().isEmpty)
        let expected = dump.records.reduce(0) { total, record in
            total
                + record.fields.values.reduce(0) { sum, field in
                    switch field {
                    case .value: sum + 1
                    case .list(let values): sum + values.count
                    }
                }
        }
        #expect(changes.count == expected)
    }
}
