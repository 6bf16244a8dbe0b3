import Dispatch
import Foundation
import GRDB
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// A whole-practice device's pull does not wait for SQLite's one writer (the SQLite backend): its replica's binding
/// is read, its page is read, and where it stands is recorded at once when the writer is free, or queued behind
/// the write that holds it. A device pulling beside its own push is then answered while the push's batches are
/// written, and what it pulled is still recorded before any later write.
struct PullBesideWriterTests {
    /// Holds SQLite's writer (a write transaction that waits on the writer's own thread) until `release()`.
    final class HeldWriter: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let task: Task<Void, any Error>

        /// Returns once the write holds the writer.
        init(_ store: ServerStore) async {
            let done = done
            var task: Task<Void, any Error>?
            await withCheckedContinuation { (started: CheckedContinuation<Void, Never>) in
                task = Task {
                    try await store.writeAsync { _ in
                        started.resume()
                        done.wait()
                    }
                }
            }
            self.task = task!
        }

        func release() async throws {
            done.signal()
            try await task.value
        }

        /// Runs `body` while `store`'s writer is held, and lets it go however `body` ends.
        static func holding(_ store: ServerStore, _ body: () async throws -> Void) async throws {
            let writer = await HeldWriter(store)
            do {
                try await body()
            } catch {
                try? await writer.release()
                throw error
            }
            try await writer.release()
        }
    }

    /// Where the device `replica` stands as recorded: the position it pulled to, and from.
    func recorded(_ replica: ReplicaID, _ store: ServerStore) throws -> (to: Int64?, from: Int64?) {
        try store.read { db in
            let row = try #require(
                try Row.fetchOne(
                    db,
                    sql: "SELECT pulledTo, pulledFrom FROM device WHERE replica = ?",
                    arguments: [replica.rawValue]
                )
            )
            return (row["pulledTo"], row["pulledFrom"])
        }
    }

    @Test(.timeLimit(.minutes(10)))
    func aBoundDevicesPullIsAnsweredWhileTheWriterIsHeldAndRecordedBeforeTheNextWrite() async throws {
        let directory = try TemporaryDirectory("outpost-pull-writer")
        // No background fold takes the writer.
        let (store, token, site) = try await RecordTailTests().practice(directory)
        let replica = site.store.replicaID
        let other = ReplicaID("laptop")!
        try await store.claimReplica(other, token: token, now: nowMillis())

        // The device has pulled once: where it stands is known.
        let first = try await store.pull(token: token, replica: other, since: 0, limit: 2)
        var answered: FeedPage?
        try await HeldWriter.holding(store) {
            // Both would wait for the writer, and this test time out, if either needed it.
            try await store.claimReplica(replica, token: token, now: nowMillis())
            answered = try await store.pull(token: token, replica: other, since: first.checkpoint, limit: 5)
            #expect(try recorded(other, store).to == first.checkpoint, "queued behind the held write")
        }
        let page = try #require(answered)
        #expect(page.changes.count == 5)
        // A write asked for after the answer runs after the queued record.
        try await store.writeAsync { _ in }
        #expect(try recorded(other, store).to == page.checkpoint)
        #expect(try recorded(other, store).from == first.checkpoint)

        // With the writer free, the pull is recorded before it is answered.
        let next = try await store.pull(token: token, replica: other, since: page.checkpoint, limit: 5)
        #expect(try recorded(other, store).to == next.checkpoint)
        #expect(try recorded(other, store).from == page.checkpoint)
    }

    @Test func aPullIsRecordedBeforeItsAnswerWhenNothingWaitsForTheWriterOrItIsTheDevicesFirst() {
        #expect(ServerStore.recordsBeforeAnswer(placed: true, writesWaiting: 0))
        #expect(!ServerStore.recordsBeforeAnswer(placed: true, writesWaiting: 1))
        // A device's first pull: a lost record would leave it holding nothing back from compaction.
        #expect(ServerStore.recordsBeforeAnswer(placed: false, writesWaiting: 0))
        #expect(ServerStore.recordsBeforeAnswer(placed: false, writesWaiting: 3))
    }

    @Test(.timeLimit(.minutes(10)))
    func aReplicaBoundToAnotherTokenIsRefusedWhileTheWriterIsHeld() async throws {
        let directory = try TemporaryDirectory("outpost-pull-writer")
        let (store, token, site) = try await RecordTailTests().practice(directory)
        var stranger = token
        stranger.id = "tok_stranger"
        try await HeldWriter.holding(store) {
            let error = await #expect(throws: ServerError.self) {
                try await store.claimReplica(site.store.replicaID, token: stranger, now: nowMillis())
            }
            #expect(error?.code == .replicaMismatch)
        }
    }
}
