import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Testing

/// Issue 10's cases on the server's sync core, each found by trying the real server from outside: scoped
/// devices missing fields, scopes escaped with another device's replica id, a site device settling a
/// conflict, ids shared across practices, forged provenance, and a purge that hid later changes.
@Suite(.serialized)
struct TrustRegressionTests {
    func push(_ server: TestServer, _ token: String, _ replica: String, _ changes: [Change]) async throws -> (Int, Data)
    {
        try await server.request(
            "POST",
            Wire.Path.push,
            token: token,
            body: try wire(PushRequest(replica: ReplicaID(replica)!, changes: changes))
        )
    }

    // MARK: 1. Scoped devices receive every field of new records

    @Test func aScopedDeviceReceivesEveryFieldOfRecordsCreatedForItsPatients() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-fields")
        let admin = Device("admin", in: folder)
        try await admin.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await admin.ok("import", try TinyPractice.write(in: folder))
        try await admin.ok("sync")
        let nurse = Device("nurse", in: folder)
        try await nurse.join(
            server,
            token: try server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
        )

        let patient = TinyPractice.patients[0]
        let task = try await admin.ok(
            "task",
            "add",
            patient,
            "kind=outreach",
            "title=Call about A1c",
            "dueDate=2026-06-10",
            "priority=urgent"
        )
        let observation = try await admin.ok("observe", patient, "4548-4", "7.9")
        let encounter = try await admin.ok("encounter", "add", patient, "home", "--cost-cents", "12500")
        try await admin.ok("sync")
        try await nurse.ok("sync")

        for id in [task, observation, encounter] {
            let kind = id.hasPrefix("tsk_") ? "task" : id.hasPrefix("obs_") ? "observation" : "encounter"
            await #expect(try nurse.ok(kind, "show", id, "--json") == admin.ok(kind, "show", id, "--json"), "\(id)")
        }
        await #expect(try nurse.export() == admin.export())
    }

    @Test func aRecordWhosePatientArrivesInALaterPushReachesScopedDevicesWhole() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-split")
        let admin = try LocalReplica("admin", in: folder)
        try TinyPractice.load(into: admin.care)
        _ = try await admin.engine(server.transport(server.adminToken)).sync()
        let nurse = try LocalReplica("nurse", in: folder)
        let nurseToken = try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
        _ = try await nurse.engine(server.transport(nurseToken)).sync()

        // A task created across two pushes (a batch boundary fell inside its creation): its title and kind first,
        // its patient after the nurse's device pulled past them.
        let task = "tsk_01JWMCKG1BY8F26N8A4JNVV0VQ"
        let first = [
            try change("splitter/1", "task", task, "title", "Check the pump"),
            try change("splitter/2", "task", task, "kind", "outreach"),
            try change("splitter/3", "task", task, "priority", "routine"),
        ]
        #expect(try await push(server, server.adminToken, "splitter", first).0 == 200)
        _ = try await nurse.engine(server.transport(nurseToken)).sync()
        let second = [
            try change("splitter/4", "task", task, "patient", .string(TinyPractice.patients[1])),
            try change("splitter/5", "task", task, "status", "requested"),
            try change("splitter/6", "task", task, "team", .string(TinyPractice.team)),
        ]
        #expect(try await push(server, server.adminToken, "splitter", second).0 == 200)
        _ = try await nurse.engine(server.transport(nurseToken)).sync()
        _ = try await admin.engine(server.transport(server.adminToken)).sync()

        let held = try #require(try nurse.care.record(RecordRef(type: "task", id: task)))
        #expect(held.canonicalJSON() == (try admin.care.record(RecordRef(type: "task", id: task)))?.canonicalJSON())
        #expect(try nurse.export() == admin.export())
    }

    // MARK: 2. A replica id belongs to one token

    @Test func aTokenCannotBorrowAnotherDevicesReplicaIDToPullOrPushAndTheDeviceContinuesUnderItsSuccessor()
        async throws
    {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-borrow")
        let admin = try LocalReplica("admin", in: folder)
        try TinyPractice.load(into: admin.care)
        // A second team holding one patient, so the kiosk's scope is not the nurse's.
        let otherTeam = try TinyPractice.addSecondTeam(in: admin.care)
        _ = try await admin.engine(server.transport(server.adminToken)).sync()

        let nurse = try await server.issueTokenEntry(role: "clinician", extra: ["--teams", TinyPractice.team])
        let kiosk = try await server.issueToken(role: "site-device", extra: ["--teams", otherTeam])
        let laptop = Device("laptop", in: folder)
        try await laptop.join(server, token: nurse.secret)
        let replica = try await #require(try laptop.status()["replica"] as? String)
        try await laptop.ok("patient", "set", TinyPractice.patients[0], "preferredLanguage=es")

        // The kiosk presenting the laptop's replica id: refused for pulls, snapshots and pushes.
        for path in ["/v1/changes?since=0&replica=\(replica)", "/v1/snapshot?replica=\(replica)"] {
            try expectRefusal(
                try await server.request("GET", path, token: kiosk),
                status: 403,
                code: "replica_mismatch"
            )
        }
        let forged = try change(
            "\(replica)/999",
            "patient",
            TinyPractice.patients[0],
            "phone",
            "(406) 555-0100",
            author: "replica:\(replica)"
        )
        try expectRefusal(try await push(server, kiosk, replica, [forged]), status: 403, code: "replica_mismatch")
        // Still refused once the laptop's token is revoked: revoking frees nothing.
        try await #require(try server.admin(["token", "revoke", nurse.id]).status == 0)
        try expectRefusal(try await push(server, kiosk, replica, [forged]), status: 403, code: "replica_mismatch")
        try expectRefusal(
            try await server.request("GET", "/v1/changes?since=0&replica=\(replica)", token: kiosk),
            status: 403,
            code: "replica_mismatch"
        )

        // The laptop keeps its data and outbox, and continues under the successor an administrator issues.
        await #expect(try laptop.run("sync").status == 1)
        await #expect(try laptop.status()["pendingChanges"] as? Int == 1)
        let successor = try await server.issueToken(role: "", extra: ["--successor-of", nurse.id])
        try await laptop.ok("remote", "set", server.url.absoluteString, "--token", successor)
        try await laptop.ok("sync")
        await #expect(try laptop.status()["pendingChanges"] as? Int == 0)
        _ = try await admin.engine(server.transport(server.adminToken)).sync()
        let patient = try #require(try admin.care.record(RecordRef(type: "patient", id: TinyPractice.patients[0])))
        #expect(patient.canonicalJSON().contains(#""preferredLanguage":"es""#))
        // Issuing the successor revoked nothing else: the kiosk's own replica works as before.
        let kioskReplica = try LocalReplica("kiosk", in: folder)
        _ = try await kioskReplica.engine(server.transport(kiosk)).sync()
        #expect(try kioskReplica.care.records(.patient).map(\.ref.id) == [TinyPractice.patients[2]])
    }

    // MARK: 3. Any change that closes a conflict is a resolution

    @Test func aSiteDeviceCannotCloseAConflictByReplacingOnlyOneOfItsValues() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-settle")
        let a = try LocalReplica("site-a", in: folder)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let b = try LocalReplica("site-b", in: folder)
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        _ = try a.care.update([.assign(patient, "birthDate", "1961-07-24")])
        _ = try b.care.update([.assign(patient, "birthDate", "1961-07-25")])
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        await #expect(try server.admin(["conflicts", "list", "--json"]).output.contains("birthDate"))

        let kiosk = try await server.issueToken(role: "site-device")
        let live = try b.care.conflict(CareStore.conflictID(patient, "birthDate")).values
        try #require(live.count == 2)
        // Replace one of the two values with the other's: no conflict would be left.
        let settle = try change(
            "kiosk/1",
            "patient",
            patient.id,
            "birthDate",
            live[1].value,
            replaces: [live[0].id],
            author: "replica:kiosk"
        )
        let before = try await server.holdings(server.adminToken)
        try expectRefusal(try await push(server, kiosk, "kiosk", [settle]), status: 403, code: "forbidden")
        #expect(try await server.holdings(server.adminToken) == before)
        await #expect(try server.admin(["conflicts", "list", "--json"]).output.contains("birthDate"))
        // A site device's own replica refuses such an edit before it enters the outbox, where the server's
        // refusal would block every later change.
        let kioskReplica = try LocalReplica("kiosk-device", in: folder)
        _ = try await kioskReplica.engine(server.transport(kiosk)).sync()
        #expect(throws: ClientError.self) {
            try kioskReplica.care.update([.assign(patient, "birthDate", live[1].value)])
        }
        #expect(try kioskReplica.store.status().pendingChanges == 0)
        _ = try kioskReplica.care.update([.assign(patient, "phone", "(406) 555-0112")])
        #expect(try kioskReplica.store.status().pendingChanges == 1)
        // An ordinary edit of another field by the same device is still fine.
        let phone = try change("kiosk/1", "patient", patient.id, "phone", "(406) 555-0111", author: "replica:kiosk")
        #expect(try await push(server, kiosk, "kiosk", [phone]).0 == 200)
    }

    // MARK: 7. Ids are per practice

    @Test func twoPracticesImportingTheSameDumpEachSyncTheirOwnRecords() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-twins")
        let dump = try TinyPractice.write(in: folder)
        let first = Device("first", in: folder)
        try await first.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await first.ok("import", dump)
        try await first.ok("sync")
        let other = try await server.admin(["practice", "add", "Twin practice"]).output
        let otherToken = try await server.issueToken(role: "admin", practice: other)
        let second = Device("second", in: folder)
        try await second.ok("init", "--server", server.url.absoluteString, "--token", otherToken)
        try await second.ok("import", dump)
        let synced = try await second.ok("sync", "--json")
        await #expect(try second.status()["pendingChanges"] as? Int == 0, "\(synced)")

        // Each practice edits its own copy of the same patient id; neither sees the other's edit.
        try await first.ok("patient", "set", TinyPractice.patients[0], "preferredLanguage=fr")
        try await second.ok("patient", "set", TinyPractice.patients[0], "preferredLanguage=de")
        try await first.ok("sync")
        try await second.ok("sync")
        let firstTwin = Device("first-twin", in: folder)
        try await firstTwin.join(server, token: server.adminToken)
        let secondTwin = Device("second-twin", in: folder)
        try await secondTwin.join(server, token: otherToken)
        await #expect(try firstTwin.export() == first.export())
        await #expect(try secondTwin.export() == second.export())
        await #expect(try first.export().contains(#""preferredLanguage":"fr""#))
        await #expect(try !first.export().contains(#""preferredLanguage":"de""#))
        await #expect(try second.export().contains(#""preferredLanguage":"de""#))
    }

    // MARK: 11. Provenance

    @Test func authorsAndSitesMustBeThePracticesAndATokenBoundToAPersonSignsOnlyAsThatPerson() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-provenance")
        let a = try LocalReplica("site-a", in: folder)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let admin = server.adminToken
        let patient = TinyPractice.patients[0]
        let before = try await server.holdings(admin)

        let refused: [(author: String, site: String?, field: String)] = [
            ("Dr. Somebody Else", nil, "author"),
            ("", nil, "author"),
            (TinyPractice.site, nil, "author"),
            ("per_01JWMCKG09N7RQ4FH82GBPR87Z", nil, "author"),
            ("replica:site-b", nil, "author"),
            (String(repeating: "x", count: 100_000), nil, "author"),
            (TinyPractice.person, TinyPractice.person, "site"),
            (TinyPractice.person, "sit_01JWMCKG021VKCN0WEWEXE0EQZ", "site"),
            (TinyPractice.person, "the clinic", "site"),
        ]
        for (index, forged) in refused.enumerated() {
            let edit = try change(
                "writer/\(index + 1)",
                "patient",
                patient,
                "phone",
                "(406) 555-0123",
                author: forged.author,
                site: forged.site
            )
            let error = try expectRefusal(
                try await push(server, admin, "writer", [edit]),
                status: 422,
                code: "invalid_change"
            )
            #expect(error["field"] as? String == forged.field, "\(forged.author.prefix(40)), \(forged.site ?? "-")")
        }
        #expect(try await server.holdings(admin) == before)
        let good = [
            try change("writer/1", "patient", patient, "phone", "(406) 555-0124", site: TinyPractice.site),
            try change("writer/2", "patient", patient, "phone", "(406) 555-0125", author: "replica:writer"),
        ]
        #expect(try await push(server, admin, "writer", [good[0]]).0 == 200)
        #expect(try await push(server, admin, "writer", [good[1]]).0 == 200)

        // A token issued to a person signs only as that person.
        let unknown = try await server.admin(["token", "issue", "--role", "clinician", "--person", patient])
        #expect(unknown.status != 0, "\(unknown)")
        let stranger = try await server.admin([
            "token", "issue", "--role", "clinician", "--person", "per_01JWMCKG09N7RQ4FH82GBPR87Z",
        ])
        #expect(stranger.status != 0, "\(stranger)")
        let personal = try await server.issueToken(role: "clinician", extra: ["--person", TinyPractice.person])
        let asSelf = try change("personal/1", "patient", patient, "phone", "(406) 555-0126")
        let asReplica = try change(
            "personal/2",
            "patient",
            patient,
            "phone",
            "(406) 555-0127",
            author: "replica:personal"
        )
        #expect(try await push(server, personal, "personal", [asSelf]).0 == 200)
        let error = try expectRefusal(
            try await push(server, personal, "personal", [asReplica]),
            status: 422,
            code: "invalid_change"
        )
        #expect(error["field"] as? String == "author")
    }

    // MARK: Purges keep the feed's order

    /// A new outreach task for `patient` made on `replica`, and the fields its changes write, in outbox order (its
    /// creation: `kind` comes before `patient`).
    func outreachTask(for patient: String, on replica: LocalReplica) throws -> (task: RecordRef, fields: [String]) {
        let task = try replica.care.create(
            .task,
            fields: [
                "kind": ["outreach"], "patient": [.string(patient)], "priority": ["routine"], "status": ["requested"],
                "team": [.string(TinyPractice.team)], "title": ["Ask about the fall"],
            ]
        )
        return (task, try replica.store.pendingChanges().filter { $0.record == task }.map(\.field))
    }

    /// The administrator's transport, cut off before every push after the first: a sync fails after its first
    /// batch is stored.
    func cutAfterFirstPush(_ server: TestServer) -> FaultTransport {
        FaultTransport(
            server.transport(server.adminToken),
            before: { request, number in
                if request.path == Wire.Path.push, number > 1 { throw InjectedFault(description: "cut off") }
            }
        )
    }

    /// A task made offline for a patient purged meanwhile, pushed a change at a time (a device's push batches may
    /// split a record's changes, in field order): the first batch, before the task's `patient` field, is stored
    /// without an owner; the batch that names the patient erases it, and the later ones are dropped by the task's
    /// id. The server then holds nothing of the task, and a new device is not sent it, also when a device
    /// bootstrapped between the batches (the pages kept from that bootstrap are not sent again); that device keeps
    /// its checkpoint (the erased change rows were the feed's last: the feed head must not go back).
    @Test(arguments: Backend.all) func aTaskForAPurgedPatientSplitBetweenPushesIsErasedWhole(
        backend: Backend
    ) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-purge-split")
        let a = try LocalReplica("site-a", in: folder)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let patient = TinyPractice.patients[2]
        let purged = try await server.admin(["purge", "patient", patient, "--reason", "test erasure"])
        try #require(purged.status == 0, "\(purged)")

        let (task, fields) = try outreachTask(for: patient, on: a)
        try #require(fields.first == "kind" && fields.count > 2, "the first change comes before the patient: \(fields)")
        // The first batch pushed, the sync cut off; a new device bootstraps meanwhile.
        let cut = cutAfterFirstPush(server)
        await #expect(throws: (any Error).self) { try await a.engine(cut, pushBatch: 1).sync() }
        let between = try LocalReplica("site-c", in: folder)
        _ = try await between.engine(server.transport(server.adminToken)).sync()
        try #require(try between.care.record(task) != nil, "the first batch was stored without an owner")

        let report = try await a.engine(server.transport(server.adminToken), pushBatch: 1).sync()
        #expect(report.erased == fields.count - 1, "\(report)")
        #expect(report.pending == 0 && report.refused == 0, "\(report)")
        #expect(try a.care.record(task) == nil)
        let again = try await between.engine(server.transport(server.adminToken)).sync()
        #expect(!again.bootstrapped, "the feed head went back past the device's checkpoint: \(again)")
        // The device held the task's first part under no patient: the pull names the task beside the patient.
        #expect(try between.care.record(task) == nil, "the part pulled between the pushes stayed on the device")
        #expect(try between.export() == a.export())
        // A device bootstrapping again is told the same on its snapshot's first page.
        let (_, first) = try await server.request("GET", "/v1/snapshot?limit=100", token: server.adminToken)
        let page = try JSONDecoder().decode(SnapshotPage.self, from: first)
        #expect(page.removed == [patient, task.id].sorted(), "\(page.removed)")

        #expect(try await server.feed(server.adminToken).allSatisfy { $0.record != task })
        let b = try LocalReplica("site-b", in: folder)
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        #expect(try b.care.record(task) == nil)
        #expect(try b.export() == a.export())
    }

    /// A push batch ends before a new record's creation rather than inside it (its fields come in order, `kind`
    /// before `patient`): a sync cut off after the first batch leaves no part of the task on the server, where it
    /// would be held without a patient, and a device bootstrapping meanwhile never holds a task of no patient.
    @Test func aPushBatchDoesNotEndInsideANewRecord() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-batch-whole")
        let a = try LocalReplica("site-a", in: folder)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let patient = TinyPractice.patients[1]
        _ = try a.care.update([
            .assign(RecordRef(type: "patient", id: patient), "phone", "(406) 555-0171"),
            .assign(RecordRef(type: "patient", id: TinyPractice.patients[0]), "phone", "(406) 555-0172"),
        ])
        let (task, taskFields) = try outreachTask(for: patient, on: a)
        let fields = taskFields.count
        try #require(fields > 2)
        // A batch of the two edits and all but one of the task's changes, were it cut by count; the sync cut off
        // after it.
        let cut = cutAfterFirstPush(server)
        await #expect(throws: (any Error).self) { try await a.engine(cut, pushBatch: fields + 1).sync() }
        let between = try LocalReplica("site-c", in: folder)
        _ = try await between.engine(server.transport(server.adminToken)).sync()
        #expect(try between.care.record(task) == nil, "part of the task reached the server before the rest")
        #expect(try between.export().contains("555-0172"), "the first batch held the two edits")

        _ = try await a.engine(server.transport(server.adminToken), pushBatch: fields + 1).sync()
        _ = try await between.engine(server.transport(server.adminToken)).sync()
        #expect(try between.export() == a.export())
    }

    @Test func aChangeMadeAfterAPurgeReachesADeviceThatPulledPastThePurge() async throws {
        let server = try await TestServer()
        let folder = try TemporaryDirectory("outpost-purge-order")
        let a = try LocalReplica("site-a", in: folder)
        try TinyPractice.load(into: a.care)
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        let b = try LocalReplica("site-b", in: folder)
        _ = try await b.engine(server.transport(server.adminToken)).sync()

        let purged = try await server.admin(["purge", "patient", TinyPractice.patients[2], "--reason", "test erasure"])
        try #require(purged.status == 0, "\(purged)")
        #expect(try await a.engine(server.transport(server.adminToken)).sync().purged == 1)
        _ = try b.care.update([.assign(RecordRef(type: "patient", id: TinyPractice.patients[1]), "phone", "555-0199")])
        _ = try await b.engine(server.transport(server.adminToken)).sync()
        _ = try await a.engine(server.transport(server.adminToken)).sync()
        #expect(try a.export() == b.export())
        #expect(try a.export().contains("555-0199"))
    }
}
