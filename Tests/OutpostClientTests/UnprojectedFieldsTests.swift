import Foundation
import GRDB
import OutpostCRDT
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostClient

/// A page of remote changes that writes only fields a record's projected rows do not read leaves the rows as they
/// are, so the store makes them neither before nor after (``Projection/unprojected(by:)``): every other field of
/// every projected type, written in every way in random states, leaves ``Projection/rows(of:_:)`` unchanged; and
/// the store's projection equals a recomputation after pages that mix such writes with others, with a record's
/// state merged from a snapshot, and read ahead.
struct UnprojectedFieldsTests {
    static let texts: [Value] = [
        "active", "inactive", "deceased", "completed", "requested", "cancelled", "urgent", "2026-05-01", "a", "b",
        .int(3), .bool(true),
    ]

    /// A patient and their task made at an office (ids drawn from `seed`), and a laptop holding both.
    static func patientAndTask(
        seed: UInt64
    ) throws -> (
        patient: RecordRef, task: RecordRef, office: LocalStore, laptop: LocalStore
    ) {
        var ids = SeededGenerator(seed: seed)
        let patient = RecordRef(type: "patient", id: RecordType.patient.makeID(millis: 1_780_000_000_000, using: &ids))
        let task = RecordRef(type: "task", id: RecordType.task.makeID(millis: 1_780_000_000_000, using: &ids))
        let office = try careStore("office")
        let laptop = try careStore("laptop")
        try laptop.applyRemote(
            try office.commit(
                [
                    .assign(patient, "riskTier", "low"), .assign(patient, "phone", "555-0100"),
                    .assign(task, "patient", .string(patient.id)), .assign(task, "priority", "routine"),
                    .assign(task, "status", "requested"),
                ],
                author: "per_1",
                site: nil
            )
        )
        return (patient, task, office, laptop)
    }

    /// Writes to `spec`'s field of `record`, at random: one, several concurrent ones, or one replacing what is
    /// there (assigned registers; added, removed set elements; appended log entries).
    static func writes(
        to spec: FieldSpec,
        of record: RecordRef,
        in state: RecordState,
        counter: inout UInt64,
        _ generator: inout SeededGenerator
    ) -> [Change] {
        var changes: [Change] = []
        let writers = 1 + Int(generator.next() % 3)
        for writer in 0..<writers {
            counter += 1
            let value = texts[Int(generator.next() % UInt64(texts.count))]
            let replica = "w\(writer)"
            switch spec.policy {
            case .lww, .review, .status:
                let replaces = generator.next() % 2 == 0 ? state[spec.name].live.map(\.id) : []
                changes.append(
                    Change.test(
                        record,
                        spec.name,
                        .assign,
                        value,
                        replica: replica,
                        counter: counter,
                        replaces: replaces
                    )
                )
            case .set:
                if generator.next() % 2 == 0, let element = state[spec.name].live.first {
                    changes.append(
                        Change.test(
                            record,
                            spec.name,
                            .remove,
                            element.value,
                            replica: replica,
                            counter: counter,
                            replaces: [element.id]
                        )
                    )
                } else {
                    changes.append(Change.test(record, spec.name, .add, value, replica: replica, counter: counter))
                }
            case .log:
                changes.append(Change.test(record, spec.name, .append, value, replica: replica, counter: counter))
            }
        }
        return changes
    }

    @Test(arguments: 0..<80 as Range<UInt64>)
    func aWriteToAFieldTheRowsDoNotReadLeavesThemAsTheyAre(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for type in RecordType.allCases where Projection.tables[type.rawValue] != nil {
            let record = RecordRef(type: type.rawValue, id: type.makeID(millis: 1_780_000_000_000, using: &generator))
            // Every field unset, written once, or written concurrently.
            var state = RecordState()
            var counter: UInt64 = 0
            for spec in CareModel.fields(of: type) where generator.next() % 3 > 0 {
                for change in Self.writes(to: spec, of: record, in: state, counter: &counter, &generator) {
                    state.apply(change)
                }
            }
            let before = Projection.rows(of: record, state)
            #expect(!before.isEmpty)
            let others = CareModel.fields(of: type).filter { !Projection.mayChange(type.rawValue, field: $0.name) }
            for spec in others {
                var written = state
                for change in Self.writes(to: spec, of: record, in: written, counter: &counter, &generator) {
                    written.apply(change)
                }
                #expect(Projection.rows(of: record, written) == before, "seed \(seed): \(type).\(spec.name)")
            }
        }
    }

    /// The fields left out are those a nurse writes most on a visit: they are worth sparing.
    @Test func notesAndPhonesAreFieldsTheRowsDoNotRead() {
        #expect(!Projection.mayChange("task", field: "notes"))
        #expect(!Projection.mayChange("patient", field: "phone"))
        // A last-writer-wins register is never in conflict: a task's outreach attempts are not in its rows.
        #expect(!Projection.mayChange("task", field: "attempts"))
        #expect(Projection.mayChange("task", field: "priority") && Projection.mayChange("patient", field: "careGaps"))
        let task = RecordRef(type: "task", id: "tsk_01JWMCKG1BY8F26N8A4JNVV0VA")
        let patient = RecordRef(type: "patient", id: "pat_01JWMCKG1754K9T2F6C8TTXJQ1")
        let person = RecordRef(type: "person", id: "per_01JWMCKG1754K9T2F6C8TTXJQ1")
        let changes = [
            Change.test(task, "notes", .append, "Called", replica: "b", counter: 1),
            Change.test(patient, "phone", .assign, "555", replica: "b", counter: 2),
            Change.test(patient, "riskTier", .assign, "high", replica: "b", counter: 3),
            Change.test(person, "phone", .assign, "555", replica: "b", counter: 4),
        ]
        // The patient has a write its rows read; a person has no rows.
        #expect(Projection.unprojected(by: changes) == [task])
    }

    /// A page that writes phones, and a risk tier, read ahead as a pipelined pull reads it: the records it only
    /// writes phones of are read without their rows, and the projection still equals a recomputation, also for a
    /// record the page carries whole as well (a state merged: its rows are written whole) and for one read in the
    /// write.
    @Test(arguments: [false, true])
    func aPageThatWritesFieldsTheRowsDoNotReadLeavesTheProjectionRight(encrypted: Bool) throws {
        var ids = SeededGenerator(seed: 7)
        let patients = (1...4).map { _ in
            RecordRef(type: "patient", id: RecordType.patient.makeID(millis: 1_780_000_000_000, using: &ids))
        }
        let office = try careStore("office")
        let laptop = try careStore("laptop", encrypted: encrypted)
        var made: [Change] = []
        for patient in patients {
            made += try office.commit(
                [.assign(patient, "phone", "555-0100"), .assign(patient, "riskTier", "low")],
                author: "per_1",
                site: nil
            )
        }
        try laptop.applyRemote(made)
        let page = try office.commit(
            [
                .assign(patients[0], "phone", "555-0200"), .assign(patients[1], "riskTier", "high"),
                .assign(patients[2], "phone", "555-0202"), .assign(patients[3], "phone", "555-0203"),
            ],
            author: "per_1",
            site: nil
        )
        #expect(Projection.unprojected(by: page) == [patients[0], patients[2], patients[3]])
        // The third patient also comes whole, its risk tier changed (as a scoped page carries a patient entering the
        // device's scope): merged, its rows are written whole.
        _ = try office.commit([.assign(patients[2], "riskTier", "high")], author: "per_1", site: nil)
        let whole = SnapshotRecord(record: patients[2], state: try #require(try office.record(patients[2])))
        // A record the page carries whole is merged, and its rows compared: the write and the engine's read ahead
        // leave it out. Read ahead here as if it were not (a read ahead made for another page), it has no rows,
        // and its rows are written whole.
        #expect(Projection.unprojected(by: page, carrying: [whole]) == [patients[0], patients[3]])
        // The first patient is not read ahead: the write reads it, without its rows.
        let readAhead = Array(patients.dropFirst())
        let inspected = try #require(laptop.preload(readAhead, unprojected: Projection.unprojected(by: page)))
        let rows = inspected.take().mapValues { $0?.projected }
        #expect(rows[patients[1]]??.isEmpty == false && rows[patients[2]] == .some(nil))
        let ahead = laptop.preload(readAhead, unprojected: Projection.unprojected(by: page))
        let applied = try laptop.applyReceived(page, records: [whole], preloaded: ahead)
        #expect(applied.preloadedUsed == 3)
        #expect(try laptop.checkProjection() == [])
        #expect(try laptop.record(patients[2])?["riskTier"].live.map(\.value) == ["high"])
    }

    /// The set worked out once for a page's read ahead and handed to its write (as a pipelined pull does) gives the
    /// write that working it out again gives: the patient whose phone alone the page writes is read ahead without
    /// its rows, the task whose priority it writes with them and has them rewritten, and the projection equals a
    /// recomputation.
    @Test func aPagesUnprojectedRecordsWorkedOutForItsReadAheadServeItsWrite() throws {
        let (patient, task, office, laptop) = try Self.patientAndTask(seed: 11)
        let page = try office.commit(
            [.assign(patient, "phone", "555-0199"), .assign(task, "priority", "urgent")],
            author: "per_1",
            site: nil
        )
        let unprojected = Projection.unprojected(by: page)
        #expect(unprojected == [patient])
        let inspected = try #require(laptop.preload([patient, task], unprojected: unprojected))
        let rows = inspected.take().mapValues { $0?.projected }
        #expect(rows[patient] == .some(nil) && rows[task]??.isEmpty == false)
        let ahead = laptop.preload([patient, task], unprojected: unprojected)
        let applied = try laptop.applyReceived(page, preloaded: ahead, unprojected: unprojected)
        #expect(applied.preloadedUsed == 2)
        #expect(try laptop.checkProjection() == [])
        #expect(try laptop.record(patient)?["phone"].live.map(\.value) == ["555-0199"])
        let priority = try laptop.read(doing: "read a task's row") { db in
            try String.fetchOne(db, sql: "SELECT priority FROM task_view WHERE id = ?", arguments: [task.id])
        }
        #expect(priority == "urgent")
    }

    /// A record read ahead without its rows that the page writes a projected field of after all (read ahead for a
    /// page other than the one written): its rows are written whole, and the projection still equals a
    /// recomputation.
    @Test func aRecordReadWithoutItsRowsThatAPageChangesAfterAllHasThemWrittenWhole() throws {
        let (patient, task, office, laptop) = try Self.patientAndTask(seed: 9)
        let page = try office.commit(
            [
                .assign(patient, "riskTier", "high"), .assign(task, "priority", "urgent"),
                .append(task, "notes", "Called"),
            ],
            author: "per_1",
            site: nil
        )
        let ahead = laptop.preload([patient, task], unprojected: [patient, task])
        let applied = try laptop.applyReceived(page, preloaded: ahead)
        #expect(applied.preloadedUsed == 2)
        #expect(try laptop.checkProjection() == [])
    }
}
