import OutpostCRDT

/// The care model: record types, the field table, validation, views and change construction.
///
/// Every field of every record type is declared once, in `CareModel+Fields.swift`; everything else
/// (the CRDT ``schema``, validation, views, the generator, docs/model.md) reads that table.
public enum CareModel {
    /// The rules of task status (FHIR Task codes): `completed`, `cancelled` and `failed` end the work and
    /// beat a concurrent non-terminal status; `entered-in-error` beats everything.
    public static let taskStatusRules = StatusRules(
        terminal: ["completed", "cancelled", "failed"],
        overriding: ["entered-in-error"]
    )

    /// The merge policy of every field, for the CRDT (`Document`, the local store, the server).
    public static let schema = Schema(
        types: Dictionary(
            uniqueKeysWithValues: RecordType.allCases.map { type in
                (type.rawValue, Dictionary(uniqueKeysWithValues: fields(of: type).map { ($0.name, $0.policy) }))
            }
        )
    )

    /// The fields of `type`, in table order.
    public static func fields(of type: RecordType) -> [FieldSpec] {
        indexes[type.ordinal].specs
    }

    /// The spec of `field` of `type`, or `nil` when the type has no such field.
    public static func spec(_ type: RecordType, _ field: String) -> FieldSpec? {
        let byName = indexes[type.ordinal].byName
        let slot = byName.sortedSlot(of: field, by: \.name)
        return slot.found ? byName[slot.index] : nil
    }

    /// Where `field` is in `type`'s ``fields(of:)``, `nil` when the type has no such field.
    static func position(_ type: RecordType, _ field: String) -> Int? {
        indexes[type.ordinal].position(of: field)
    }

    /// The specs of `type`'s fields sorted by name (what ``RecordFields`` searches, as a record state's fields).
    public static func specsSortedByName(of type: RecordType) -> [FieldSpec] {
        indexes[type.ordinal].byName
    }

    /// The record types of the practice's structure, which only an administrator's token may write (protocol/README.md
    /// section 11): the server refuses them to any other (`forbidden`), and a device whose token is another's
    /// refuses them to its user first.
    public static let structureTypes: Set<RecordType> = [.practice, .site, .person, .team, .subgroup]

    /// The order in which an input that creates records naming each other writes them: a type's rank is one more than
    /// the highest rank of the other types its fields name (the practice, sites and subgroups first; then people,
    /// teams, patients, and their tasks, observations and encounters).
    /// Written in rank order, a new record's references name records written before it, as a server judging a push
    /// change by change requires (protocol/README.md, section 5).
    public static let creationRank: [RecordType: Int] = {
        var ranks: [RecordType: Int] = [:]
        func rank(_ type: RecordType, visiting: Set<RecordType>) -> Int {
            if let known = ranks[type] { return known }
            var result = 0
            for spec in fields(of: type) {
                guard case .reference(let target) = spec.kind, target != type, !visiting.contains(target) else {
                    continue
                }
                result = max(result, rank(target, visiting: visiting.union([type])) + 1)
            }
            ranks[type] = result
            return result
        }
        for type in RecordType.allCases { _ = rank(type, visiting: []) }
        return ranks
    }()

    /// `type`'s ``creationRank``.
    public static func creationRank(of type: RecordType) -> Int {
        creationRank[type] ?? 0
    }

    /// Which ranks an input's records come in, noted one record at a time, and the readings that write them in
    /// ``creationRank`` order: one (`nil`: every record as it comes) when the input gives them in that order,
    /// otherwise one per rank.
    public struct CreationOrder: Sendable {
        /// The highest rank noted.
        public private(set) var highest = 0
        /// Whether no record came after one of a higher rank.
        public private(set) var isInOrder = true

        public init() {}

        /// Notes the next record's type.
        public mutating func note(_ type: RecordType) {
            let rank = CareModel.creationRank(of: type)
            if rank < highest { isInOrder = false }
            highest = max(highest, rank)
        }

        /// The readings that write the records in rank order: `nil` for one reading of every record, or the rank
        /// each reading writes.
        public var passes: [Int?] { isInOrder ? [nil] : (0...highest).map { $0 } }
    }

    /// For record types that belong to a patient (tasks, observations, encounters), the field naming the
    /// patient; for the local store's `ownerField`.
    public static let ownerField: [String: String] = [
        RecordType.task.rawValue: "patient",
        RecordType.observation.rawValue: "patient",
        RecordType.encounter.rawValue: "patient",
    ]

    /// The status values that retire a record of `type` (records are retired, never deleted): for example
    /// `inactive`, `deceased` and `entered-in-error` for patients; only `entered-in-error` for tasks,
    /// observations and encounters, whose other statuses are part of the care record.
    public static func retiredStatuses(of type: RecordType) -> Set<String> {
        switch type {
        case .practice, .site, .person, .team, .subgroup: ["inactive"]
        case .patient: ["inactive", "deceased", "entered-in-error"]
        case .task, .observation, .encounter: ["entered-in-error"]
        }
    }

    /// The FHIR Encounter class (v3 ActCode) of each encounter kind: `office` is `AMB`, `ed-visit` is
    /// `EMER`, `admission` is `IMP`, and so on.
    public static let encounterClass: [String: String] = [
        "office": "AMB",
        "specialist": "AMB",
        "virtual": "VR",
        "home": "HH",
        "school": "FLD",
        "ed-visit": "EMER",
        "admission": "IMP",
    ]

    /// Each type's fields, by ``RecordType/ordinal``: found by a binary search of their names, not by hashing
    /// the type and the name (an import looks a spec up several times for every field of every record; two hashed
    /// look-ups took about 57 ns, a search about 14).
    private static let indexes: [FieldIndex] = {
        var indexes: [FieldIndex] = []
        for type in RecordType.allCases {
            precondition(type.ordinal == indexes.count, "RecordType.ordinal follows allCases")
            indexes.append(FieldIndex(table[type] ?? []))
        }
        return indexes
    }()

    /// One type's fields, in table order and sorted by name.
    private struct FieldIndex: Sendable {
        /// In table order.
        let specs: [FieldSpec]
        /// Sorted by name.
        let byName: [FieldSpec]
        /// For each of ``byName``, its place in ``specs``.
        let positions: [Int]

        init(_ specs: [FieldSpec]) {
            self.specs = specs
            let sorted = specs.indices.sorted { specs[$0].name < specs[$1].name }
            byName = sorted.map { specs[$0] }
            positions = sorted
            // The search finds a name only among names strictly sorted: each once.
            precondition(zip(byName, byName.dropFirst()).allSatisfy { $0.name < $1.name }, "a field named twice")
        }

        /// Where the field `name` is in ``specs``.
        func position(of name: String) -> Int? {
            let slot = byName.sortedSlot(of: name, by: \.name)
            return slot.found ? positions[slot.index] : nil
        }
    }
}
