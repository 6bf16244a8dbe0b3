import OutpostCRDT
import OutpostModel
import Testing

/// `CareModel.closesConflict`: which changes settle a conflict, whatever their shape.
struct ResolutionRuleTests {
    let patient = RecordRef(type: "patient", id: Fixture.id(.patient))

    func change(
        _ id: String,
        _ field: String,
        _ value: Value,
        replaces: [String] = [],
        operation: OutpostCRDT.Operation = .assign
    ) -> Change {
        Change(
            id: ChangeID(id)!,
            record: patient,
            field: field,
            operation: operation,
            value: value,
            replaces: replaces.map { ChangeID($0)! },
            clock: Timestamp(millis: 1_780_000_000_000),
            author: "replica:a"
        )
    }

    /// A record whose birth date holds two concurrent values (a/1 and b/1) and whose phone holds one.
    var conflicted: RecordState {
        var state = RecordState()
        state.apply(change("a/1", "birthDate", "1961-07-24"))
        state.apply(change("b/1", "birthDate", "1961-07-25"))
        state.apply(change("a/2", "phone", "555-0100"))
        return state
    }

    @Test func replacingEveryConcurrentValueCloses() {
        #expect(
            CareModel.closesConflict(
                change("c/1", "birthDate", "1961-07-26", replaces: ["a/1", "b/1"]),
                in: conflicted
            )
        )
    }

    @Test func replacingOneValueWithTheOthersValueCloses() {
        #expect(CareModel.closesConflict(change("c/1", "birthDate", "1961-07-25", replaces: ["a/1"]), in: conflicted))
    }

    @Test func replacingOneValueWithAThirdValueLeavesTheConflictOpen() {
        #expect(!CareModel.closesConflict(change("c/1", "birthDate", "1961-07-26", replaces: ["a/1"]), in: conflicted))
    }

    @Test func aResolutionNoteIsAResolutionAndOtherFieldsAreNot() {
        #expect(
            CareModel.closesConflict(change("c/1", "resolutions", "checked ID", operation: .append), in: conflicted)
        )
        #expect(!CareModel.closesConflict(change("c/1", "phone", "555-0101", replaces: ["a/2"]), in: conflicted))
        #expect(
            !CareModel.closesConflict(
                change("c/1", "birthDate", "1961-07-26", replaces: ["a/1", "b/1"]),
                in: RecordState()
            )
        )
    }
}
