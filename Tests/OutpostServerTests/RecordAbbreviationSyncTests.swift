import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import Synchronization
import Testing

/// Layout 3 on the real server, on both backends: pull pages name by abbreviation the records a device holds,
/// the device reads them from its store, and asks again in full for a page naming one it does not hold; a push
/// naming records by abbreviation is stored when the server holds them and refused with nothing stored when not.
struct RecordAbbreviationSyncTests {
    /// What each pull of a device asked for (its `Accept`) and how many records its answer named by abbreviation.
    final class Pulls: Sendable {
        let seen = Mutex<[(accept: String?, abbreviated: Int)]>([])

        func watching(_ transport: any SyncTransport) -> FaultTransport {
            FaultTransport(
                transport,
                after: { request, _, response in
                    guard request.path == Wire.Path.changes else { return }
                    let body =
                        response.contentEncoding == "gzip"
                        ? try? WireCompression.decompress(response.body, limit: 1 << 26) : [UInt8](response.body)
                    let abbreviated =
                        body.flatMap { try? BinaryWire.abbreviations(in: $0, kind: .pullResponse).count } ?? 0
                    self.seen.withLock { $0.append((request.accept, abbreviated)) }
                }
            )
        }
    }

    /// What each push of a device named by abbreviation, and the status of its answer.
    final class Pushes: Sendable {
        let seen = Mutex<[(abbreviated: Int, status: Int)]>([])

        func watching(_ transport: any SyncTransport) -> FaultTransport {
            FaultTransport(
                transport,
                after: { request, _, response in
                    guard request.path == Wire.Path.push, let sent = request.body else { return }
                    let body =
                        request.contentEncoding == "gzip"
                        ? try? WireCompression.decompress(sent, limit: 1 << 26) : [UInt8](sent)
                    let abbreviated =
                        body.flatMap { try? BinaryWire.abbreviations(in: $0, kind: .pushRequest).count } ?? 0
                    self.seen.withLock { $0.append((abbreviated, response.status)) }
                }
            )
        }
    }

    /// Two replicas of the tiny practice on `backend`, both synced: `a` loaded and pushed it, `b` bootstrapped,
    /// with a token of the practice's one team when `scoped` (the last of the five: `b`'s token).
    static func twoReplicas(
        _ backend: Backend,
        scoped: Bool = false
    ) async throws
        -> (TestServer, TemporaryDirectory, LocalReplica, LocalReplica, String)
    {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-abbreviations")
        let a = try LocalReplica("site-a", in: directory)
        let b = try LocalReplica("site-b", in: directory)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let bToken =
            scoped
            ? try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            : server.adminToken
        #expect(try await b.engine(server.transport(bToken)).sync().bootstrapped)
        return (server, directory, a, b, bToken)
    }

    /// Edits the phone of every patient of the tiny practice on `replica`.
    static func editPhones(_ replica: LocalReplica, ending suffix: String) throws {
        for (index, patient) in TinyPractice.patients.enumerated() {
            _ = try replica.care.update([
                .assign(RecordRef(type: "patient", id: patient), "phone", .string("(406) 555-\(index)\(suffix)"))
            ])
        }
    }

    /// A new patient on `replica`, in the tiny practice's team.
    static func addPatient(to replica: LocalReplica) throws -> RecordRef {
        try replica.care.create(
            .patient,
            fields: [
                "givenName": ["Ada"], "familyName": ["Newcomer"], "birthDate": ["1970-01-01"], "sex": ["female"],
                "status": ["active"], "subgroup": [.string(TinyPractice.subgroup)],
                "primaryTeam": [.string(TinyPractice.team)],
            ]
        )
    }

    @Test(arguments: Backend.all, [false, true])
    func aPullPageNamesTheRecordsADeviceHoldsByAbbreviationAndANewOneInFull(
        backend: Backend,
        scoped: Bool
    )
        async throws
    {
        let (server, directory, a, b, bToken) = try await Self.twoReplicas(backend, scoped: scoped)
        _ = directory
        try Self.editPhones(a, ending: "7")
        // A patient new to the device, and edited again: named in full, or the device could not read the page.
        let newcomer = try Self.addPatient(to: a)
        _ = try a.care.update([.assign(newcomer, "phone", "(406) 555-0190")])
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let pulls = Pulls()
        let report = try await b.engine(pulls.watching(server.transport(bToken))).sync()
        #expect(report.pulled > TinyPractice.patients.count)
        #expect(try b.export() == a.export())
        let seen = pulls.seen.withLock { $0 }
        #expect(seen.first?.abbreviated == TinyPractice.patients.count)
        #expect(seen.allSatisfy { $0.accept == BinaryWire.accept(layout: BinaryWire.latestLayout) }, "\(seen)")
    }

    @Test(arguments: Backend.all)
    func aPageNamingARecordTheDeviceDoesNotHoldIsAskedForAgainWithFullIds(backend: Backend) async throws {
        let (server, directory, a, b, _) = try await Self.twoReplicas(backend)
        // The device lost a patient the server believes it holds (its rows deleted behind the store's back).
        let lost = TinyPractice.patients[0]
        try await DatabaseQueue(path: directory.path("site-b.sqlite")).write { db in
            try db.execute(sql: "DELETE FROM record WHERE type = 'patient' AND id = ?", arguments: [lost])
            try db.execute(sql: "DELETE FROM patient_view WHERE id = ?", arguments: [lost])
        }
        try Self.editPhones(a, ending: "8")
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let pulls = Pulls()
        let report = try await b.engine(pulls.watching(server.transport(server.adminToken))).sync()
        #expect(report.pulled == TinyPractice.patients.count)
        let seen = pulls.seen.withLock { $0 }
        // The page in layout 3 could not be read; the same page asked for again in layout 2, nothing guessed.
        #expect(
            seen.map(\.accept) == [BinaryWire.accept(layout: BinaryWire.latestLayout), BinaryWire.accept(layout: 2)],
            "\(seen)"
        )
        #expect(seen.map(\.abbreviated) == [TinyPractice.patients.count, 0])
        let phone = try b.care.record(RecordRef(type: "patient", id: lost))?.fields["phone"]?.value
        #expect(phone == "(406) 555-08")
    }

    /// Posts `push` in layout 3, every record `known` says the server holds named by abbreviation.
    static func post(
        _ push: PushRequest,
        abbreviating known: (RecordRef) -> Bool,
        to server: TestServer
    ) async throws -> TransportResponse {
        try await server.transport(server.adminToken).send(
            TransportRequest(
                method: "POST",
                path: Wire.Path.push,
                body: Data(push.binaryEncoded(layout: 3, abbreviating: known)),
                contentType: BinaryWire.contentType
            )
        )
    }

    @Test(arguments: Backend.all)
    func aPushNamingHeldRecordsByAbbreviationIsStoredAndOneNamingARecordNotHeldIsRefused(
        backend: Backend
    )
        async throws
    {
        let (server, directory, a, b, _) = try await Self.twoReplicas(backend)
        _ = (directory, b)
        // A new patient the server does not hold yet, and an edit of one it holds.
        let newcomer = try Self.addPatient(to: a)
        let held = RecordRef(type: "patient", id: TinyPractice.patients[1])
        _ = try a.care.update([.assign(held, "phone", "(406) 555-0111")])
        let changes = try a.store.pendingChanges(limit: 1_000)
        let push = PushRequest(replica: a.store.replicaID, changes: changes)
        let before = try await server.feed(server.adminToken).count

        let refused = try await Self.post(push, abbreviating: { _ in true }, to: server)
        #expect(refused.status == 409, "\(String(decoding: refused.body, as: UTF8.self))")
        let error = try Wire.makeDecoder().decode(ErrorBody.self, from: refused.body)
        #expect(error.error.code == .unresolvedRecords)
        #expect(try await server.feed(server.adminToken).count == before, "a refused push stored something")

        let stored = try await Self.post(push, abbreviating: { $0 != newcomer }, to: server)
        #expect(stored.status == 200, "\(String(decoding: stored.body, as: UTF8.self))")
        let answer = try Wire.makeDecoder().decode(PushResponse.self, from: stored.body)
        #expect(answer.accepted == changes.count)
        // The held patient's edit is stored under its full id.
        let feed = try await server.feed(server.adminToken)
        #expect(feed.contains { $0.record == held && $0.value == "(406) 555-0111" })
        #expect(feed.contains { $0.record == newcomer })
    }

    /// Each abbreviation is a look-up in the practice's records: a push naming more records by abbreviation than
    /// a push may hold changes is refused before any (`413`), not resolved one by one and refused after (`409`).
    @Test(arguments: Backend.all)
    func aPushNamingMoreRecordsByAbbreviationThanAPushMayHoldChangesIsRefusedBeforeAnyLookUp(
        backend: Backend
    )
        async throws
    {
        let (server, directory, a, b, _) = try await Self.twoReplicas(backend)
        _ = (directory, b)
        _ = try a.care.update([
            .assign(RecordRef(type: "patient", id: TinyPractice.patients[1]), "phone", "(406) 555-0413")
        ])
        let edit = try #require(try a.store.pendingChanges(limit: 1).first)
        // One edit more than a push may hold, each to its own patient: none held by the server, so resolving
        // them would end in 409.
        let limit = Limits.standard.maxPushChanges
        var random = SeededGenerator(seed: 413)
        let changes = (0...limit).map { index in
            var change = edit
            change.id = ChangeID(replica: edit.id.replica, counter: edit.id.counter + UInt64(index))
            change.record = RecordRef(
                type: "patient",
                id: "pat_" + SortableID.make(millis: edit.clock.millis - UInt64(index), using: &random)
            )
            return change
        }
        let before = try await server.feed(server.adminToken).count
        let refused = try await Self.post(
            PushRequest(replica: a.store.replicaID, changes: changes),
            abbreviating: { _ in true },
            to: server
        )
        #expect(refused.status == 413, "\(String(decoding: refused.body, as: UTF8.self))")
        let error = try Wire.makeDecoder().decode(ErrorBody.self, from: refused.body)
        #expect(error.error.code == .tooLarge)
        #expect(error.error.message.contains("\(limit + 1) records named by abbreviation"), "\(error.error.message)")
        #expect(try await server.feed(server.adminToken).count == before, "a refused push stored something")
    }

    @Test(arguments: Backend.all)
    func aDeviceNamesTheRecordsTheServerHoldsByAbbreviationAndTheOnesItCreatedInFull(backend: Backend) async throws {
        let (server, directory, a, b, _) = try await Self.twoReplicas(backend)
        _ = directory
        // Edits of three patients the server holds, and a patient new to it, edited again in a later commit.
        try Self.editPhones(a, ending: "5")
        let newcomer = try Self.addPatient(to: a)
        _ = try a.care.update([.assign(newcomer, "phone", "(406) 555-0191")])
        let pushes = Pushes()
        _ = try await a.engine(pushes.watching(server.transport(server.adminToken))).sync()
        let seen = pushes.seen.withLock { $0 }
        #expect(seen.map(\.abbreviated) == [TinyPractice.patients.count], "\(seen)")
        #expect(seen.map(\.status) == [200])
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        #expect(try b.export() == a.export())
    }

    @Test(arguments: Backend.all)
    func aPushTheServerCannotResolveIsSentAgainNamingEveryRecordInFull(backend: Backend) async throws {
        let (server, directory, a, b, _) = try await Self.twoReplicas(backend)
        // The device believes the server holds a patient it has never been sent (its creating row marked so).
        let newcomer = try Self.addPatient(to: a)
        try Self.editPhones(a, ending: "6")
        try await DatabaseQueue(path: directory.path("site-a.sqlite")).write { db in
            try db.execute(sql: "UPDATE change SET creates = 0 WHERE id = ?", arguments: [newcomer.id])
        }
        let pushes = Pushes()
        let report = try await a.engine(pushes.watching(server.transport(server.adminToken))).sync()
        let seen = pushes.seen.withLock { $0 }
        // Refused with nothing stored, then the same batch in full, stored.
        #expect(seen.map(\.status) == [409, 200], "\(seen)")
        #expect(seen.map(\.abbreviated) == [TinyPractice.patients.count + 1, 0])
        #expect(report.pushed > 0)
        #expect(try a.store.pendingChanges().isEmpty)
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        #expect(try b.export() == a.export())
    }
}
