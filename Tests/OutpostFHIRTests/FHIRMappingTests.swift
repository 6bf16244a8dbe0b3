import Foundation
import OutpostCRDT
import OutpostFHIR
import OutpostModel
import Testing

/// The FHIR mapping without a store: reading, mapping, planning against an index, exporting.
struct FHIRMappingTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/fhir")
    static let today = CalendarDate(year: 2026, month: 6, day: 1)!

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static func read(_ names: [String]) throws -> FHIRReader {
        var reader = FHIRReader()
        for name in names { try reader.read(name: name, bytes: try bytes(name)) }
        return reader
    }

    /// Plans with ids made from a counter, so tests can run twice the same.
    static func plan(
        _ reader: FHIRReader,
        index: FHIRIndex = FHIRIndex(),
        defaults: FHIRDefaults = FHIRDefaults(),
        keepsStructure: Bool = true
    ) throws -> FHIRImportPlan {
        var counter: UInt64 = 0
        return try FHIRPlanner.plan(
            try FHIRMapper(reader),
            index: index,
            defaults: defaults,
            today: today,
            keepsStructure: keepsStructure
        ) { type in
            counter += 1
            var generator = SeededGenerator(seed: counter)
            return type.makeID(millis: 1_780_000_000_000 + counter, using: &generator)
        }
    }

    /// The records a plan creates, as a store would hold them (changes applied to record states).
    static func records(_ plan: FHIRImportPlan) -> [MaterializedRecord] {
        var counter: UInt64 = 0
        let replica = ReplicaID("0000000000000001")!
        return plan.creations.map { creation in
            var state = RecordState()
            let changes = CareModel.creationChanges(
                for: creation.draft,
                nextID: {
                    counter += 1
                    return ChangeID(replica: replica, counter: counter)
                },
                clock: Timestamp(millis: 1_780_000_000_000),
                author: "test",
                site: nil
            )
            for change in changes { _ = state.apply(change) }
            return MaterializedRecord(type: creation.draft.type, id: creation.draft.id, state: state)
        }
    }

    static func index(_ records: [MaterializedRecord]) -> FHIRIndex {
        var index = FHIRIndex()
        for record in records { index.add(record) }
        return index
    }

    @Test func numbersKeepTheirWrittenText() throws {
        let json = try JSON.parse(Array(#"{"value": 7.20, "n": -0.5e2, "s": "a\u00e9\n"}"#.utf8))
        #expect(json["value"]?.number == "7.20")
        #expect(json["n"]?.number == "-0.5e2")
        #expect(json["s"]?.string == "aé\n")
        #expect(throws: JSON.SyntaxError.self) { try JSON.parse(Array(#"{"a": 1, "a": 2}"#.utf8)) }
        #expect(throws: JSON.SyntaxError.self) { try JSON.parse(Array(#"{"a": [1, 2"#.utf8)) }
    }

    @Test func aTransactionBundleReferringByURNMapsEveryResource() throws {
        let reader = try Self.read(["practice-bundle.json"])
        let plan = try Self.plan(reader, defaults: FHIRDefaults(team: "CareTeam/example"))
        let records = Self.records(plan)
        func one(_ type: RecordType) throws -> MaterializedRecord { try #require(records.first { $0.type == type }) }
        let patient = try one(.patient)
        #expect(patient.string("givenName") == "Peter James")
        #expect(patient.string("familyName") == "Chalmers")
        #expect(patient.string("birthDate") == "1974-12-25")
        #expect(patient.string("sex") == "male")
        #expect(patient.string("mrn") == "12345")
        #expect(patient.string("phone") == "(03) 5555 6473")
        #expect(patient.string("preferredLanguage") == "en-AU")
        #expect(patient.string("status") == "active")
        #expect(patient.values("conditions") == ["E11.9"])
        #expect(patient.values("allergies") == ["Penicillin"])
        #expect(patient.values("fhirIDs") == ["Patient/example"])
        let subgroup = try one(.subgroup)
        let team = try one(.team)
        let person = try one(.person)
        let site = try one(.site)
        #expect(patient.string("subgroup") == subgroup.id)
        #expect(patient.string("primaryTeam") == team.id)
        #expect(subgroup.string("key") == "chronic")
        #expect(subgroup.value("monthlyPaymentCents") == .int(2500))
        #expect(team.string("subgroup") == subgroup.id)
        #expect(team.string("leader") == person.id)
        #expect(person.string("role") == "physician")
        #expect(person.string("name") == "Dr Adam Careful")
        #expect(person.values("sites") == [.string(site.id)])
        #expect(try one(.practice).string("name") == "Health Level Seven International")

        let observations = records.filter { $0.type == .observation }
        let byCode = Dictionary(uniqueKeysWithValues: observations.map { ($0.string("code") ?? "", $0) })
        #expect(byCode["8480-6"]?.string("value") == "107")
        #expect(byCode["8462-4"]?.string("value") == "60")
        #expect(byCode["8480-6"]?.string("unit") == "mm[Hg]")
        #expect(byCode["8480-6"]?.string("effectiveAt") == "2012-09-17T00:00:00Z")
        #expect(byCode["4548-4"]?.string("value") == "7.20")
        #expect(byCode["4548-4"]?.string("effectiveAt") == "2013-04-02T08:30:10Z")
        #expect(observations.allSatisfy { $0.string("patient") == patient.id })
        let encounter = try one(.encounter)
        #expect(encounter.string("kind") == "ed-visit")
        #expect(encounter.string("occurredAt") == "2017-01-31T22:45:00Z")
        #expect(encounter.string("site") == site.id)
        let task = try one(.task)
        #expect(task.string("team") == team.id)
        #expect(task.string("kind") == "ed-follow-up")
        #expect(task.string("priority") == "urgent")
        #expect(task.string("dueDate") == "2017-02-08")
        #expect(task.values("notes") == ["Prefers mornings"])

        // What was not kept is counted by element path, never dropped silently.
        let lines = plan.issues.lines
        #expect(lines.contains("not kept: Patient.name (1)"))
        #expect(lines.contains("not kept: Patient.managingOrganization (1)"))
        #expect(lines.contains("not kept: Observation.performer (1)"))
        #expect(lines.contains("not kept: Condition.onsetDateTime (1)"))
        #expect(lines.contains { $0.hasPrefix("not kept: Location site.phone") })
    }

    @Test func importingTheSameDataAgainPlansNothing() throws {
        let reader = try Self.read(["practice-bundle.json"])
        let first = try Self.plan(reader, defaults: FHIRDefaults(team: "CareTeam/example"))
        let again = try Self.plan(reader, index: Self.index(Self.records(first)))
        #expect(first.creations.count == 11)
        #expect(again.isEmpty, "\(again.updates.map { "\($0.record).\($0.field)" })")
        #expect(again.unchanged == 11)
    }

    /// An import that may not change the practice's structure (a replica whose token is not an admin's) leaves out
    /// the structure it does not hold and its changes to the structure it holds, each noted, and imports the rest
    /// against the structure held; a record that needs a left-out one to exist is refused with why and what to do.
    @Test func anImportThatMayNotChangeTheStructureLeavesItOutAndImportsTheRest() throws {
        let first = try Self.plan(Self.read(["practice-bundle.json"]), defaults: FHIRDefaults(team: "CareTeam/example"))
        let structure = Self.records(first).filter { CareModel.structureTypes.contains($0.type) }
        let held = Self.index(structure)
        func id(_ type: RecordType) throws -> String { try #require(structure.first { $0.type == type }).id }
        // The same bundle with the care team renamed, and practitioners the store does not hold.
        let text = try #require(String(bytes: try Self.bytes("practice-bundle.json"), encoding: .utf8))
        var reader = FHIRReader()
        try reader.read(
            name: "renamed.json",
            bytes: Array(text.replacingOccurrences(of: "Peter's Care Plan Team", with: "Peter's team").utf8)
        )
        let people = "ndjson/Practitioner.ndjson"
        try reader.read(name: people, bytes: try Self.bytes(people))
        let newPeople = try Self.read([people]).resources.count

        let plan = try Self.plan(
            reader,
            index: held,
            defaults: FHIRDefaults(team: try id(.team)),
            keepsStructure: false
        )
        #expect(plan.creations.allSatisfy { !CareModel.structureTypes.contains($0.draft.type) })
        #expect(plan.creations.count == first.creations.count - structure.count)
        #expect(plan.updates.isEmpty, "\(plan.updates.map { "\($0.record).\($0.field)" })")
        #expect(plan.unchanged == structure.count, "the held structure, left as it is")
        let records = Self.records(plan)
        let patient = try #require(records.first { $0.type == .patient })
        #expect(patient.string("subgroup") == (try id(.subgroup)), "placed by the held subgroup's Group")
        #expect(patient.string("primaryTeam") == (try id(.team)))
        #expect(records.first { $0.type == .task }?.string("team") == (try id(.team)))
        #expect(records.first { $0.type == .encounter }?.string("site") == (try id(.site)), "the held location")
        let reason = FHIRImportSession.structureLeftOut
        #expect(plan.issues.lines.contains("not kept: CareTeam (\(reason)) (1)"), "\(plan.issues.lines)")
        #expect(plan.issues.lines.contains("not kept: Practitioner (\(reason)) (\(newPeople))"), "\(plan.issues.lines)")

        // Kept by an admin's import: the rename and the new practitioners.
        let admin = try Self.plan(reader, index: held, defaults: FHIRDefaults(team: "CareTeam/example", role: "rn"))
        #expect(admin.updates.contains { $0.record.type == "team" && $0.field == "name" })
        #expect(admin.creations.filter { $0.draft.type == .person }.count == newPeople)

        // Into a store with no structure: a task owned by the care team left out has no team to be filed under,
        // and a default naming that team is refused.
        let owned = text.replacingOccurrences(
            of: #""for": { "reference""#,
            with: #""owner": { "reference": "urn:uuid:5d1e8a3b-0002-4f6e-8a2b-9c9c9c9c0002" }, "for": { "reference""#
        )
        var ownedReader = FHIRReader()
        try ownedReader.read(name: "owned.json", bytes: Array(owned.utf8))
        let ownedRecords = Self.records(try Self.plan(ownedReader))
        let ownerTeam = try #require(ownedRecords.first { $0.type == .team })
        #expect(ownedRecords.first { $0.type == .task }?.string("team") == ownerTeam.id, "the owner is the team")
        #expect {
            try Self.plan(ownedReader, keepsStructure: false)
        } throws: { error in
            "\(error)".contains("Task.owner: names a CareTeam this import leaves out")
        }
        #expect {
            try Self.plan(ownedReader, defaults: FHIRDefaults(team: "CareTeam/example"), keepsStructure: false)
        } throws: { error in
            "\(error)".contains("CareTeam/example names a team this import leaves out")
        }
        // A task with no owner whose patient's team is the care team left out: no team either.
        let placed = text.replacingOccurrences(
            of: #""resourceType": "Patient","#,
            with: #""resourceType": "Patient", "extension": [{"url": ""#
                + FHIRVocabulary.extensionURL(.patient, "primaryTeam")
                + #"", "valueReference": {"reference": "urn:uuid:5d1e8a3b-0002-4f6e-8a2b-9c9c9c9c0002"}}],"#
        )
        var placedReader = FHIRReader()
        try placedReader.read(name: "placed.json", bytes: Array(placed.utf8))
        let placedRecords = Self.records(try Self.plan(placedReader))
        let placedTeam = try #require(placedRecords.first { $0.type == .team })
        #expect(placedRecords.first { $0.type == .task }?.string("team") == placedTeam.id, "the patient's team")
        #expect {
            try Self.plan(placedReader, keepsStructure: false)
        } throws: { error in
            "\(error)".contains("(the task's patient's team): names a CareTeam this import leaves out")
                && "\(error)".contains("--team")
        }
    }

    /// A task with no owner whose new patient has no team either has none to be filed under: the import is refused
    /// naming the task and `--team`, not with the model's bare "required".
    @Test func aTaskWithNoTeamAnywhereIsRefusedNamingTheTeamOption() throws {
        #expect {
            try Self.plan(Self.read(["practice-bundle.json"]))
        } throws: { error in
            "\(error)".contains("Task/follow-up: no team to file the task under")
                && "\(error)".hasSuffix("give one with --team")
        }
        #expect(
            try Self.plan(Self.read(["practice-bundle.json"]), defaults: FHIRDefaults(team: "CareTeam/example"))
                .creations.count == 11
        )
        // For a patient the store holds, --team does not help (it places the input's new patients): the patient is
        // given a team first.
        let unplaced = try Self.plan(Self.read(["ndjson/Patient.ndjson"]))
        let held = Self.index(Self.records(unplaced))
        var task = FHIRReader()
        try task.read(
            name: "task.ndjson",
            bytes: Array(
                #"{"resourceType":"Task","id":"t9","status":"requested","intent":"order","priority":"routine","code":{"coding":[{"system":"http://outpost.invalid/fhir/CodeSystem/task-kind","code":"outreach"}]},"description":"Call","for":{"reference":"Patient/p1"}}"#
                    .utf8
            )
        )
        #expect {
            try Self.plan(task, index: held, defaults: FHIRDefaults(team: "tea_01JWMCKG0EZVDB7887J503VJMX"))
        } throws: { error in
            "\(error)".contains("no team to file the task under")
                && "\(error)".contains("assign its patient a team first")
        }
    }

    @Test func newerDataUpdatesTheRecordItNames() throws {
        let reader = try Self.read(["practice-bundle.json"])
        let first = try Self.plan(reader, defaults: FHIRDefaults(team: "CareTeam/example"))
        var newer = FHIRReader()
        try newer.read(
            name: "newer.ndjson",
            bytes: Array(
                #"{"resourceType":"Patient","id":"example","name":[{"family":"Chalmers","given":["Peter","James"]}],"gender":"male","birthDate":"1974-12-25","telecom":[{"system":"phone","value":"03 9999 0000"}]}"#
                    .utf8
            )
        )
        let plan = try Self.plan(newer, index: Self.index(Self.records(first)))
        #expect(plan.creations.isEmpty)
        #expect(plan.updates.map(\.field) == ["phone"])
        #expect(plan.updates.first?.value == "03 9999 0000")
    }

    @Test func referencesResolveInAnyFileOrder() throws {
        let names = ["Observation", "Patient", "Group", "CareTeam", "PractitionerRole", "Practitioner"].map {
            "ndjson/\($0).ndjson"
        }
        let forward = try Self.plan(Self.read(names), defaults: FHIRDefaults(team: "CareTeam/t1"))
        let backward = try Self.plan(Self.read(names.reversed()), defaults: FHIRDefaults(team: "CareTeam/t1"))
        #expect(forward.creations.count == backward.creations.count)
        let records = Self.records(backward)
        let patients = records.filter { $0.type == .patient }
        let team = try #require(records.first { $0.type == .team })
        #expect(patients.count == 2)
        #expect(patients.allSatisfy { $0.string("primaryTeam") == team.id && $0.string("subgroup") != nil })
        let people = records.filter { $0.type == .person }
        #expect(Set(people.compactMap { $0.string("role") }) == ["physician", "rn"])
        #expect(team.values("members").count == 1)
        #expect(backward.issues.lines.contains("unmodelled code: Observation.code (1)"))
        #expect(backward.issues.lines.contains("not kept: Patient.maritalStatus (1)"))
    }

    /// A reading is kept only in a unit Outpost records its code in (``CareModel/observationUnits``); another unit
    /// leaves it out, counted, instead of keeping a value the scorecard would compare in the wrong unit.
    @Test func aReadingInAUnitItsCodeIsNotRecordedInIsLeftOutAndCounted() throws {
        func quantity(_ code: String, _ value: String, _ unit: String) -> String {
            #"{"code": {"coding": [{"system": "http://loinc.org", "code": "\#(code)"}]}, "#
                + #""valueQuantity": {"value": \#(value), "system": "http://unitsofmeasure.org", "code": "\#(unit)"}}"#
        }
        func observation(_ id: String, _ body: String) -> String {
            #"{"resource": {"resourceType": "Observation", "id": "\#(id)", "status": "final", "#
                + #""subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-05-01T09:00:00Z", "#
                + body.dropFirst() + "}"
        }
        let panel =
            #"{"code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}, "component": ["#
            + quantity("8480-6", "128", "mm[Hg]") + ", " + quantity("8462-4", "11", "kPa") + "]}"
        let bundle =
            #"{"resourceType": "Bundle", "type": "collection", "entry": ["#
            + #"{"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1960-01-02", "gender": "male"}}, "#
            + [
                observation("ifcc", quantity("4548-4", "53", "mmol/mol")),
                observation("mass", quantity("4548-4", "7.1", "mg/dL")),
                observation("slip", quantity("4548-4", "123", "%")),
                observation("bp", panel),
            ].joined(separator: ", ") + "]}"
        var reader = FHIRReader()
        try reader.read(name: "units.json", bytes: Array(bundle.utf8))
        let plan = try Self.plan(reader)
        let observations = Self.records(plan).filter { $0.type == .observation }
        #expect(
            Set(
                observations.map { "\($0.string("code") ?? "") \($0.string("value") ?? "") \($0.string("unit") ?? "")" }
            )
                == ["4548-4 53 mmol/mol", "8480-6 128 mm[Hg]"]
        )
        #expect(plan.issues.lines.contains("unmodelled code: Observation.valueQuantity.code (1)"))
        #expect(plan.issues.lines.contains("unmodelled code: Observation.component.valueQuantity.code (1)"))
        #expect(
            plan.issues.lines.contains(
                "not kept: Observation.valueQuantity.value (outside what the code can be in %) (1)"
            ),
            "\(plan.issues.lines)"
        )
        #expect(!plan.issues.lines.contains { $0.hasPrefix("unmodelled code: Observation.code ") })
    }

    /// The same resource twice with different content is refused, naming both places (it kept the last silently);
    /// the same resource twice as it was (a searchset including a patient twice) is one resource.
    @Test func aResourceTwiceWithDifferentContentIsRefusedNamingBoth() throws {
        func patient(_ birthDate: String) -> String {
            #"{"resourceType": "Patient", "id": "dup", "birthDate": "\#(birthDate)", "gender": "female"}"#
        }
        var twice = FHIRReader()
        try twice.read(name: "a.ndjson", bytes: Array((patient("1970-01-02") + "\n" + patient("1971-03-04")).utf8))
        let error = #expect(throws: FHIRError.self) { try Self.plan(twice) }
        #expect(error?.message.contains("a.ndjson:2: Patient/dup: the input holds this resource twice") == true)
        #expect(error?.message.contains("first at a.ndjson:1") == true, "\(String(describing: error))")
        #expect(error?.message.contains("1970") == false && error?.message.contains("1971") == false)

        var same = FHIRReader()
        try same.read(name: "b.ndjson", bytes: Array((patient("1970-01-02") + "\n" + patient("1970-01-02")).utf8))
        #expect(Self.records(try Self.plan(same)).filter { $0.type == .patient }.count == 1)
    }

    @Test func patientsNeitherTheDataNorTheDefaultsPlaceArePlannedAwaitingAssignment() throws {
        let names = ["Patient", "Group", "CareTeam", "PractitionerRole", "Practitioner"].map { "ndjson/\($0).ndjson" }
        let plan = try Self.plan(Self.read(names))
        #expect(plan.awaitingAssignment == 2)
        let patients = Self.records(plan).filter { $0.type == .patient }
        #expect(patients.count == 2)
        #expect(patients.allSatisfy { $0.string("primaryTeam") == nil && CareModel.isAwaitingAssignment($0) })
        for creation in plan.creations where creation.draft.type == .patient {
            // Valid only as a record created awaiting assignment: elsewhere the placement is required.
            try CareModel.validate(creation.draft, today: Self.today, awaitingAssignment: true)
            #expect(throws: ModelError.self) { try CareModel.validate(creation.draft, today: Self.today) }
        }
        let placed = try Self.plan(Self.read(names), defaults: FHIRDefaults(team: "CareTeam/t1"))
        #expect(placed.awaitingAssignment == 0)
    }

    @Test func malformedInputsNameTheFileLineAndElement() throws {
        func error(_ name: String) throws -> String {
            do {
                let reader = try Self.read([name])
                _ = try Self.plan(reader, defaults: FHIRDefaults(subgroup: "sub_x", team: "tea_x"))
            } catch let error as FHIRError {
                return error.message
            }
            Issue.record("\(name) was not refused")
            return ""
        }
        #expect(try error("invalid/not-json.json").hasPrefix("invalid/not-json.json:3: invalid JSON"))
        #expect(
            try error("invalid/wrong-type.json").contains("resourceType: 'Patiant' is not a resource Outpost imports")
        )
        #expect(try error("invalid/cut-off.ndjson").hasPrefix("invalid/cut-off.ndjson:2: invalid JSON"))
        let gender = try error("invalid/unknown-gender.json")
        #expect(gender.contains("Patient.gender: not a FHIR administrative gender"), "\(gender)")
        #expect(!gender.contains("'femal'"), "the value is not quoted: \(gender)")
        let dangling = try error("invalid/dangling-reference.json")
        #expect(dangling.hasPrefix("invalid/dangling-reference.json entry[0]: Observation.subject"), "\(dangling)")
    }

    /// An element of the wrong JSON type is named as such, not as missing; a byte order mark is skipped.
    @Test func anElementOfTheWrongTypeIsNamedAsSuchAndAByteOrderMarkIsSkipped() throws {
        func refusal(_ line: String) throws -> String {
            var reader = FHIRReader()
            do {
                try reader.read(name: "p.ndjson", bytes: Array(line.utf8))
                _ = try Self.plan(reader)
            } catch let error as FHIRError {
                return error.message
            }
            Issue.record("\(line) was not refused")
            return ""
        }
        let patient = #"{"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1970-01-02""#
        #expect(
            try refusal(#"{"resourceType": "Patient", "id": "p", "birthDate": 19700102}"#)
                .contains("Patient.birthDate: not a JSON string")
        )
        #expect(try refusal(patient + #", "name": "Jane Doe"}"#).contains("Patient.name: not a HumanName"))
        #expect(try refusal(#"{"resourceType": 5, "id": "p"}"#).contains("resourceType: not a JSON string"))
        var marked = FHIRReader()
        try marked.read(name: "bom.ndjson", bytes: FHIRReader.byteOrderMark + Array((patient + "}").utf8))
        #expect(Self.records(try Self.plan(marked)).contains { $0.type == .patient })
        let line = FHIRReader.byteOrderMark + Array((patient + "}").utf8)
        #expect(try FHIRReader.resource(line: line[...], file: "bom.ndjson", number: 1)?.key == "Patient/p")
    }

    @Test func newPatientsWithNoPlacementAreNotAReasonToRefuseTheFile() throws {
        // Before issue 13's placement rule this refused the file; now it plans them awaiting assignment.
        var reader = FHIRReader()
        try reader.read(name: "p.ndjson", bytes: Array(try Self.bytes("ndjson/Patient.ndjson")))
        #expect(try Self.plan(reader).awaitingAssignment == 2)
    }

    @Test func exportThenImportGivesTheSameRecords() throws {
        let reader = try Self.read(["practice-bundle.json"])
        let original = Self.records(try Self.plan(reader, defaults: FHIRDefaults(team: "CareTeam/example")))
        var lines: [String: [String]] = [:]
        for record in original {
            for resource in FHIRExporter.resources(of: record, lastUpdated: 1_780_000_000_000) {
                lines[resource.type, default: []].append(resource.json.text)
            }
        }
        var exported = FHIRReader()
        for (type, list) in lines.sorted(by: { $0.key > $1.key }) {
            try exported.read(name: "\(type).ndjson", bytes: Array(list.joined(separator: "\n").utf8))
        }
        let plan = try Self.plan(exported)
        #expect(plan.issues.isEmpty, "\(plan.issues.lines)")
        let copy = Self.records(plan)
        func values(_ records: [MaterializedRecord]) -> [String: [String: [Value]]] {
            Dictionary(
                uniqueKeysWithValues: records.map { record in
                    (record.id, record.fields.mapValues(\.values))
                }
            )
        }
        #expect(values(copy) == values(original))
    }

    @Test func exportedResourcesCarryTheirRequiredElements() throws {
        let reader = try Self.read(["practice-bundle.json"])
        let records = Self.records(try Self.plan(reader, defaults: FHIRDefaults(team: "CareTeam/example")))
        for record in records {
            for (type, json) in FHIRExporter.resources(of: record, lastUpdated: nil) {
                #expect(json["resourceType"]?.string == type)
                let id = try #require(json["id"]?.string)
                #expect(id.count <= 64 && !id.contains("_"))
                switch type {
                case "Observation": #expect(json["status"] != nil && json["code"] != nil)
                case "Encounter": #expect(json["status"] != nil && json["class"]?["code"] != nil)
                case "Task": #expect(json["status"] != nil && json["intent"]?.string == "order")
                case "Group": #expect(json["type"]?.string == "person" && json["actual"]?.bool == true)
                case "Condition": #expect(json["subject"] != nil && json["clinicalStatus"] != nil)
                case "AllergyIntolerance": #expect(json["patient"] != nil && json["clinicalStatus"] != nil)
                default: break
                }
            }
        }
    }
}
