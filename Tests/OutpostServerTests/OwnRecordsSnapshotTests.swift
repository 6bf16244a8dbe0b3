import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A device is not sent back what only it wrote: its first bootstrap asks the server to leave out the records
/// whose every write is its own (`own=skip`), which a device that imported a practice and pushed it would
/// otherwise receive back whole. Records another device wrote to still come, and a later bootstrap (a lost
/// checkpoint, a restored server) asks for everything.
@Suite(.serialized)
struct OwnRecordsSnapshotTests {
    /// Counts the records of the snapshot pages that pass through, and whether they asked for `own=skip`.
    final class SnapshotCounter: Sendable {
        let records = Mutex(0)
        let sparing = Mutex<[Bool]>([])

        func transport(_ base: any SyncTransport) -> FaultTransport {
            FaultTransport(
                base,
                after: { request, _, response in
                    guard request.path == Wire.Path.snapshot else { return }
                    self.sparing.withLock { $0.append(request.query.contains { $0 == ("own", "skip") }) }
                    var body = [UInt8](response.body)
                    if response.contentEncoding == "gzip" {
                        body = try WireCompression.decompress(body, limit: 1 << 26)
                    }
                    let page = try SnapshotPage(binary: body)
                    self.records.withLock { $0 += page.records.count }
                }
            )
        }

        func reset() {
            records.withLock { $0 = 0 }
            sparing.withLock { $0 = [] }
        }
    }

    /// `own` other than `skip`, or without `replica=` naming the device, is refused with a JSON error naming it.
    @Test(arguments: [[("own", "yes"), ("replica", "site-a")], [("own", "skip")]])
    func anOwnParameterOtherThanSkipOrWithoutAReplicaIsRefused(query: [(String, String)]) async throws {
        let server = try await TestServer()
        let answer = try await server.transport(server.adminToken).send(
            TransportRequest(method: "GET", path: Wire.Path.snapshot, query: query)
        )
        #expect(answer.status == 400)
        let error = try Wire.makeDecoder().decode(ErrorBody.self, from: answer.body).error
        #expect(error.code == .invalidParameter && error.field == "own", "\(error)")
    }

    @Test(arguments: Backend.all)
    func aFirstSyncIsNotSentBackWhatItPushedButALaterBootstrapIsSentEverything(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-own")
        let admin = server.adminToken
        let counter = SnapshotCounter()

        // A imports the practice and syncs for the first time: it pushes every record and is sent none back.
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let first = try await a.engine(counter.transport(server.transport(admin)), pageSize: 3).sync()
        let held = try a.store.records(ofType: "patient").count
        #expect(first.bootstrapped && first.pushed > 0)
        #expect(counter.records.withLock { $0 } == 0, "the records only A wrote are not sent back")
        #expect(counter.sparing.withLock { $0 }.allSatisfy { $0 } && !counter.sparing.withLock { $0 }.isEmpty)
        // The records left out do not fill pages: the walk (under 16 pages' limits) takes one request, not one
        // per 3 records.
        #expect(counter.sparing.withLock { $0.count } == 1)
        #expect(try a.store.records(ofType: "patient").count == held)

        // B, a new device, is sent every record; it edits a patient.
        counter.reset()
        let b = try LocalReplica("site-b", in: directory)
        let joined = try await b.engine(counter.transport(server.transport(admin)), pageSize: 3).sync()
        let all = counter.records.withLock { $0 }
        #expect(joined.snapshotRecords == all && all > 6, "several pages of 3 records")
        #expect(counter.sparing.withLock { $0 }.allSatisfy { !$0 }, "B holds nothing to leave out: no own=skip")
        #expect(try b.export() == a.export())
        try b.care.store.commit(
            [.assign(RecordRef(type: "patient", id: TinyPractice.patients[0]), "phone", .string("(406) 555-0100"))],
            author: TinyPractice.person,
            site: nil
        )
        _ = try await b.engine(server.transport(admin)).sync()

        // C imports the same practice (the same ids, its own writes): the server's records hold A's writes, so
        // every one is sent, B's edit with them, and the three converge.
        counter.reset()
        let c = try LocalReplica("site-c", in: directory)
        try TinyPractice.load(into: c.care)
        _ = try await c.engine(counter.transport(server.transport(admin)), pageSize: 3).sync()
        #expect(counter.records.withLock { $0 } == all, "no record on the server is C's alone")
        _ = try await a.engine(server.transport(admin)).sync()
        _ = try await b.engine(server.transport(admin)).sync()
        #expect(try c.export() == b.export())
        #expect(try a.export() == b.export())

        // A loses its checkpoint: its next bootstrap asks for everything, its own records too.
        counter.reset()
        let lost = try DatabaseQueue(path: a.store.path)
        try await lost.write { try $0.execute(sql: "UPDATE replica SET checkpoint = NULL WHERE id = 1") }
        try lost.close()
        let again = try await a.engine(counter.transport(server.transport(admin)), pageSize: 3).sync()
        #expect(again.bootstrapped)
        #expect(counter.sparing.withLock { $0 }.allSatisfy { !$0 })
        #expect(counter.records.withLock { $0 } == all, "a bootstrap after the first is sent every record")
        #expect(try a.export() == b.export())
    }
}
