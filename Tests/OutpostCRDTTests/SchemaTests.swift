import OutpostCRDT
import OutpostTestSupport
import Testing

struct SchemaTests {
    private func change(
        type: String = ThingSchema.type,
        field: String,
        _ operation: Operation,
        replaces: [ChangeID] = []
    ) -> Change {
        Change(
            id: ChangeID(replica: ReplicaID(unchecked: "r"), counter: 99),
            record: RecordRef(type: type, id: "t0"),
            field: field,
            operation: operation,
            value: "v",
            replaces: replaces,
            clock: Timestamp(millis: 1, counter: 0),
            author: "p"
        )
    }

    /// A document with a little of everything in it, to show that refusals leave it as it was.
    private func populated() throws -> Document {
        try CRDTLaws.document(schema: ThingSchema.schema, receiving: [EditScenario(seed: 1).changes])
    }

    private func expectRefused(
        _ change: Change,
        code: CRDTError.Code,
        sourceLocation: SourceLocation = #_sourceLocation
    )
        throws
    {
        var document = try populated()
        let before = document.canonicalEncoding()
        let records = document.records
        let error = #expect(throws: CRDTError.self, sourceLocation: sourceLocation) { try document.apply(change) }
        #expect(error?.code == code, sourceLocation: sourceLocation)
        #expect(error?.message.contains(change.id.description) == true, sourceLocation: sourceLocation)
        #expect(document.canonicalEncoding() == before, sourceLocation: sourceLocation)
        #expect(document.records == records, sourceLocation: sourceLocation)
        #expect(throws: CRDTError.self, sourceLocation: sourceLocation) { try ThingSchema.schema.check(change) }
    }

    @Test func anUnknownRecordTypeIsRefused() throws {
        try expectRefused(change(type: "nothing", field: ThingSchema.lwwField, .assign), code: .unknownRecordType)
    }

    @Test func anUnknownFieldIsRefused() throws {
        try expectRefused(change(field: "noSuchField", .assign), code: .unknownField)
    }

    /// A schema's policies are found by searching sorted copies of ``Schema/types``: every policy it holds is found
    /// by its type and field, and a name only near one is not.
    @Test func everyPolicyIsFoundByItsTypeAndFieldAndNoNearName() {
        let schema = Schema(types: [
            ThingSchema.type: ThingSchema.schema.types[ThingSchema.type] ?? [:], "another": ["aField": .log],
        ])
        for (type, fields) in schema.types {
            for (field, policy) in fields { #expect(schema.policy(type: type, field: field)?.name == policy.name) }
        }
        #expect(schema.policy(type: ThingSchema.type, field: String(ThingSchema.lwwField.dropLast())) == nil)
        #expect(schema.policy(type: ThingSchema.type, field: ThingSchema.lwwField + "s") == nil)
        #expect(schema.policy(type: "anothe", field: "aField") == nil)
        #expect(schema.policy(type: "", field: "") == nil)
        #expect((try? schema.check(change(type: "another", field: "aField", .append)))?.name == MergePolicy.log.name)
    }

    static let allowed: [String: Set<Operation>] = [
        ThingSchema.lwwField: [.assign],
        ThingSchema.reviewField: [.assign],
        ThingSchema.statusField: [.assign],
        ThingSchema.setField: [.add, .remove],
        ThingSchema.logField: [.append],
    ]

    @Test(arguments: ThingSchema.fields, Operation.allCases)
    func eachPolicyAcceptsOnlyItsOperations(field: String, operation: Operation) throws {
        let candidate = change(field: field, operation)
        if Self.allowed[field]?.contains(operation) == true {
            #expect(try ThingSchema.schema.check(candidate) == ThingSchema.policy(of: field))
            var document = Document(schema: ThingSchema.schema)
            try document.apply(candidate)
            #expect(document.records[candidate.record]?.fields[field] != nil)
        } else {
            #expect(!ThingSchema.policy(of: field).allows(operation))
            try expectRefused(candidate, code: .operationNotAllowed)
        }
    }

    @Test func aLogAppendThatReplacesAnythingIsRefused() throws {
        let replaced = ChangeID(replica: ReplicaID(unchecked: "r"), counter: 1)
        try expectRefused(
            change(field: ThingSchema.logField, .append, replaces: [replaced]),
            code: .operationNotAllowed
        )
    }

    @Test func aRefusalInTheMiddleOfABatchKeepsTheChangesBeforeIt() throws {
        var document = Document(schema: ThingSchema.schema)
        let good = change(field: ThingSchema.lwwField, .assign)
        let bad = change(field: "noSuchField", .assign)
        #expect(throws: CRDTError.self) { try document.apply([good, bad]) }
        #expect(document.field(ThingSchema.record(0), ThingSchema.lwwField).liveIDs == [good.id])
    }

    @Test func policiesReportTheirNamesAndWhetherTheyAreRegisters() {
        let names = ThingSchema.fields.map { ThingSchema.policy(of: $0).name }
        #expect(names == ["lww", "review", "set", "log", "status"])
        #expect(
            ThingSchema.fields.filter { ThingSchema.policy(of: $0).isRegister } == [
                ThingSchema.lwwField, ThingSchema.reviewField, ThingSchema.statusField,
            ]
        )
    }
}
