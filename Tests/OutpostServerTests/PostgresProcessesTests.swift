import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Several stateless `outpost-server` processes on one PostgreSQL database: any request may reach any process.
///
/// Three processes, twenty in-process devices pushing and pulling at once, each request sent to a randomly
/// chosen live process; one process is killed with SIGKILL while pushes are in flight on it (one push it stored
/// never gets its answer out), and the devices carry on through the others. At the end every device holds every
/// change exactly once, all exports are identical, and no acknowledged change is lost.
@Suite(.enabled(if: TestDatabase.isWanted, "OUTPOST_TEST_POSTGRES_URL is unset: PostgreSQL process tests skipped"))
struct PostgresProcessesTests {
    /// Sends each request to a randomly chosen live process, and kills one process when the first push it
    /// answers after `killAfterPushes` pushes in all completes: that push was stored, but its answer is lost, and
    /// whatever else was in flight on that process breaks.
    final class Router: SyncTransport {
        struct State {
            var dead: Set<Int> = []
            var pushes = 0
            var requests: [Int]
            var killedAtPush: Int?
        }

        let transports: [HTTPTransport]
        let pids: [Int32]
        let victim: Int
        let killAfterPushes: Int
        private let state: Mutex<State>

        init(_ servers: [TestServer], token: String, victim: Int, killAfterPushes: Int) {
            transports = servers.map { $0.transport(token) }
            pids = servers.map(\.pid)
            self.victim = victim
            self.killAfterPushes = killAfterPushes
            state = Mutex(State(requests: Array(repeating: 0, count: servers.count)))
        }

        var snapshot: State { state.withLock { $0 } }

        func send(_ request: TransportRequest) async throws -> TransportResponse {
            let index = state.withLock { state in
                let alive = transports.indices.filter { !state.dead.contains($0) }
                let index = alive.randomElement() ?? 0
                state.requests[index] += 1
                return index
            }
            let response = try await transports[index].send(request)
            guard request.path == Wire.Path.push, response.status == 200 else { return response }
            let kill = state.withLock { state in
                state.pushes += 1
                guard index == victim, state.killedAtPush == nil, state.pushes >= killAfterPushes else {
                    return false
                }
                state.killedAtPush = state.pushes
                state.dead.insert(index)
                return true
            }
            if kill {
                Foundation.kill(pids[index], SIGKILL)
                throw InjectedFault(description: "connection lost: the process was killed")
            }
            return response
        }
    }

    /// Syncs until the outbox is empty, through whichever processes the router picks; a sync broken by the
    /// killed process is simply tried again (bounded).
    func syncUntilPushed(_ replica: LocalReplica, _ router: Router) async throws -> SyncReport {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let report = try await replica.engine(router, pushBatch: 25, pageSize: 500, retries: 3).sync()
                if report.pending == 0 { return report }
            } catch {
                try #require(attempt < 20, "a device could not sync through the live processes: \(error)")
            }
        }
    }

    @Test func twentyDevicesThroughThreeProcessesConvergeWithNothingLostWhenOneProcessIsKilled() async throws {
        let first = try await TestServer(backend: .postgres)
        let database = try #require(first.database)
        let servers = [first, try await TestServer(sharing: database), try await TestServer(sharing: database)]
        let admin = first.adminToken
        let folder = try TemporaryDirectory("outpost-processes")
        let rounds = 10
        let notesPerRound = 10
        let deviceCount = 20
        // Kill the second process about a third of the way through the pushes.
        let router = Router(servers, token: admin, victim: 1, killAfterPushes: deviceCount * rounds / 3)

        let origin = try LocalReplica("device-00", in: folder)
        try TinyPractice.load(into: origin.care)
        _ = try await syncUntilPushed(origin, router)
        var devices = [origin]
        for index in 1..<deviceCount {
            let device = try LocalReplica(String(format: "device-%02d", index), in: folder)
            let report = try await syncUntilPushed(device, router)
            #expect(report.bootstrapped)
            devices.append(device)
        }

        // Every device edits and syncs at once: notes (a log: every one kept) and a phone number (last writer
        // wins) on one of the three patients.
        let made = try await withThrowingTaskGroup(of: [ChangeID].self) { group in
            for (index, device) in devices.enumerated() {
                group.addTask {
                    let patient = RecordRef(type: "patient", id: TinyPractice.patients[index % 3])
                    var made: [ChangeID] = []
                    for round in 0..<rounds {
                        var edits: [Edit] = (0..<notesPerRound).map {
                            .append(patient, "notes", .string("Note \(index)-\(round)-\($0)"))
                        }
                        edits.append(.assign(patient, "phone", .string(String(format: "(406) 555-%04d", index))))
                        made += try device.care.update(edits).map(\.id)
                        _ = try await syncUntilPushed(device, router)
                    }
                    return made
                }
            }
            var all: [ChangeID] = []
            for try await ids in group { all += ids }
            return all
        }
        let created = Set(made)
        #expect(created.count == made.count)
        #expect(created.count == deviceCount * rounds * (notesPerRound + 1))

        let state = router.snapshot
        let killedAt = try #require(state.killedAtPush, "the process was never killed: \(state.pushes) pushes")
        #expect(killedAt < state.pushes, "pushes went on through the other processes after the kill")
        #expect(servers[1].process?.isRunning == false)
        #expect(state.requests.allSatisfy { $0 > 0 }, "every process served requests: \(state.requests)")

        // Every acknowledged change (outboxes are empty) is in the feed, exactly once.
        let feed = try await servers[0].feed(admin)
        #expect(Set(feed.map(\.id)).count == feed.count, "a change is in the feed twice")
        #expect(created.isSubset(of: Set(feed.map(\.id))), "\(created.subtracting(feed.map(\.id)).count) lost")

        // Everyone pulls what the others pushed last; then every device holds every change once.
        for device in devices { _ = try await syncUntilPushed(device, router) }
        let exported = try origin.export()
        for device in devices {
            #expect(try device.store.status().pendingChanges == 0)
            let held = try device.store.changes().map(\.id).filter { created.contains($0) }
            #expect(held.count == created.count, "\(device.store.replicaID): \(held.count) of \(created.count)")
            #expect(Set(held) == created, "\(device.store.replicaID) holds a change twice or misses one")
            #expect(try device.export() == exported, "\(device.store.replicaID) diverged")
        }
    }

    /// A long pull of `since` on `server`, answered with its status and body.
    static func longPoll(_ base: URL, token: String, since: String) async throws -> (Int, Data) {
        let url = try #require(URL(string: "\(base.absoluteString)/v1/changes?since=\(since)&wait=30"))
        var request = URLRequest(url: url, timeoutInterval: 120)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (body, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, body)
    }

    /// The live pulls `server` counts waiting (its `outpost_live_connections` gauge).
    func livePulls(_ server: TestServer) async throws -> Int {
        let (_, body) = try await server.request("GET", "/metrics")
        let line = String(decoding: body, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("outpost_live_connections ") }
        return Int(Double(line?.split(separator: " ").last ?? "") ?? -1)
    }

    /// Waits (bounded) until `server` counts `count` live pulls waiting; false if it never does.
    func livePulls(_ server: TestServer, reach count: Int) async throws -> Bool {
        for _ in 0..<1_000 {
            if try await livePulls(server) == count { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Live changes wake across processes: a long poll waiting on one process is answered when a device pushes
    /// to another. Shown by order, not by time: a poll of another practice, started first on the same process
    /// with the same wait, is still waiting when the woken poll answers; without the wake-up across processes,
    /// the later poll would end its wait after it.
    @Test func aLongPollOnOneProcessIsAnsweredWhenAnotherProcessStoresAChange() async throws {
        let first = try await TestServer(backend: .postgres)
        let second = try await TestServer(sharing: try #require(first.database))
        let admin = first.adminToken
        let folder = try TemporaryDirectory("outpost-live")
        let origin = try LocalReplica("origin", in: folder)
        try TinyPractice.load(into: origin.care)
        _ = try await origin.engine(first.transport(admin)).sync()
        let added = try await first.admin(["practice", "add", "Quiet clinic"])
        try #require(added.status == 0, "\(added)")
        let quiet = try await first.issueToken(role: "admin", practice: added.output)

        let base = second.url
        // Under a heavily loaded run the quiet poll may reach its wait's end (30 s) before the woken one answers,
        // or the woken one its own before the push: such an attempt shows nothing either way and is made again,
        // a bounded number of times.
        var shown = false
        for _ in 0..<5 where !shown {
            let head = try #require(try origin.store.checkpoint())
            let sentinel = Task { try await Self.longPoll(base, token: quiet, since: "0") }
            guard try await livePulls(second, reach: 1) else {
                _ = try? await sentinel.value
                continue
            }
            let woken = Task { try await Self.longPoll(base, token: admin, since: head) }
            guard try await livePulls(second, reach: 2) else {
                _ = try? await woken.value
                _ = try? await sentinel.value
                continue
            }
            try origin.care.update([
                .append(RecordRef(type: "patient", id: TinyPractice.patients[0]), "notes", .string("Pushed elsewhere"))
            ])
            let pushed = try await origin.engine(first.transport(admin)).sync()
            #expect(pushed.pushed == 1)
            let (status, body) = try await woken.value
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            let page = try Wire.makeDecoder().decode(PullResponse.self, from: body)
            #expect(page.changes.count <= 1)
            // It brought the change pushed to the other process, while the earlier poll of the quiet practice
            // still waits: it did not just reach its wait's end (then, under load, possibly before the push).
            let waiting = try await livePulls(second)
            shown = page.changes.count == 1 && waiting == 1
            if shown { sentinel.cancel() } else { _ = try? await sentinel.value }
        }
        #expect(shown, "the poll never answered before an earlier poll's wait ended: no wake-up across processes")
        await second.stop()
    }
}
