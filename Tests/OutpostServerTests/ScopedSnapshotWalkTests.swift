import Foundation
import GRDB
import Logging
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// A scoped device's snapshot walks only the records of its scope: its patients by id, their records by owner,
/// and the practice's structure, type after type in the whole practice's (type, id) order, so its pages have the
/// whole practice's cursor and a page never reads a record outside the scope.
@Suite(.serialized)
struct ScopedSnapshotWalkTests {
    /// The walk of each type, decided from the visibility alone.
    @Test func eachTypeIsWalkedByTheKeysThatFindTheScopesRecords() {
        let scope = FeedPlanner.Visibility.patients(["pat_b", "pat_a"])
        #expect(scope.walk(type: "patient") == .patientsInScope)
        for type in ["task", "observation", "encounter"] { #expect(scope.walk(type: type) == .ownedInScope) }
        for type in ["practice", "site", "subgroup", "person", "team"] { #expect(scope.walk(type: type) == .every) }
        #expect(scope.sortedPatients == ["pat_a", "pat_b"])
        for type in ["patient", "task", "team"] {
            #expect(FeedPlanner.Visibility.wholePractice.walk(type: type) == .every)
        }
        #expect(FeedPlanner.Visibility.wholePractice.sortedPatients.isEmpty)
    }

    /// SQLite finds a scope's patients and their records by key: no query of a scoped walk scans the record
    /// table, so its cost follows the scope, not the practice.
    @Test func sqliteFindsAScopesRecordsByKeyAndScansNoRecord() async throws {
        let directory = try TemporaryDirectory("outpost-scoped-walk")
        let store = try ServerStore(
            directory: directory.path("server"),
            create: true,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        func plan(_ walk: FeedPlanner.TypeWalk) async throws -> [String] {
            try await store.pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: "EXPLAIN QUERY PLAN " + ServerStore.snapshotWalk(walk),
                    arguments: ["pra_1", "task", #"["pat_a","pat_b"]"#, ""]
                ).map { $0["detail"] as String }
            }
        }
        let patients = try await plan(.patientsInScope)
        #expect(patients.contains("SEARCH record USING PRIMARY KEY (practice=? AND type=? AND id=?)"), "\(patients)")
        let owned = try await plan(.ownedInScope)
        #expect(owned.contains("SEARCH record USING PRIMARY KEY (practice=? AND type=? AND id=?)"), "\(owned)")
        #expect(
            owned.contains(
                "SEARCH record USING COVERING INDEX record_by_owner (practice=? AND owner=? AND type=? AND id>?)"
            ),
            "\(owned)"
        )
        for detail in patients + owned {
            #expect(!detail.hasPrefix("SCAN record") && !detail.contains("TEMP B-TREE"), "\(detail)")
        }
        let every = try await plan(.every)
        #expect(every == ["SEARCH record USING PRIMARY KEY (practice=? AND type=? AND id>?)"], "\(every)")
    }

    /// A scoped snapshot read one record per page, on both backends: its pages cross every type in (type, id)
    /// order, each record once, and hold exactly the structure, the scope's patients and what they own, the same
    /// records as one page; records of patients out of scope are never sent, whatever their type.
    @Test(arguments: Backend.all)
    func aScopedSnapshotInPagesOfOneHoldsTheScopeInOrder(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-scoped-walk")
        let admin = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: admin.care)
        let otherTeam = try TinyPractice.addSecondTeam(in: admin.care)
        let outside = TinyPractice.patients[2]
        var ownedOutside: [RecordRef] = []
        for patient in [TinyPractice.patients[1], outside] {
            let task = try admin.care.create(
                .task,
                fields: [
                    "patient": [.string(patient)], "kind": ["outreach"], "title": ["Call"], "status": ["requested"],
                    "priority": ["routine"], "team": [.string(patient == outside ? otherTeam : TinyPractice.team)],
                ]
            )
            if patient == outside { ownedOutside.append(task) }
        }
        ownedOutside.append(
            try admin.care.create(
                .observation,
                fields: [
                    "patient": [.string(outside)], "code": ["4548-4"], "value": ["6.1"], "unit": ["%"],
                    "effectiveAt": ["2026-11-02T10:00:00Z"], "status": ["final"],
                ]
            )
        )
        _ = try await admin.engine(server.transport(server.adminToken)).sync()
        let nurse = try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])

        func snapshot(limit: Int, after: String?) async throws -> SnapshotPage {
            let query = "/v1/snapshot?replica=nurse-laptop&limit=\(limit)" + (after.map { "&after=\($0)" } ?? "")
            let answer = try await server.raw("GET", query, headers: ["Authorization": "Bearer \(nurse)"])
            try #require(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
            return try Wire.makeDecoder().decode(SnapshotPage.self, from: answer.body)
        }
        var paged: [RecordRef] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try await snapshot(limit: 1, after: cursor)
            #expect(page.records.count <= 1)
            paged += page.records.map(\.record)
            cursor = page.next
            pages += 1
        } while cursor != nil && pages < 100
        let whole = try await snapshot(limit: 1_000, after: nil)
        #expect(whole.next == nil)
        #expect(paged == whole.records.map(\.record), "pages of one hold what one page holds, in the same order")
        #expect(paged == paged.sorted { ($0.type, $0.id) < ($1.type, $1.id) }, "in (type, id) order")
        #expect(Set(paged).count == paged.count, "each record once")

        var expected = Set<RecordRef>()
        for type in ["practice", "site", "subgroup", "person", "team", "patient", "task", "observation"] {
            for record in try admin.care.records(RecordType(rawValue: type)!) { expected.insert(record.ref) }
        }
        expected.remove(RecordRef(type: "patient", id: outside))
        expected.subtract(ownedOutside)
        #expect(Set(paged) == expected)
        #expect(paged.contains { $0.type == "task" } && paged.contains { $0.type == "team" })
        #expect(!paged.contains { $0.type == "observation" }, "the only observation is out of scope")
    }

    /// A patient that moves out of a scoped device's scope while its snapshot is read page by page, and maybe
    /// back: the pages after the first walk the patients the first page recorded that are still in scope, never
    /// one outside it; the one that left is recorded as told to leave, so the pull from the snapshot's checkpoint
    /// removes it, or, if it came back, sends it whole. Read with the scope as it was at each page, a patient that
    /// moved out and back lost the records walked while it was out, and no pull sent them; read with the first
    /// page's patients alone, one that moved out was still sent. On both backends.
    @Test(arguments: Backend.all, [false, true])
    func aPatientMovedOutDuringAPagedSnapshotIsNotSentAndArrivesWholeIfItComesBack(
        backend: Backend,
        comesBack: Bool
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-scoped-walk-move")
        let admin = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: admin.care)
        let otherTeam = try TinyPractice.addSecondTeam(in: admin.care)
        let moved = RecordRef(type: "patient", id: TinyPractice.patients[0])
        var owned: [RecordRef] = []
        for value in ["6.1", "6.4"] {
            owned.append(
                try admin.care.create(
                    .observation,
                    fields: [
                        "patient": [.string(moved.id)], "code": ["4548-4"], "value": [.string(value)], "unit": ["%"],
                        "effectiveAt": ["2026-11-02T10:00:00Z"], "status": ["final"],
                    ]
                )
            )
        }
        let engine = admin.engine(server.transport(server.adminToken))
        _ = try await engine.sync()
        let nurse = try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
        func get<Message: Decodable>(_ path: String, as _: Message.Type) async throws -> Message {
            let answer = try await server.raw("GET", path, headers: ["Authorization": "Bearer \(nurse)"])
            try #require(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
            return try Wire.makeDecoder().decode(Message.self, from: answer.body)
        }
        func snapshot(after: String?) async throws -> SnapshotPage {
            try await get(
                "/v1/snapshot?replica=nurse-laptop&limit=1" + (after.map { "&after=\($0)" } ?? ""),
                as: SnapshotPage.self
            )
        }
        func move(to team: String) async throws {
            try admin.care.update([.assign(moved, "primaryTeam", .string(team))])
            _ = try await engine.sync()
        }

        // The first page sends the first observation; the patient then leaves the scope for two pages.
        var page = try await snapshot(after: nil)
        var paged = page.records.map(\.record)
        #expect(paged == [owned.sorted { $0.id < $1.id }[0]], "the walk starts with the observations")
        try await move(to: otherTeam)
        // The page after the first was built as the first was sent, before the move.
        var next: String = try #require(page.next)
        page = try await snapshot(after: next)
        paged += page.records.map(\.record)
        next = try #require(page.next)
        page = try await snapshot(after: next)
        var afterMove = page.records.map(\.record)
        if comesBack { try await move(to: TinyPractice.team) }
        while let next = page.next, paged.count + afterMove.count < 100 {
            page = try await snapshot(after: next)
            afterMove += page.records.map(\.record)
        }
        paged += afterMove
        #expect(Set(paged).count == paged.count, "each record once")
        #expect(!afterMove.contains(moved), "a patient out of scope is not sent: \(afterMove)")

        // The pull from the snapshot's checkpoint removes the patient, or sends it whole once it is back.
        let pulled = try await get(
            "/v1/changes?replica=nurse-laptop&since=\(page.checkpoint)&limit=1000",
            as: PullResponse.self
        )
        if comesBack {
            #expect(pulled.removed.isEmpty, "\(pulled.removed)")
            let held = Set(paged + pulled.records.map(\.record))
            #expect(Set(owned + [moved]).isSubset(of: held), "the patient whole: \(held)")
        } else {
            #expect(pulled.removed == [moved.id])
            #expect(pulled.records.isEmpty)
        }
    }
}
