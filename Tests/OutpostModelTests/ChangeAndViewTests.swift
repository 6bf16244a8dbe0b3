import OutpostCRDT
import OutpostModel
import OutpostSamples
import Testing

struct ChangeAndViewTests {
    let patientID = Fixture.id(.patient, 4)
    let subgroup = Fixture.id(.subgroup, 2)
    let otherSubgroup = Fixture.id(.subgroup, 5)
    let team = Fixture.id(.team, 3)

    var draft: DraftRecord {
        DraftRecord(
            type: .patient,
            id: patientID,
            fields: [
                "givenName": ["Ana"], "familyName": ["Reyes"], "birthDate": ["1950-02-03"], "sex": ["female"],
                "subgroup": [.string(subgroup)], "primaryTeam": [.string(team)], "status": ["active"],
                "conditions": ["I10", "E11.9"], "notes": ["First note.", "Second note."], "phone": [.null],
            ]
        )
    }

    /// A replica that numbers its changes.
    struct Replica {
        let id: ReplicaID
        var counter: UInt64 = 0
        init(_ name: String) { id = ReplicaID(unchecked: name) }
        mutating func next() -> ChangeID {
            counter += 1
            return ChangeID(replica: id, counter: counter)
        }
    }

    func created(_ replica: inout Replica) -> [Change] {
        CareModel.creationChanges(
            for: draft,
            nextID: { replica.next() },
            clock: Timestamp(millis: 1000),
            author: "per_a",
            site: nil
        )
    }

    @Test func creationMakesOneChangePerValueWithThePolicysOperation() throws {
        var replica = Replica("a")
        let changes = created(&replica)
        #expect(changes.count == 11, "7 registers + 2 conditions + 2 notes; null phone left out")
        #expect(changes.map(\.id.counter) == Array(1...11))
        #expect(changes.filter { $0.field == "conditions" }.allSatisfy { $0.operation == .add })
        #expect(changes.filter { $0.field == "notes" }.allSatisfy { $0.operation == .append })
        #expect(changes.filter { $0.field == "sex" }.map(\.operation) == [.assign])
        #expect(changes.allSatisfy { $0.replaces.isEmpty && $0.record.id == patientID })

        var document = Document(schema: CareModel.schema)
        try document.apply(changes)
        let state = try #require(document.records[draft.ref])
        let record = MaterializedRecord(type: .patient, id: patientID, state: state)
        #expect(record.string("givenName") == "Ana")
        #expect(record.values("conditions") == ["E11.9", "I10"])
        #expect(record.values("notes") == ["First note.", "Second note."])
        let view = try #require(PatientView(record))
        #expect(view.displayName == "Reyes, Ana")
        #expect(view.subgroup?.rawValue == subgroup)
        #expect(view.conditions == ["E11.9", "I10"])
        #expect(view.birthDate == CalendarDate("1950-02-03"))
        #expect(!view.isRetired)
        #expect(TaskView(record) == nil)
    }

    @Test func concurrentReviewEditsAreFlaggedAndAnAssignResolvesThem() throws {
        var a = Replica("a")
        var b = Replica("b")
        var document = Document(schema: CareModel.schema)
        try document.apply(created(&a))
        let ref = draft.ref
        let seen = document.field(ref, "subgroup")
        let fromA = CareModel.editChange(
            .assign,
            record: ref,
            field: "subgroup",
            value: .string(otherSubgroup),
            current: seen,
            id: a.next(),
            clock: Timestamp(millis: 2000),
            author: "per_a",
            site: nil
        )
        let fromB = CareModel.editChange(
            .assign,
            record: ref,
            field: "subgroup",
            value: .string(Fixture.id(.subgroup, 6)),
            current: seen,
            id: b.next(),
            clock: Timestamp(millis: 2001),
            author: "per_b",
            site: nil
        )
        #expect(fromA.replaces == seen.liveIDs)
        try document.apply([fromA, fromB])
        var record = MaterializedRecord(type: .patient, id: patientID, state: try #require(document.records[ref]))
        #expect(record.conflictedFields == ["subgroup"])
        #expect(record.fields["subgroup"]?.isConflict == true)
        // The export's direct path writes a conflict as the record does.
        let direct = MaterializedRecord.canonicalJSONBytes(
            type: .patient,
            id: patientID,
            state: try #require(document.records[ref])
        )
        #expect(direct == record.canonicalJSONBytes())

        let resolve = CareModel.editChange(
            .assign,
            record: ref,
            field: "subgroup",
            value: .string(otherSubgroup),
            current: document.field(ref, "subgroup"),
            id: a.next(),
            clock: Timestamp(millis: 3000),
            author: "per_a",
            site: nil
        )
        try document.apply(resolve)
        record = MaterializedRecord(type: .patient, id: patientID, state: try #require(document.records[ref]))
        #expect(record.conflictedFields.isEmpty)
        #expect(record.string("subgroup") == otherSubgroup)

        let history = CareModel.subgroupHistory(created(&b) + [fromA, fromB, resolve])
        #expect(history.map(\.subgroup) == [subgroup, otherSubgroup, Fixture.id(.subgroup, 6), otherSubgroup])
        #expect(history.last?.from == CalendarDate(millis: 3000))
    }

    @Test func removeNamesEveryObservedTag() throws {
        var a = Replica("a")
        var b = Replica("b")
        let ref = draft.ref
        var document = Document(schema: CareModel.schema)
        try document.apply(created(&a))
        let again = CareModel.editChange(
            .add,
            record: ref,
            field: "conditions",
            value: "I10",
            current: document.field(ref, "conditions"),
            id: b.next(),
            clock: Timestamp(millis: 1500),
            author: "per_b",
            site: nil
        )
        try document.apply(again)
        let current = document.field(ref, "conditions")
        let remove = CareModel.editChange(
            .remove,
            record: ref,
            field: "conditions",
            value: "I10",
            current: current,
            id: a.next(),
            clock: Timestamp(millis: 2000),
            author: "per_a",
            site: nil
        )
        #expect(remove.replaces == current.tags(of: "I10").sorted())
        #expect(remove.replaces.count == 2)
        try document.apply(remove)
        #expect(document.field(ref, "conditions").elements == ["E11.9"])
    }

    @Test func completedTaskBeatsAStaleEditAndViewsShowIt() throws {
        var replica = Replica("a")
        let taskID = Fixture.id(.task, 8)
        let task = DraftRecord(
            type: .task,
            id: taskID,
            fields: [
                "patient": [.string(patientID)], "team": [.string(team)], "kind": ["outreach"], "title": ["Call"],
                "status": ["requested"], "priority": ["routine"], "dueDate": ["2026-11-01"],
            ]
        )
        try CareModel.validate(task, today: Fixture.today)
        var document = Document(schema: CareModel.schema)
        try document.apply(
            CareModel.creationChanges(
                for: task,
                nextID: { replica.next() },
                clock: Timestamp(millis: 1),
                author: "per_a",
                site: nil
            )
        )
        let seen = document.field(task.ref, "status")
        for (value, millis) in [("completed", 10), ("in-progress", 20)] as [(Value, UInt64)] {
            try document.apply(
                CareModel.editChange(
                    .assign,
                    record: task.ref,
                    field: "status",
                    value: value,
                    current: seen,
                    id: replica.next(),
                    clock: Timestamp(millis: millis),
                    author: "per_a",
                    site: nil
                )
            )
        }
        let record = MaterializedRecord(type: .task, id: taskID, state: try #require(document.records[task.ref]))
        let view = try #require(TaskView(record))
        #expect(view.status == "completed")
        #expect(view.isClosed)
        #expect(!view.isOverdue(today: Fixture.today))
        #expect(view.patient?.rawValue == patientID)
    }

    @Test func canonicalJSONIsSortedAndIndependentOfChangeOrder() throws {
        var replica = Replica("a")
        let changes = created(&replica)
        var forward = Document(schema: CareModel.schema)
        var backward = Document(schema: CareModel.schema)
        try forward.apply(changes)
        try backward.apply(changes.reversed())
        let ref = draft.ref
        let one = MaterializedRecord(type: .patient, id: patientID, state: try #require(forward.records[ref]))
        let two = MaterializedRecord(type: .patient, id: patientID, state: try #require(backward.records[ref]))
        let json = one.canonicalJSON()
        #expect(json == two.canonicalJSON())
        #expect(
            json.hasPrefix(
                "{\"conflicts\":[],\"fields\":{\"birthDate\":\"1950-02-03\",\"conditions\":[\"E11.9\",\"I10\"]"
            )
        )
        #expect(json.hasSuffix(",\"id\":\"\(patientID)\",\"type\":\"patient\"}"))
        #expect(json.contains("\"notes\":[{\"author\":\"per_a\",\"clock\":\"1000.0\",\"id\":\"a/"))
    }

    @Test func canonicalJSONFromAStateIsTheMaterializedRecords() throws {
        // Every type, with sets and logs: a generated practice written by two replicas, so that every register
        // is written twice (the second later) and every set and log holds both replicas' writes.
        let dump = PracticeGenerator(seed: 3, size: .small).generate()
        var document = Document(schema: CareModel.schema)
        try document.apply(
            try dump.changes(replica: ReplicaID(unchecked: "a"), clock: Timestamp(millis: 1), author: "per_a")
        )
        try document.apply(
            try dump.changes(
                replica: ReplicaID(unchecked: "b"),
                clock: Timestamp(millis: 2),
                author: "per_b",
                site: Fixture.id(.site, 1)
            )
        )
        #expect(document.records.count == dump.records.count)
        for (ref, state) in document.records {
            let type = try #require(RecordType(rawValue: ref.type))
            let record = MaterializedRecord(type: type, id: ref.id, state: state)
            #expect(
                MaterializedRecord.canonicalJSONBytes(type: type, id: ref.id, state: state)
                    == record.canonicalJSONBytes(),
                "\(ref)"
            )
        }
    }

    @Test func retiredRecordsAreRecognised() {
        let retired = MaterializedRecord(
            type: .patient,
            id: patientID,
            fields: ["status": .single("deceased", isConflict: false)]
        )
        #expect(retired.isRetired)
        let task = MaterializedRecord(
            type: .task,
            id: Fixture.id(.task),
            fields: ["status": .single("cancelled", isConflict: false)]
        )
        #expect(!task.isRetired, "a cancelled task is closed, not retired")
    }
}
