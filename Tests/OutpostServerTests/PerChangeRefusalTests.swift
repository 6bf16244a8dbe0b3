import Foundation
import OutpostTestSupport
import Testing

/// Per-change refusals on the real server, driven through the real `outpost` CLI: a change the server refuses is
/// held aside on the device while the rest of its outbox flows, and is later retried or discarded.
@Suite(.serialized)
struct PerChangeRefusalTests {
    func fields(_ device: Device, _ id: String) async throws -> [String: Any] {
        let text = try await device.ok("patient", "show", id, "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        return object["fields"] as? [String: Any] ?? [:]
    }

    /// Both sync encodings, on every backend: a scoped nurse registers two patients for another team (allowed:
    /// its own push creates them), which leaves them outside its scope. Four later edits, the second and the
    /// fourth to those patients: the server stores the first and the third and refuses the others one by one;
    /// the device holds them aside and its outbox is empty. The cause is fixed for one (the patient moves into
    /// the nurse's team) and it is retried; the other is discarded with a reason, which stays on record.
    @Test(arguments: Backend.all, ["json", "binary"])
    func aRefusedChangeInTheMiddleOfTheOutboxIsHeldAsideTheRestFlowsAndItIsRetriedOrDiscarded(
        backend: Backend,
        encoding: String
    ) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-per-change")
        let scene = try await ScopedNurse(on: server, in: folder, encoding: encoding)
        let (admin, nurse, teams) = (scene.admin, scene.nurse, scene.teams)
        let mine = try await scene.nursePatients()
        try #require(mine.count >= 2)
        let registered = [
            try await scene.registerForTheOtherTeam("Ana"), try await scene.registerForTheOtherTeam("Bea"),
        ]
        let first = try await nurse.ok("sync")
        #expect(!first.contains("refused"), "\(first)")

        try await nurse.ok("patient", "set", mine[0], "preferredLanguage=es")
        try await nurse.ok("patient", "set", registered[0], "preferredLanguage=fr")
        try await nurse.ok("patient", "set", mine[1], "preferredLanguage=pt")
        try await nurse.ok("patient", "set", registered[1], "preferredLanguage=de")
        let report = try await nurse.ok("sync")
        #expect(report.contains("pushed 2,"), "\(report)")
        #expect(
            report.contains(
                "refused: 2 changes refused by the server (2 in this sync) and held aside; see them with "
                    + "'outpost outbox list'"
            ),
            "\(report)"
        )
        let status = try await nurse.status()
        #expect(status["pendingChanges"] as? Int == 0)
        #expect(status["refusedChanges"] as? Int == 2)
        await #expect(try nurse.ok("status").contains("refused changes: 2 changes refused by the server"))

        let held = try await nurse.rows("outbox", "list")
        #expect(held.map { $0["record"] as? String } == registered.map { "patient/\($0)" })
        #expect(held.allSatisfy { $0["code"] as? String == "out_of_scope" && $0["state"] as? String == "refused" })
        let ids = held.compactMap { $0["id"] as? String }
        try #require(ids.count == 2)
        let shown = try await nurse.ok("outbox", "show", ids[0])
        #expect(shown.contains("out_of_scope") && shown.contains("preferredLanguage"), "\(shown)")
        // Held aside, not re-sent: another sync pushes nothing and keeps them.
        let again = try await nurse.ok("sync")
        #expect(again.contains("pushed 0,") && again.contains("refused: 2 changes"), "\(again)")

        // Every other change went through.
        try await admin.ok("sync")
        await #expect(try fields(admin, mine[0])["preferredLanguage"] as? String == "es")
        await #expect(try fields(admin, mine[1])["preferredLanguage"] as? String == "pt")
        await #expect(try fields(admin, registered[0])["preferredLanguage"] == nil)
        await #expect(try fields(admin, registered[1])["preferredLanguage"] == nil)

        // The cause is fixed for the first (the patient joins the nurse's team): retried, it is stored.
        try await admin.ok("patient", "set", registered[0], "primaryTeam=\(teams[0])")
        try await admin.ok("sync")
        await #expect(try nurse.ok("outbox", "retry", ids[0]).contains("will be sent again"))
        // The second is given up, with a reason.
        try await nurse.ok("outbox", "discard", ids[1], "--reason", "registered for the wrong team; redone by them")
        let retried = try await nurse.ok("sync")
        #expect(retried.contains("pushed 1,") && !retried.contains("refused"), "\(retried)")
        await #expect(try nurse.status()["refusedChanges"] as? Int == 0)
        await #expect(try nurse.ok("outbox", "list") == "no refused changes held aside")
        let discarded = try await nurse.rows("outbox", "list", "--discarded")
        #expect(discarded.count == 1)
        #expect(discarded.first?["id"] as? String == ids[1])
        #expect(discarded.first?["state"] as? String == "discarded")
        #expect(discarded.first?["discardReason"] as? String == "registered for the wrong team; redone by them")
        await #expect(try nurse.run("outbox", "retry", ids[1]).status == 2, "a discard is final")

        try await admin.ok("sync")
        await #expect(try fields(admin, registered[0])["preferredLanguage"] as? String == "fr")
        await #expect(try fields(admin, registered[1])["preferredLanguage"] == nil)
    }

    /// A push without `Outpost-Refusals` (every client before per-change refusals) is all or nothing as before;
    /// with it, the same push stores what it can; another value of the header is refused.
    @Test(arguments: Backend.all)
    func withoutTheHeaderAPushIsStillAllOrNothing(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-per-change")
        let admin = Device("admin", in: folder)
        try await admin.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await admin.ok("import", Built.fixture("practice-small.json"))
        try await admin.ok("sync")
        let patient = try await #require(try admin.rows("patient", "list").compactMap { $0["id"] as? String }.first)
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        func change(_ counter: Int, _ field: String) -> String {
            """
            {"id":"raw-device/\(counter)","record":{"type":"patient","id":"\(patient)"},"field":"\(field)",\
            "op":"assign","value":"fr","replaces":[],"clock":{"ms":\(now),"c":\(counter)},"author":"replica:raw-device"}
            """
        }
        let changes: [String] = [
            change(1, "preferredLanguage"), change(2, "noSuchField"), change(3, "preferredLanguage"),
        ]
        let text: String = #"{"replica":"raw-device","changes":["# + changes.joined(separator: ",") + "]}"
        let body = Data(text.utf8)
        let token = server.adminToken
        let (status, answer) = try await server.request("POST", "/v1/push", token: token, body: body)
        #expect(status == 422, "\(String(decoding: answer, as: UTF8.self))")
        try await admin.ok("sync")
        await #expect(try fields(admin, patient)["preferredLanguage"] as? String != "fr", "nothing of it was stored")

        let (perStatus, perAnswer) = try await server.request(
            "POST",
            "/v1/push",
            token: token,
            body: body,
            headers: ["Outpost-Refusals": "per-change"]
        )
        let answerText = String(decoding: perAnswer, as: UTF8.self)
        try #require(perStatus == 200, "\(answerText)")
        let object = try #require(try JSONSerialization.jsonObject(with: perAnswer) as? [String: Any])
        #expect(object["accepted"] as? Int == 2)
        #expect(object["acknowledged"] as? Int == 3)
        let refused = try #require(object["refused"] as? [[String: Any]])
        #expect(refused.count == 1)
        #expect(refused.first?["id"] as? String == "raw-device/2")
        #expect(refused.first?["code"] as? String == "invalid_change")
        #expect(!answerText.contains("\"fr\""), "no values in the refusal")
        try await admin.ok("sync")
        await #expect(try fields(admin, patient)["preferredLanguage"] as? String == "fr", "the others were stored")

        let (badStatus, badAnswer) = try await server.request(
            "POST",
            "/v1/push",
            token: token,
            body: body,
            headers: ["Outpost-Refusals": "some"]
        )
        #expect(badStatus == 400)
        #expect(String(decoding: badAnswer, as: UTF8.self).contains("Outpost-Refusals"))
    }
}
