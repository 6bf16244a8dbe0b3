import Foundation
import OutpostCRDT
import OutpostClient
import OutpostTestSupport
import Testing

/// A real `outpost` killed (SIGKILL) in the middle of writing a snapshot page, a received pull page and a
/// conflict resolution leaves a store whose projection equals a recomputation from its record states
/// (`outpost doctor`), and the next command completes the work.
///
/// The kill is placed by the store's fault point, never by timing: with `OUTPOST_TEST_KILL_AFTER_PROJECTED=N`
/// the process kills itself once the projection of its N-th record is written, inside the write transaction,
/// before it commits (docs/store.md, "The projection").
@Suite(.serialized)
struct ProjectionKillTests {
    /// A device's `outpost` with the fault point armed at the `count`-th projected record.
    func killed(_ device: Device, after count: Int, _ arguments: String...) async throws -> RunResult {
        var environment = device.environment
        environment["OUTPOST_TEST_KILL_AFTER_PROJECTED"] = String(count)
        return try await runProcess(Built.outpost, arguments, in: device.directory.url, environment: environment)
    }

    func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// `outpost doctor` finds the store sound and its projection equal to a recomputation from the states.
    func expectSound(
        _ device: Device,
        _ when: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let doctor = try await device.run("doctor")
        #expect(
            doctor.status == 0 && doctor.stdout.contains("store ok"),
            "\(device.name) \(when): \(doctor)",
            sourceLocation: sourceLocation
        )
    }

    /// `device`'s sync killed at `point`: the store is sound after the kill, the next sync completes it, and
    /// `device` then exports what `reference` exports.
    func expectRecovers(_ device: Device, like reference: Device, afterASyncKilledAt point: Int) async throws {
        let run = try await killed(device, after: point, "sync")
        #expect(run.status == SIGKILL, "the sync was not killed: \(run)")
        try await expectSound(device, "after the kill")
        try await device.ok("sync")
        try await expectSound(device, "after the next sync")
        let exported = try await reference.ok("export")
        #expect(try await device.ok("export") == exported)
    }

    /// A server and an admin replica `a` holding the small practice, synced.
    func practice() async throws -> (TestServer, TemporaryDirectory, Device) {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-projection-kill")
        let a = Device("a", in: folder)
        try await a.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await a.ok("import", Built.fixture("practice-small.json"))
        try await a.ok("sync")
        return (server, folder, a)
    }

    /// Edits of projected fields on `a`, not yet pushed: tasks closed and reassigned, a patient moved, new
    /// events (what the scorecard and gaps read from the projection too: conditions, an observation's value, an
    /// encounter's cost, a task's status written a second time).
    func editProjectedFields(on a: Device) async throws {
        let tasks = try #require(try json(try await a.ok("task", "list", "--json")) as? [[String: Any]])
        let patients = try #require(try json(try await a.ok("patient", "list", "--json")) as? [[String: Any]])
        let subgroups = try #require(try json(try await a.ok("subgroup", "list", "--json")) as? [[String: Any]])
        let open = tasks.filter { ($0["fields"] as? [String: Any])?["status"] as? String == "ready" }
        for task in open.prefix(3) { try await a.ok("task", "done", try #require(task["id"] as? String)) }
        for task in tasks.suffix(2) {
            try await a.ok("task", "note", try #require(task["id"] as? String), "Called back")
        }
        let patient = try #require(patients.first?["id"] as? String)
        let subgroup = try #require(subgroups.last?["id"] as? String)
        try await a.ok(
            "patient",
            "set",
            patient,
            "subgroup=\(subgroup)",
            "careGaps+=a1c-overdue",
            "riskTier=high",
            "conditions+=E11.9"
        )
        try await a.ok("observe", patient, "4548-4", "8.1", "--at", "2026-05-02T10:00:00Z")
        try await a.ok("encounter", "add", patient, "home", "--at", "2026-05-02T11:00:00Z", "--cost-cents", "12000")
    }

    /// ``practice()``, a replica `b` bootstrapped from it, then ``editProjectedFields(on:)`` on `a`, pushed: what
    /// `b` pulls next. The server and folder are returned to keep them alive.
    func bootstrappedWithEditsToPull() async throws -> (TestServer, TemporaryDirectory, Device, Device) {
        let (server, folder, a) = try await practice()
        let b = Device("b", in: folder)
        try await b.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await b.ok("sync")
        try await editProjectedFields(on: a)
        try await a.ok("sync")
        return (server, folder, a, b)
    }

    /// Seeded points of the first snapshot page (records 1, 40 and 150 of it).
    @Test(arguments: [1, 40, 150])
    func aBootstrapKilledInASnapshotPageLeavesTheProjectionEqualToTheStates(point: Int) async throws {
        let (server, folder, a) = try await practice()
        let b = Device("b", in: folder)
        try await b.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await expectRecovers(b, like: a, afterASyncKilledAt: point)
    }

    /// Seeded points of a received page holding edits of projected fields (tasks closed and reassigned,
    /// patients moved, new events).
    @Test(arguments: [1, 3, 7])
    func aPullKilledInAReceivedPageLeavesTheProjectionEqualToTheStates(point: Int) async throws {
        let (server, folder, a, b) = try await bootstrappedWithEditsToPull()
        defer { withExtendedLifetime((server, folder)) {} }

        try await expectRecovers(b, like: a, afterASyncKilledAt: point)
    }

    /// A replica of the whole practice with 1,000 edits to push pulls beside its push (docs/sync.md, step 4): its
    /// sync killed in a pulled page, at seeded points, whatever the push beside it had stored, leaves a sound
    /// store; the next sync sends what the server lacks, and both replicas converge with every edit of both.
    @Test(arguments: [1, 5])
    func aPullBesideAPushKilledInAReceivedPageLosesNoEdit(point: Int) async throws {
        let (server, folder, a, b) = try await bootstrappedWithEditsToPull()
        defer { withExtendedLifetime((server, folder)) {} }
        let patients = try #require(try json(try await b.ok("patient", "list", "--json")) as? [[String: Any]])
        let patient = RecordRef(type: "patient", id: try #require(patients.last?["id"] as? String))
        let notes = (0..<SyncEngine.Options().pullBesidePushFrom).map { "Visit note \($0)" }
        do {
            let replica = try LocalReplica(openingAt: b.store)
            _ = try replica.care.update(notes.map { .append(patient, "notes", .string($0)) })
        }

        // What makes its sync pull beside its push (docs/sync.md, step 4): a checkpoint, the administrator's
        // whole-practice token, and at least this many changes to push.
        #expect(try await b.status()["pendingChanges"] as? Int ?? 0 >= SyncEngine.Options().pullBesidePushFrom)
        let run = try await killed(b, after: point, "sync")
        #expect(run.status == SIGKILL, "the sync was not killed: \(run)")
        try await expectSound(b, "after the kill")
        try await b.ok("sync")
        try await expectSound(b, "after the next sync")
        #expect(try await b.status()["pendingChanges"] as? Int == 0)
        try await a.ok("sync")
        let exported = try await a.ok("export")
        #expect(try await b.ok("export") == exported)
        let shown = try #require(try json(try await a.ok("patient", "show", patient.id, "--json")) as? [String: Any])
        let fields = try #require(shown["fields"] as? [String: Any])
        let entries = try #require(fields["notes"] as? [[String: Any]])
        let kept = entries.compactMap { $0["value"] as? String }.filter { $0.hasPrefix("Visit note") }
        #expect(kept == notes, "site A holds every note B wrote, in order")
    }

    @Test func aConflictResolutionKilledBeforeItCommitsLeavesTheProjectionEqualToTheStates() async throws {
        let (server, folder, a) = try await practice()
        let b = Device("b", in: folder)
        try await b.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await b.ok("sync")
        let patients = try #require(try json(try await a.ok("patient", "list", "--json")) as? [[String: Any]])
        let subgroups = try #require(try json(try await a.ok("subgroup", "list", "--json")) as? [[String: Any]])
        let patient = try #require(patients.first?["id"] as? String)
        // A conflict on a projected field: the patient's subgroup (the projection holds the provisional value).
        try await a.ok("patient", "set", patient, "subgroup=\(try #require(subgroups.first?["id"] as? String))")
        try await b.ok("patient", "set", patient, "subgroup=\(try #require(subgroups.last?["id"] as? String))")
        for device in [a, b, a] { try await device.ok("sync") }
        let id = "\(patient).subgroup"
        let shown = try #require(try json(try await b.ok("conflicts", "show", id, "--json")) as? [String: Any])
        let values = try #require(shown["values"] as? [[String: Any]])
        // The value that is not provisional: resolving to it changes the projected subgroup.
        let pick = try #require(values.firstIndex { $0["provisional"] as? Bool != true }) + 1

        let run = try await killed(
            b,
            after: 1,
            "conflicts",
            "resolve",
            id,
            "--pick",
            String(pick),
            "--reason",
            "checked"
        )
        #expect(run.status == SIGKILL, "the resolution was not killed: \(run)")
        try await expectSound(b, "after the kill")
        let listed = try await b.ok("conflicts", "list")
        #expect(listed.contains(id), "a killed resolution resolved the conflict")
        try await b.ok("conflicts", "resolve", id, "--pick", String(pick), "--reason", "checked")
        try await expectSound(b, "after the resolution")
        let after = try await b.ok("conflicts", "list")
        #expect(!after.contains(id))
    }
}
