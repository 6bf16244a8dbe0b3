import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

/// A push of many batches is pipelined: the next batch is read and encoded while the server stores the previous
/// one. What the server holds and what the device keeps must not depend on it.
@Suite
struct PushPipelineTests {
    /// A clinician's outbox of many small batches in which every third change is to the team (structure only
    /// admins may change; the device's store forgot its role, as a client from before devices refused such edits
    /// themselves): each of those is refused and held aside, every other change is stored once, and the outbox
    /// ends empty, batch after batch, whatever was read ahead.
    @Test(arguments: Backend.all)
    func refusalsScatteredAcrossPipelinedBatchesAreHeldAsideAndEveryOtherChangeIsStoredOnce(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-pipeline")
        let admin = server.adminToken
        let office = try LocalReplica("office", in: directory)
        try TinyPractice.load(into: office.care)
        _ = try await office.engine(server.transport(admin)).sync()

        let nurseToken = try await server.issueToken(role: "clinician")
        let nurse = try LocalReplica("nurse", in: directory)
        _ = try await nurse.engine(server.transport(nurseToken)).sync()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        let team = RecordRef(type: "team", id: TinyPractice.team)
        try nurse.store.setSetting(SyncEngine.roleSetting, to: nil)
        var forbidden = 0
        for index in 0..<30 {
            if index % 3 == 2 {
                try nurse.care.update([.assign(team, "name", .string("Renamed \(index)"))])
                forbidden += 1
            } else {
                try nurse.care.update([.append(patient, "notes", .string("Visit note \(index)"))])
            }
        }
        #expect(try nurse.store.status().pendingChanges == 30)

        let report = try await nurse.engine(server.transport(nurseToken), pushBatch: 4).sync()
        #expect(report.pushed == 30 - forbidden)
        #expect(report.refused == forbidden)
        #expect(report.pending == 0)
        let held = try nurse.store.refusedChanges()
        #expect(held.count == forbidden)
        #expect(held.allSatisfy { $0.change.record == team && $0.code == "forbidden" })

        // The office receives every note, in order, and no rename.
        _ = try await office.engine(server.transport(admin)).sync()
        let notes = try #require(try office.care.record(patient)?.fields["notes"])
        guard case .log(let entries) = notes else {
            Issue.record("notes is not a log")
            return
        }
        let visits = entries.compactMap { entry -> String? in
            guard case .string(let text) = entry.value, text.hasPrefix("Visit note") else { return nil }
            return text
        }
        #expect(visits == (0..<30).filter { $0 % 3 != 2 }.map { "Visit note \($0)" })
        let name = try #require(try office.care.record(team)?.value("name"))
        #expect(!"\(name)".contains("Renamed"))

        // Another sync sends nothing again.
        let again = try await nurse.engine(server.transport(nurseToken), pushBatch: 4).sync()
        #expect(again.pushed == 0 && again.pushedDuplicates == 0)
    }

    /// The answer to a batch is recorded while the next batch is sent: here the store's write lock is held by
    /// another connection from the first batch's answer until the second batch is asked for, so an engine that
    /// records an answer before sending the next batch waits out the store's busy timeout and fails.
    @Test func theNextBatchIsSentWhileThisOnesAnswerIsRecorded() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-pipeline")
        defer { withExtendedLifetime(directory) {} }
        let admin = server.adminToken
        let office = try LocalReplica("office", in: directory)
        try TinyPractice.load(into: office.care)
        _ = try await office.engine(server.transport(admin)).sync()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        for index in 0..<12 { try office.care.update([.append(patient, "notes", .string("Visit note \(index)"))]) }

        let lock = try StoreWriteLock(path: office.store.path)
        let transport = lock.held(over: server.transport(admin), between: Wire.Path.push)
        let report = try await office.engine(transport, pushBatch: 4).sync()
        #expect(lock.wasReleased)
        #expect(report.pushed == 12)
        #expect(report.pending == 0)
        #expect(transport.count(Wire.Path.push) == 3)
        #expect(try office.store.status().pendingChanges == 0)
    }
}
