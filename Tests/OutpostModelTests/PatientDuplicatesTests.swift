import OutpostCRDT
import Testing

@testable import OutpostModel

/// Likely duplicate patients: accents, typos, swapped names and dates, blocking, and what is not a pair.
struct PatientDuplicatesTests {
    private func patient(_ seed: UInt64, _ fields: [String: String], status: String = "active") -> MaterializedRecord {
        var values = fields.mapValues { FieldValue.single(.string($0), isConflict: false) }
        values["status"] = .single(.string(status), isConflict: false)
        return MaterializedRecord(type: .patient, id: Fixture.id(.patient, seed), fields: values)
    }

    private let ana = ["givenName": "Ana", "familyName": "Núñez", "birthDate": "1961-04-02", "phone": "(406) 555-0101"]

    @Test func accentsTyposAndSwappedDatesStillPair() throws {
        let patients = [
            patient(1, ana),
            patient(
                2,
                ["givenName": "Anna", "familyName": "Nunez", "birthDate": "1961-02-04", "phone": "406.555.0101"]
            ),
            patient(3, ["givenName": "Boris", "familyName": "Ivanov", "birthDate": "1961-07-19"]),
        ]
        let pairs = PatientDuplicates.find(patients)
        let pair = try #require(pairs.first)
        #expect(pairs.count == 1)
        #expect(Set([pair.first, pair.second]) == [patients[0].id, patients[1].id])
        #expect(pair.first < pair.second)
        #expect(
            pair.evidence == [
                "birthDate one digit or day and month swapped", "familyName equal but for accents",
                "givenName one typo",
                "phone equal",
            ]
        )
        #expect(pair.score >= PatientDuplicates.threshold)
    }

    @Test func anMRNMatchOutweighsAFullNameChange() throws {
        let a = patient(1, ana.merging(["mrn": "A-1001"]) { $1 })
        let b = patient(2, ["givenName": "Ana", "familyName": "Okafor", "birthDate": "1961-04-02", "mrn": "a-1001"])
        let pair = try #require(PatientDuplicates.find([a, b]).first)
        #expect(pair.evidence.first == "mrn equal")
        #expect(pair.score > 0.9)
    }

    @Test func differentPeopleAndRetiredPatientsAreNotListed() {
        let twin = patient(2, ["givenName": "Eva", "familyName": "Núñez", "birthDate": "1961-04-02", "sex": "female"])
        let brother = patient(3, ["givenName": "Ana", "familyName": "Núñez", "birthDate": "1958-04-02"])
        let retired = patient(4, ana, status: "inactive")
        let pairs = PatientDuplicates.find([patient(1, ana.merging(["sex": "male"]) { $1 }), twin, brother, retired])
        #expect(pairs.isEmpty, "\(pairs)")
    }

    @Test func nameFoldingAndDistance() {
        #expect(PatientDuplicates.fold("  Ñúñez-O'Brien ") == "nunez o brien")
        #expect(PatientDuplicates.distance("nunez", "nuenz") == 1)
        #expect(PatientDuplicates.distance("ana", "anna") == 1)
        #expect(PatientDuplicates.distance("kitten", "sitting") == 3)
    }
}
