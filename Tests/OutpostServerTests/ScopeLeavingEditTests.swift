import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostTestSupport
import Synchronization
import Testing

/// A scoped device's edit to a patient that leaves its scope reaches the server before the device removes the
/// patient, also when it is made after the sync's push, while the pull that removes the patient is on its way
/// (as during `outpost sync --watch`'s long poll): protocol/README.md section 11.
struct ScopeLeavingEditTests {
    /// The tiny practice and a second team, pushed by an admin replica; a nurse's replica scoped to the first team,
    /// synced once.
    func nurseOfTheFirstTeam(
        on backend: Backend
    ) async throws -> (
        server: TestServer, directory: TemporaryDirectory, admin: LocalReplica, otherTeam: String, token: String,
        nurse: LocalReplica
    ) {
        let server = try await TestServer(backend: backend)
        let directory = try TemporaryDirectory("outpost-scope-leaving")
        let admin = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: admin.care)
        let otherTeam = try TinyPractice.addSecondTeam(in: admin.care)
        _ = try await admin.engine(server.transport(server.adminToken)).sync()
        let token = try await server.issueToken(role: "clinician", extra: ["--teams", TinyPractice.team])
        let nurse = try LocalReplica("nurse", in: directory)
        _ = try await nurse.engine(server.transport(token)).sync()
        return (server, directory, admin, otherTeam, token, nurse)
    }

    /// ``nurseOfTheFirstTeam(on:)``, then the admin moves the tiny practice's first patient, which the nurse holds,
    /// to the second team; the nurse has not synced since.
    func firstPatientMovedOut(
        on backend: Backend
    ) async throws -> (
        server: TestServer, directory: TemporaryDirectory, admin: LocalReplica, adminEngine: SyncEngine, token: String,
        nurse: LocalReplica, patient: RecordRef
    ) {
        let (server, directory, admin, otherTeam, token, nurse) = try await nurseOfTheFirstTeam(on: backend)
        let adminEngine = admin.engine(server.transport(server.adminToken))
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        try #require(try nurse.care.record(patient) != nil)
        try admin.care.update([.assign(patient, "primaryTeam", .string(otherTeam))])
        _ = try await adminEngine.sync()
        return (server, directory, admin, adminEngine, token, nurse, patient)
    }

    /// Answers a sync's first pull `410 checkpoint_expired`, as a server does after a compaction past the device's
    /// checkpoint: the device bootstraps again.
    static let expiringFirstPull: FaultTransport.Answer = { request, number in
        guard request.path == Wire.Path.changes, number == 1 else { return nil }
        return TransportResponse(
            status: 410,
            body: Data(PullBesidePushTests.OrderTransport.expired.utf8),
            contentType: Wire.contentType
        )
    }

    /// ``firstPatientMovedOut(on:)``, then a sync of the nurse whose first pull meets an expired checkpoint, so she
    /// bootstraps again and the snapshot's first page removes the patient; she edits the patient as the first
    /// exchange with `path` goes (`goes`) or as its answer comes back. The edit is pushed once, `because`, never
    /// refused, and the patient removed; the admin then holds the edit.
    func editReachesTheServerBeforeTheBootstrapRemovesItsPatient(
        on backend: Backend,
        when path: String,
        goes: Bool,
        because: String
    ) async throws {
        let (server, directory, admin, adminEngine, token, nurse, patient) = try await firstPatientMovedOut(
            on: backend
        )
        defer { withExtendedLifetime(directory) {} }
        let care = nurse.care
        let edit = { @Sendable (request: TransportRequest, number: Int, going: Bool) throws in
            if request.path == path, number == 1, going == goes {
                try care.update([.assign(patient, "preferredLanguage", "es")])
            }
        }
        let transport = FaultTransport(
            server.transport(token),
            before: { request, number in try edit(request, number, true) },
            after: { request, number, _ in try edit(request, number, false) },
            answer: Self.expiringFirstPull
        )
        let report = try await nurse.engine(transport).sync()
        #expect(report.bootstrapped && report.purged == 1, "\(report)")
        #expect(report.pushed == 1, "\(because): \(report)")
        #expect(report.refused == 0 && report.heldAside == 0 && report.pending == 0, "\(report)")
        #expect(try nurse.care.record(patient) == nil)

        _ = try await adminEngine.sync()
        let state = try #require(try admin.care.record(patient))
        #expect(state.fields["preferredLanguage"]?.value == "es")
    }

    @Test(arguments: Backend.all)
    func anEditMadeWhileThePullRemovingItsPatientIsOnItsWayReachesTheServerFirst(backend: Backend) async throws {
        // The admin moves the patient to another team; the nurse edits it as her next sync's pull goes out.
        let (server, directory, admin, adminEngine, token, nurse, patient) = try await firstPatientMovedOut(
            on: backend
        )
        defer { withExtendedLifetime(directory) {} }
        let care = nurse.care
        let transport = FaultTransport(
            server.transport(token),
            before: { request, number in
                if request.path == Wire.Path.changes, number == 1 {
                    try care.update([.assign(patient, "preferredLanguage", "es")])
                }
            }
        )
        let report = try await nurse.engine(transport).sync()
        #expect(report.pushed == 1, "the edit is pushed before the patient is removed: \(report)")
        #expect(report.refused == 0 && report.heldAside == 0 && report.pending == 0, "\(report)")
        #expect(report.purged == 1, "\(report)")
        #expect(try nurse.care.record(patient) == nil)
        #expect(try nurse.store.changes(owner: patient.id).isEmpty, "the pushed edit's rows go with the patient")

        _ = try await adminEngine.sync()
        let state = try #require(try admin.care.record(patient))
        #expect(state.fields["preferredLanguage"]?.value == "es")
    }

    /// A checkpoint the server no longer holds, met by the pull after an edit to a patient that left the device's
    /// scope (made during `--watch`'s long poll, say): the device pushes its outbox before it bootstraps again, as
    /// the snapshot's first page removes the patient and resets what the server counts the device as holding.
    /// Pushed after, the edit would be refused as out of scope and held aside.
    @Test(arguments: Backend.all)
    func anEditPendingWhenTheCheckpointExpiresReachesTheServerBeforeTheDeviceBootstrapsAgain(
        backend: Backend
    ) async throws {
        try await editReachesTheServerBeforeTheBootstrapRemovesItsPatient(
            on: backend,
            when: Wire.Path.changes,
            goes: true,
            because: "the edit is pushed before the bootstrap"
        )
    }

    /// An edit made while the snapshot's first page that removes its patient is on its way, after the push before
    /// the bootstrap: the device removes the patient and keeps the edit in its outbox, and pushes it before the pull
    /// from the snapshot's checkpoint, which the server takes as the removal applied. Pushed after that pull, the edit
    /// was refused as out of the scope and held aside for good.
    @Test(arguments: Backend.all)
    func anEditMadeWhileTheSnapshotRemovingItsPatientIsOnItsWayReachesTheServer(backend: Backend) async throws {
        try await editReachesTheServerBeforeTheBootstrapRemovesItsPatient(
            on: backend,
            when: Wire.Path.snapshot,
            goes: false,
            because: "the edit is pushed before the pull from the snapshot"
        )
    }

    /// A snapshot's first page whose answer is lost (the link drops as it comes back) after the server has reset
    /// what it counts the device as holding: the patient that left the device's scope is still removed, by the
    /// next sync. The first page records such a patient as told to leave, not yet applied, instead of forgetting
    /// it; forgotten, no later page or pull named it, and the device kept a patient outside its scope for good.
    @Test(arguments: Backend.all)
    func aPatientThatLeftTheScopeIsRemovedWhenTheSnapshotsFirstAnswerIsLost(backend: Backend) async throws {
        let (server, directory, _, _, token, nurse, patient) = try await firstPatientMovedOut(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let cut = FaultTransport(
            server.transport(token),
            after: { request, number, _ in
                if request.path == Wire.Path.snapshot, number == 1 {
                    throw InjectedFault(description: "the link dropped as the first snapshot page came back")
                }
            },
            answer: Self.expiringFirstPull
        )
        await #expect(throws: (any Error).self) { _ = try await nurse.engine(cut).sync() }
        #expect(try nurse.care.record(patient) != nil, "the lost page removed nothing")

        let report = try await nurse.engine(server.transport(token)).sync()
        #expect(report.purged == 1, "\(report)")
        #expect(try nurse.care.record(patient) == nil, "the device holds a patient outside its scope")
        #expect(try nurse.store.changes(owner: patient.id).isEmpty)
    }

    /// A patient the nurse registers, with `team` as its primary team.
    static func register(_ care: CareStore, team: String, familyName: String) throws -> RecordRef {
        try care.create(
            .patient,
            fields: [
                "givenName": ["Ana"], "familyName": [.string(familyName)], "birthDate": ["1980-01-02"],
                "sex": ["female"], "status": ["active"], "subgroup": [.string(TinyPractice.subgroup)],
                "primaryTeam": [.string(team)],
            ]
        )
    }

    /// A nurse registers a patient for another team and edits it before she syncs: her push creates it (allowed),
    /// the server counts it as sent to her device, and the same sync's pull removes it, her edits stored. Before,
    /// the device kept the patient as she registered it, received no later change to it, and had her later edits
    /// refused (protocol/README.md section 11, the old known gap). The team's device receives it; a bootstrap of
    /// the nurse's device does not bring it back.
    @Test(arguments: Backend.all)
    func aPatientTheDeviceRegistersForAnotherTeamLeavesItAtItsNextSyncWithItsEditsStored(
        backend: Backend
    ) async throws {
        let (server, directory, admin, otherTeam, token, nurse) = try await nurseOfTheFirstTeam(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let patient = try Self.register(nurse.care, team: otherTeam, familyName: "Ruiz")
        try nurse.care.update([.assign(patient, "preferredLanguage", "fr")])
        let staying = try Self.register(nurse.care, team: TinyPractice.team, familyName: "Soto")

        let report = try await nurse.engine(server.transport(token)).sync()
        #expect(report.pushed >= 2 && report.refused == 0 && report.heldAside == 0, "\(report)")
        #expect(report.purged == 1, "the patient registered for the other team left the device: \(report)")
        #expect(try nurse.care.record(patient) == nil)
        #expect(try nurse.care.record(staying) != nil, "a patient registered for the nurse's own team stays")
        let quiet = try await nurse.engine(server.transport(token)).sync()
        #expect(quiet.purged == 0 && quiet.pulled == 0 && quiet.pushed == 0, "\(quiet)")

        let otherToken = try await server.issueToken(role: "clinician", extra: ["--teams", otherTeam])
        let colleague = try LocalReplica("colleague", in: directory)
        _ = try await colleague.engine(server.transport(otherToken)).sync()
        let received = try #require(try colleague.care.record(patient))
        #expect(received.fields["preferredLanguage"]?.value == "fr", "the nurse's edit made before the sync")
        #expect(try colleague.care.record(staying) == nil)
        try colleague.care.update([.assign(patient, "phone", "555-0199")])
        _ = try await colleague.engine(server.transport(otherToken)).sync()
        let after = try await nurse.engine(server.transport(token)).sync()
        #expect(after.pulled == 0 && after.purged == 0, "the team's later edit is not sent to the nurse: \(after)")
        #expect(try nurse.care.record(patient) == nil)
        _ = try await admin.engine(server.transport(server.adminToken)).sync()
        #expect(try admin.care.record(patient)?.fields["phone"]?.value == "555-0199")

        // A new device of the nurse's scope bootstraps without it.
        let laptop = try LocalReplica("laptop", in: directory)
        _ = try await laptop.engine(server.transport(token)).sync()
        #expect(try laptop.care.record(patient) == nil)
        #expect(try laptop.care.record(staying) != nil)
    }

    /// A patient the nurse registers for another team (or for her own, then moved to another team by the admin),
    /// pushed alone (her sync's pull fails); she edits it, and her next sync pushes the edit in a push of its own,
    /// taken as an edit to a patient she holds, then removes the patient. Before, a patient a device created was
    /// counted as sent to it only once a pull sent it: the one registered for another team stayed on the device,
    /// stale, and her later edit to it was refused; the one moved out stayed too.
    @Test(arguments: Backend.all, [true, false])
    func aPatientTheDeviceCreatedThatLeavesTheScopeBeforeItsNextPullIsRemovedThen(
        backend: Backend,
        movedByTheAdmin: Bool
    ) async throws {
        let (server, directory, admin, otherTeam, token, nurse) = try await nurseOfTheFirstTeam(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let patient = try Self.register(
            nurse.care,
            team: movedByTheAdmin ? TinyPractice.team : otherTeam,
            familyName: "Ruiz"
        )
        let pullFails = FaultTransport(
            server.transport(token),
            answer: { request, _ in
                guard request.path == Wire.Path.changes else { return nil }
                return TransportResponse(status: 404, body: Data("<h1>Not Found</h1>".utf8), contentType: "text/html")
            }
        )
        await #expect(throws: ClientError.self) { _ = try await nurse.engine(pullFails).sync() }
        #expect(try nurse.store.pendingCount() == 0, "the push went through before the pull failed")

        let adminEngine = admin.engine(server.transport(server.adminToken))
        _ = try await adminEngine.sync()
        if movedByTheAdmin {
            try admin.care.update([.assign(patient, "primaryTeam", .string(otherTeam))])
            _ = try await adminEngine.sync()
        }
        try nurse.care.update([.assign(patient, "preferredLanguage", "fr")])

        let report = try await nurse.engine(server.transport(token)).sync()
        #expect(report.pushed == 1 && report.refused == 0 && report.heldAside == 0, "\(report)")
        #expect(report.purged == 1, "\(report)")
        #expect(try nurse.care.record(patient) == nil)
        _ = try await adminEngine.sync()
        #expect(try admin.care.record(patient)?.fields["preferredLanguage"]?.value == "fr")
    }

    /// A pull page that removes a patient is written before the page after it is asked for: the server takes a
    /// pull from a page's checkpoint as that page applied, and forgets the removal, so a page asked for ahead of a
    /// removal that then failed to be written would have left the patient on the device for good.
    @Test(arguments: Backend.all)
    func thePageAfterOneThatRemovesAPatientIsAskedForOnceThatOneIsWritten(backend: Backend) async throws {
        let (server, directory, admin, otherTeam, token, nurse) = try await nurseOfTheFirstTeam(on: backend)
        defer { withExtendedLifetime(directory) {} }
        let adminEngine = admin.engine(server.transport(server.adminToken))
        let patient = RecordRef(type: "patient", id: TinyPractice.patients[0])
        let staying = RecordRef(type: "patient", id: TinyPractice.patients[1])
        try #require(try nurse.care.record(patient) != nil)

        // The admin moves one patient out and edits another five times: pages of two, the first removing.
        try admin.care.update([.assign(patient, "primaryTeam", .string(otherTeam))])
        for index in 0..<5 { try admin.care.update([.assign(staying, "phone", .string("555-010\(index)"))]) }
        _ = try await adminEngine.sync()
        let care = nurse.care
        let heldWhenAsked = Mutex<[Bool]>([])
        let transport = FaultTransport(
            server.transport(token),
            before: { request, _ in
                guard request.path == Wire.Path.changes else { return }
                let held = ((try? care.record(patient)) ?? nil) != nil
                heldWhenAsked.withLock { $0.append(held) }
            }
        )
        let report = try await nurse.engine(transport, pageSize: 2).sync()
        #expect(report.purged == 1, "\(report)")
        let asked = heldWhenAsked.withLock { $0 }
        try #require(asked.count >= 3, "\(asked)")
        #expect(asked[0] && !asked[1], "the second page was asked for before the first was written: \(asked)")
        #expect(try nurse.care.record(patient) == nil)
    }
}
