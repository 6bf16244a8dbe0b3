import Foundation
import Logging
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import Testing

@testable import OutpostServer

/// The feed rule on PostgreSQL: a change never commits below a feed position a device has already been given.
///
/// Two pushes on two connections; the first is held inside its transaction after writing its changes; the second
/// runs until it commits or waits; a pull runs in between; then the first commits. With positions assigned in
/// commit order (the practice's feed lock), the pull sees neither push or both, and the next pull from its
/// checkpoint brings every change. With positions taken from a sequence, the second push would commit above the
/// first's uncommitted positions, the pull would be given its checkpoint, and the first push's changes would
/// never be pulled.
@Suite(.enabled(if: TestDatabase.isWanted, "OUTPOST_TEST_POSTGRES_URL is unset: PostgreSQL feed tests skipped"))
struct PostgresFeedTests {
    static let admin = TokenEntry(
        id: "tok_admin",
        practice: TinyPractice.practice,
        role: .admin,
        scope: .practice,
        label: "test",
        createdAtMillis: 0
    )

    /// Holds the first push that reaches it until released.
    actor Gate {
        private var isUsed = false
        private(set) var isHolding = false
        private var waiting: CheckedContinuation<Void, Never>?

        func hold() async {
            guard !isUsed else { return }
            isUsed = true
            isHolding = true
            await withCheckedContinuation { waiting = $0 }
        }

        func release() {
            isHolding = false
            waiting?.resume()
            waiting = nil
        }
    }

    actor Flag {
        private(set) var isSet = false
        func set() { isSet = true }
    }

    func now() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    @Test func aPushThatCommitsLaterNeverLandsBelowACheckpointAlreadyGiven() async throws {
        let database = try TestDatabase()
        let gate = Gate()
        let store = try await PostgresStore.open(
            try PostgresLocation(url: database.url),
            logger: Logger(label: "test"),
            beforePushCommit: { await gate.hold() }
        )
        defer { store.close() }
        try TestDatabase.psql(
            database.url,
            """
            INSERT INTO practice (id, name, created_at) VALUES ('\(TinyPractice.practice)', 'Tiny', 0);
            INSERT INTO token (id, hash, practice, role, scope_sites, scope_teams, label, created_at)
            VALUES ('tok_admin', 'x', '\(TinyPractice.practice)', 'admin', '', '', 'test', 0);
            """
        )
        let folder = try TemporaryDirectory("outpost-pg-feed")
        var requests: [PushRequest] = []
        // Both replicas import the practice; the second gives the task an id of its own, since a task's
        // patient cannot change once written (two creations of one task would be refused, whatever the feed).
        let secondTask = "tsk_01JWMCKG1BY8F26N8A4JNVV0VB"
        for (name, task) in [("first", TinyPractice.task), ("second", secondTask)] {
            let replica = try LocalReplica(name, in: folder)
            let json = TinyPractice.json.replacingOccurrences(of: TinyPractice.task, with: task)
            try replica.care.importPractice(try PracticeDump.decode(Array(json.utf8)))
            requests.append(
                PushRequest(replica: replica.store.replicaID, changes: try replica.store.pendingChanges(limit: 10_000))
            )
        }
        let expected = Set(requests.flatMap { $0.changes.map(\.id) })

        let first = Task {
            try await store.push(
                requests[0],
                token: Self.admin,
                report: .init(),
                now: now(),
                maxClockSkewMillis: 60_000
            )
        }
        var polls = 0
        while !(await gate.isHolding) {
            polls += 1
            try #require(polls < 3_000, "the first push never reached its commit")
            try await Task.sleep(for: .milliseconds(10))
        }
        let secondDone = Flag()
        let second = Task {
            defer { Task { await secondDone.set() } }
            return try await store.push(
                requests[1],
                token: Self.admin,
                report: .init(),
                now: now(),
                maxClockSkewMillis: 60_000
            )
        }
        // The second push either commits (positions not in commit order) or waits for the first's lock.
        polls = 0
        while !(await secondDone.isSet) {
            let waiting = try TestDatabase.psql(
                database.url,
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting != "0" { break }
            polls += 1
            try #require(polls < 3_000, "the second push neither committed nor waited")
            try await Task.sleep(for: .milliseconds(10))
        }

        let between = try await store.pull(
            token: Self.admin,
            replica: nil,
            report: .init(),
            since: 0,
            limit: 100_000,
            now: now()
        )
        await gate.release()
        _ = try await first.value
        _ = try await second.value
        let after = try await store.pull(
            token: Self.admin,
            replica: nil,
            report: .init(),
            since: between.checkpoint,
            limit: 100_000,
            now: now()
        )
        let seen = (between.changes + after.changes).map(\.id)
        #expect(Set(seen) == expected, "\(expected.count - Set(seen).count) changes skipped by the pull")
        #expect(seen.count == Set(seen).count, "no change is pulled twice")
    }
}
