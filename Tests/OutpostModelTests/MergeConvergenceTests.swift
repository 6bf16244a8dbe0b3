import OutpostCRDT
import OutpostModel
import OutpostTestSupport
import Testing

/// Duplicate merges: the read-time rule (``PatientMerges``) and convergence of replicas merging and editing
/// at random while apart.
struct MergeConvergenceTests {
    // MARK: - The rule

    @Test func chainsResolveToTheirEndAndCyclesToTheirSmallestID() {
        let held: Set<String> = ["a", "b", "c", "d", "e", "x"]
        // A into B while B into C: A follows C.
        let chain = PatientMerges(links: ["a": "b", "b": "c"], held: held)
        #expect(chain.survivor(of: "a") == "c" && chain.survivor(of: "b") == "c" && chain.survivor(of: "c") == "c")
        #expect(chain.duplicates(of: "c") == ["a", "b"])
        // Opposite directions: the smaller id survives whichever link arrived first.
        let cycle = PatientMerges(links: ["b": "a", "a": "b"], held: held)
        #expect(cycle.survivor(of: "a") == "a" && cycle.survivor(of: "b") == "a" && !cycle.isMerged("a"))
        // A longer cycle with a tail into it.
        let ring = PatientMerges(links: ["c": "d", "d": "e", "e": "c", "x": "e"], held: held)
        #expect(["c", "d", "e", "x"].allSatisfy { ring.survivor(of: $0) == "c" })
        // Links to a patient not held here, or to itself, are ignored.
        let loose = PatientMerges(links: ["a": "zzz", "b": "b"], held: held)
        #expect(loose.isEmpty)
    }

    @Test func aMergeSendsDifferingReviewValuesToTheInboxAndFillsWhatTheSurvivorLacks() throws {
        var replica = SimulatedReplica(id: "laptop", schema: CareModel.schema)
        let keep = RecordRef(type: "patient", id: Fixture.id(.patient, 1))
        let duplicate = RecordRef(type: "patient", id: Fixture.id(.patient, 2))
        try replica.assign(keep, "familyName", "Núñez")
        try replica.assign(duplicate, "familyName", "Nunez")
        try replica.assign(duplicate, "mrn", "MRN-7")
        let writes = try CareModel.mergeWrites(
            keep: Self.record(keep, in: replica),
            duplicate: Self.record(duplicate, in: replica),
            reason: "same person",
            merges: PatientMerges([])
        )
        for write in writes { try Self.apply(write, to: &replica) }
        let survivor = Self.record(keep, in: replica)
        #expect(survivor.conflictedFields == ["familyName"])
        #expect(survivor.string("mrn") == "MRN-7")
        #expect(Self.record(duplicate, in: replica).string("mergedInto") == keep.id)
        #expect(
            modelError { () throws(ModelError) in
                _ = try CareModel.mergeWrites(
                    keep: Self.record(keep, in: replica),
                    duplicate: Self.record(duplicate, in: replica),
                    reason: "again",
                    merges: PatientMerges(Self.patients(in: replica))
                )
            }?.code == .invalidMerge
        )
    }

    // MARK: - Three replicas merging and editing at random

    static let patientCount = 6

    @Test(arguments: 1...24 as ClosedRange<UInt64>)
    func threeReplicasMergingAndEditingAtRandomConverge(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let patients = (1...Self.patientCount).map { RecordRef(type: "patient", id: Fixture.id(.patient, UInt64($0))) }
        var origin = SimulatedReplica(id: "origin", schema: CareModel.schema)
        for (index, patient) in patients.enumerated() {
            try origin.assign(patient, "givenName", .string("Person \(index % 3)"))
            try origin.assign(patient, "familyName", .string(index % 2 == 0 ? "Ruiz" : "RUIZ"))
            try origin.assign(patient, "subgroup", .string(Fixture.id(.subgroup, 1)))
            try origin.assign(patient, "primaryTeam", .string(Fixture.id(.team, 1)))
            try origin.assign(patient, "status", "active")
        }
        var replicas = ["site-a", "site-b", "site-c"].map { name in
            var replica = SimulatedReplica(id: name, schema: CareModel.schema)
            try? replica.receive(from: origin)
            return replica
        }
        var notes: [(RecordRef, String)] = []
        var tasks: [RecordRef: RecordRef] = [:]
        var merges = 0
        for step in 0..<80 {
            let which = Int(generator.next() % 3)
            var replica = replicas[which]
            replica.wallMillis += 1_000
            let first = patients[Int(generator.next() % UInt64(patients.count))]
            let second = patients[Int(generator.next() % UInt64(patients.count))]
            switch generator.next() % 10 {
            case 0...2:
                let known = PatientMerges(Self.patients(in: replica))
                if let writes = try? CareModel.mergeWrites(
                    keep: Self.record(first, in: replica),
                    duplicate: Self.record(second, in: replica),
                    reason: "step \(step)",
                    merges: known
                ) {
                    for write in writes { try Self.apply(write, to: &replica) }
                    merges += 1
                }
            case 3:
                if let writes = try? CareModel.unmergeWrites(duplicate: Self.record(first, in: replica), reason: "no") {
                    for write in writes { try Self.apply(write, to: &replica) }
                }
            case 4...5:
                let text = "note \(seed)-\(step)"
                try replica.append(first, "notes", .string(text))
                notes.append((first, text))
            case 6:
                let task = RecordRef(type: "task", id: Fixture.id(.task, seed &* 1_000 &+ UInt64(step)))
                try replica.assign(task, "patient", .string(first.id))
                try replica.assign(task, "status", "requested")
                tasks[task] = first
            case 7:
                try replica.assign(first, "phone", .string("406 555 01\(step % 90 + 10)"))
            default:
                // Sync with another replica, one way (the server in between is not needed for the state).
                let other = replicas[(which + 1 + Int(generator.next() % 2)) % 3]
                try replica.receive(from: other)
            }
            replicas[which] = replica
        }
        // Everyone syncs with everyone until they have seen everything.
        for _ in 0..<2 {
            for index in replicas.indices {
                for other in replicas.indices where other != index {
                    try replicas[index].receive(from: replicas[other])
                }
            }
        }
        let all = Set(replicas.flatMap(\.log).map(\.id))
        let encoding = replicas[0].document.canonicalEncoding()
        for replica in replicas {
            #expect(replica.seen == all, "seed \(seed): \(replica.id) missed changes")
            #expect(replica.document.canonicalEncoding() == encoding, "seed \(seed): \(replica.id) diverged")
        }
        // The same changes in any order give the same state.
        var shuffled = Document(schema: CareModel.schema)
        try shuffled.apply(replicas[0].log.shuffled(using: &generator))
        #expect(shuffled.canonicalEncoding() == encoding, "seed \(seed): shuffled delivery diverged")

        // Nothing lost: every note on its patient, every task with its patient.
        let replica = replicas[0]
        for (patient, text) in notes {
            #expect(Self.record(patient, in: replica).values("notes").contains(.string(text)), "seed \(seed)")
        }
        for (task, patient) in tasks {
            #expect(Self.record(task, in: replica).string("patient") == patient.id, "seed \(seed)")
        }
        // Each person once: merged duplicates are left out, their tasks follow a survivor that is counted.
        let records = replica.document.records.compactMap { ref, state -> MaterializedRecord? in
            RecordType(rawValue: ref.type).map { MaterializedRecord(type: $0, id: ref.id, state: state) }
        }
        let resolved = PatientMerges(records)
        let data = ScorecardData(records: records, changes: replica.log)
        let counted = Set(data.records(.patient).map(\.id))
        #expect(counted == Set(patients.map(\.id)).filter { !resolved.isMerged($0) }, "seed \(seed)")
        #expect(Set(patients.map { resolved.survivor(of: $0.id) }) == counted, "seed \(seed)")
        #expect(data.tasks.count == tasks.count)
        for task in data.tasks {
            #expect(counted.contains(task.patient ?? ""), "seed \(seed): a task follows an uncounted patient")
        }
        let period = try #require(ScorecardPeriod("2026-Q3"))
        let card = Scorecard.compute(data, period: period, by: .subgroup)
        #expect(card.total.patients == counted.count, "seed \(seed)")
        _ = merges
    }

    // MARK: - Helpers

    static func record(_ ref: RecordRef, in replica: SimulatedReplica) -> MaterializedRecord {
        MaterializedRecord(
            type: RecordType(rawValue: ref.type) ?? .patient,
            id: ref.id,
            state: replica.document.records[ref] ?? RecordState()
        )
    }

    static func patients(in replica: SimulatedReplica) -> [MaterializedRecord] {
        replica.document.records.keys.filter { $0.type == "patient" }.map { record($0, in: replica) }
    }

    static func apply(_ write: Edit, to replica: inout SimulatedReplica) throws {
        switch write.operation {
        case .append: try replica.append(write.record, write.field, write.value)
        case .assign where write.isConcurrent:
            try replica.author(write.record, write.field, .assign, write.value, replaces: [])
        default: try replica.assign(write.record, write.field, write.value)
        }
    }
}
