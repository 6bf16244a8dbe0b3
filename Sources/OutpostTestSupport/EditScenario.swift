import OutpostCRDT

/// A seeded, random history of edits: 3 to 5 replicas edit a few ``ThingSchema`` records (every policy)
/// and exchange changes now and then, so that some writes are concurrent and some sequential.
///
/// An exchange delivers a prefix of the sender's ``SimulatedReplica/log`` (sometimes all of it), so
/// every replica's knowledge stays causally closed, as it is with real sync. Wall clocks drift, jump
/// backwards and disagree between replicas (within the skew bound). The same seed always gives the same
/// scenario. For example:
///
/// ```swift
/// let scenario = EditScenario(seed: 42)
/// let oracle = scenario.oracle
/// try CRDTLaws.assertConvergence(changes: scenario.changes, schema: scenario.schema, seed: 42)
/// ```
public struct EditScenario: Sendable {
    /// Sizes of a scenario.
    public struct Configuration: Sendable, Hashable {
        /// How many replicas take part.
        public var replicas: ClosedRange<Int>
        /// How many records they edit.
        public var records: ClosedRange<Int>
        /// How many steps (edits and exchanges) the scenario has.
        public var steps: ClosedRange<Int>
        /// The chance that a step is an exchange rather than an edit, in percent.
        public var exchangePercent: Int

        /// Creates a configuration.
        public init(
            replicas: ClosedRange<Int> = 3...5,
            records: ClosedRange<Int> = 1...3,
            steps: ClosedRange<Int> = 20...60,
            exchangePercent: Int = 30
        ) {
            self.replicas = replicas
            self.records = records
            self.steps = steps
            self.exchangePercent = exchangePercent
        }
    }

    /// The seed the scenario was generated from.
    public let seed: UInt64
    /// The schema (``ThingSchema/schema``).
    public var schema: Schema { ThingSchema.schema }
    /// The records edited.
    public let records: [RecordRef]
    /// The replicas, in their state at the end of the scenario (not fully synced).
    public private(set) var replicas: [SimulatedReplica]
    /// Every change authored, in the order authored (a causal order).
    public private(set) var changes: [Change]

    /// Values register fields draw from: few, so that concurrent writes sometimes agree.
    public static let registerValues: [Value] = ["a", "b", "c", 1, true, .null]
    /// Values the set field draws from.
    public static let setValues: [Value] = ["p", "q", "r"]

    /// Generates the scenario for `seed`.
    public init(seed: UInt64, configuration: Configuration = Configuration()) {
        self.seed = seed
        var random = SeededGenerator(seed: seed)
        let base: UInt64 = 1_700_000_000_000
        let replicaCount = Int.random(in: configuration.replicas, using: &random)
        replicas = (0..<replicaCount).map { index in
            SimulatedReplica(
                id: "r\(index)",
                schema: ThingSchema.schema,
                wallMillis: base + UInt64.random(in: 0...2_000, using: &random)
            )
        }
        records = (0..<Int.random(in: configuration.records, using: &random)).map(ThingSchema.record)
        changes = []
        let steps = Int.random(in: configuration.steps, using: &random)
        for _ in 0..<steps {
            let actor = Int.random(in: 0..<replicaCount, using: &random)
            // Wall clocks move mostly forward, sometimes not at all, sometimes backwards.
            switch Int.random(in: 0..<10, using: &random) {
            case 0: replicas[actor].wallMillis -= UInt64.random(in: 0...300, using: &random)
            case 1, 2: break
            default: replicas[actor].wallMillis += UInt64.random(in: 1...40, using: &random)
            }
            if Int.random(in: 0..<100, using: &random) < configuration.exchangePercent {
                var receiver = Int.random(in: 0..<replicaCount - 1, using: &random)
                if receiver >= actor { receiver += 1 }
                let log = replicas[actor].log
                let count = Bool.random(using: &random) ? log.count : Int.random(in: 0...log.count, using: &random)
                // Scenario clocks stay far inside the skew bound, and every change suits the schema.
                try! replicas[receiver].receive(log.prefix(count))
            } else {
                let change = Self.randomEdit(by: &replicas[actor], records: records, using: &random)
                changes.append(change)
            }
        }
    }

    private static func randomEdit(
        by replica: inout SimulatedReplica,
        records: [RecordRef],
        using random: inout SeededGenerator
    ) -> Change {
        let record = records[Int.random(in: 0..<records.count, using: &random)]
        let field = ThingSchema.fields[Int.random(in: 0..<ThingSchema.fields.count, using: &random)]
        // Every change made here suits the schema, so authoring cannot fail.
        switch ThingSchema.policy(of: field) {
        case .lww, .review:
            let value = registerValues[Int.random(in: 0..<registerValues.count, using: &random)]
            return try! replica.assign(record, field, value)
        case .status:
            let value = ThingSchema.statuses[Int.random(in: 0..<ThingSchema.statuses.count, using: &random)]
            return try! replica.assign(record, field, .string(value))
        case .set:
            let present = replica.field(record, field).elements
            if !present.isEmpty && Int.random(in: 0..<5, using: &random) < 2 {
                return try! replica.remove(record, field, present[Int.random(in: 0..<present.count, using: &random)])
            }
            let value = setValues[Int.random(in: 0..<setValues.count, using: &random)]
            if Int.random(in: 0..<8, using: &random) == 0 {
                // A remove of an element this replica may not have seen at all: it names no tags.
                return try! replica.remove(record, field, value)
            }
            return try! replica.add(record, field, value)
        case .log:
            return try! replica.append(record, field, .string("note \(replica.id)-\(replica.counter + 1)"))
        }
    }

    /// What each change's author had seen when writing it, gathered from every replica.
    public var contexts: [ChangeID: Set<ChangeID>] {
        var all: [ChangeID: Set<ChangeID>] = [:]
        for replica in replicas { all.merge(replica.context) { first, _ in first } }
        return all
    }

    /// The causality oracle for this scenario's changes.
    public var oracle: CausalOracle { CausalOracle(contexts: contexts) }

    /// Delivers every change to every replica (in authoring order), so that all of them converge.
    public mutating func syncAll() {
        for index in replicas.indices {
            // Authoring order is causal and the clocks stay within the skew bound, so this cannot fail.
            try! replicas[index].receive(changes)
        }
    }

    /// Lets one replica author a change (for example a resolution) after the scenario, recording it.
    @discardableResult
    public mutating func edit(
        by replica: Int,
        _ body: (inout SimulatedReplica) throws(CRDTError) -> Change
    ) throws(CRDTError) -> Change {
        let change = try body(&replicas[replica])
        changes.append(change)
        return change
    }

    /// Delivers `changes` to one replica.
    public mutating func deliver(_ changes: [Change], to replica: Int) throws {
        try replicas[replica].receive(changes)
    }

    /// The changes to one field, in authoring order.
    public func changes(to record: RecordRef, _ field: String) -> [Change] {
        changes.filter { $0.record == record && $0.field == field }
    }
}
