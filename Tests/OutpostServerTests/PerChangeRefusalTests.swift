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

    /// Both sync encodings, on every backend: a school's site device whose store forgot its role
    /// (``ForgetfulSchool``) makes four edits offline, the second settling a conflict (which a site device may not)
    /// and the fourth renaming a team (which only an admin may): the server stores the first and the third and
    /// refuses the others one by one; the device holds them aside and its outbox is empty. The cause goes for the
    /// first (an admin settles the conflict) and it is retried: no longer a resolution, it is stored beside the
    /// admin's value, a conflict again for review. The other is discarded with a reason, which stays on record.
    @Test(arguments: Backend.all, ["json", "binary"])
    func aRefusedChangeInTheMiddleOfTheOutboxIsHeldAsideTheRestFlowsAndItIsRetriedOrDiscarded(
        backend: Backend,
        encoding: String
    ) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-per-change")
        let scene = try await ForgetfulSchool(on: server, in: folder, encoding: encoding)
        let (admin, school, patients, team) = (scene.admin, scene.school, scene.patients, scene.teams[0])
        try #require(patients.count >= 3)
        try await scene.conflict(on: patients[0])
        let teamName = try await school.ok("team", "show", team, "--json")
        try scene.forgetRole()

        try await school.ok("patient", "set", patients[1], "preferredLanguage=es")
        try await school.ok("patient", "set", patients[0], "birthDate=1975-05-06")
        try await school.ok("patient", "set", patients[2], "preferredLanguage=pt")
        try await school.ok("team", "set", team, "name=Healthy kids")
        let report = try await school.ok("sync")
        #expect(report.contains("pushed 2,"), "\(report)")
        #expect(
            report.contains(
                "refused: 2 changes refused by the server (2 in this sync) and held aside; see them with "
                    + "'outpost outbox list'"
            ),
            "\(report)"
        )
        let status = try await school.status()
        #expect(status["pendingChanges"] as? Int == 0)
        #expect(status["refusedChanges"] as? Int == 2)
        await #expect(try school.ok("status").contains("refused changes: 2 changes refused by the server"))

        let held = try await school.rows("outbox", "list")
        #expect(held.map { $0["record"] as? String } == ["patient/\(patients[0])", "team/\(team)"])
        #expect(held.allSatisfy { $0["code"] as? String == "forbidden" && $0["state"] as? String == "refused" })
        let ids = held.compactMap { $0["id"] as? String }
        try #require(ids.count == 2)
        let shown = try await school.ok("outbox", "show", ids[0])
        #expect(shown.contains("forbidden") && shown.contains("birthDate"), "\(shown)")
        #expect(shown.contains("site-device token cannot resolve"), "\(shown)")
        // Held aside, not re-sent: another sync pushes nothing and keeps them.
        let again = try await school.ok("sync")
        #expect(again.contains("pushed 0,") && again.contains("refused: 2 changes"), "\(again)")

        // Every other change went through; the refused ones reached no one.
        try await admin.ok("sync")
        await #expect(try fields(admin, patients[1])["preferredLanguage"] as? String == "es")
        await #expect(try fields(admin, patients[2])["preferredLanguage"] as? String == "pt")
        await #expect(try scene.birthDates(admin, patients[0]) == ["1970-01-02", "1971-03-04"])
        await #expect(try admin.ok("team", "show", team, "--json") == teamName)

        // The cause goes for the first (the admin settles the conflict): retried, it is stored.
        try await admin.ok("conflicts", "resolve", "\(patients[0]).birthDate", "--value", "1970-01-02")
        try await admin.ok("sync")
        await #expect(try school.ok("outbox", "retry", ids[0]).contains("will be sent again"))
        // The second is given up, with a reason.
        try await school.ok("outbox", "discard", ids[1], "--reason", "only the office renames a team; asked them")
        let retried = try await school.ok("sync")
        #expect(retried.contains("pushed 1,") && !retried.contains("refused"), "\(retried)")
        await #expect(try school.status()["refusedChanges"] as? Int == 0)
        await #expect(try school.ok("outbox", "list") == "no refused changes held aside")
        let discarded = try await school.rows("outbox", "list", "--discarded")
        #expect(discarded.count == 1)
        #expect(discarded.first?["id"] as? String == ids[1])
        #expect(discarded.first?["state"] as? String == "discarded")
        #expect(discarded.first?["discardReason"] as? String == "only the office renames a team; asked them")
        await #expect(try school.run("outbox", "retry", ids[1]).status == 2, "a discard is final")

        // The school's value stands beside the admin's, for review; the team keeps its name.
        try await admin.ok("sync")
        await #expect(try scene.birthDates(admin, patients[0]) == ["1970-01-02", "1975-05-06"])
        await #expect(try admin.ok("team", "show", team, "--json") == teamName)
    }

    /// What a device's token may not write is refused to its user at once, before the server would refuse it and
    /// the device hold it aside: a clinician renaming a team, adding a site or importing a practice gets exit 2 and
    /// one line naming the rule, and nothing is written; her FHIR import leaves out the structure its bundle brings
    /// (noted as not kept) and imports the rest, which her sync stores whole. The admin's device does the same edit.
    @Test(arguments: Backend.all)
    func aDeviceRefusesItsUserWhatItsTokenMayNotWriteBeforeTheServerDoes(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-per-change")
        let scene = try await ScopedNurse(on: server, in: folder)
        let (admin, nurse, team) = (scene.admin, scene.nurse, scene.teams[0])
        let before = try await nurse.export()
        for arguments in [
            ["team", "set", team, "name=Healthy adults"],
            ["site", "add", "name=School clinic", "kind=school", "status=active"],
            ["import", Built.fixture("practice-small.json")],
        ] {
            let result = try await nurse.run(arguments: arguments)
            #expect(result.status == 2, "\(arguments): \(result)")
            #expect(result.errorLines.count == 1, "\(arguments): \(result)")
            #expect(
                result.stderr.contains("only an admin token may change")
                    && result.stderr.contains("clinician token"),
                "\(arguments): \(result)"
            )
        }
        // A record it would create is named by its type: its id was never anyone's.
        let site = try await nurse.run("site", "add", "name=School clinic", "kind=school", "status=active")
        #expect(site.stderr.hasPrefix("outpost: a site is part of the practice's structure"), "\(site)")
        await #expect(try nurse.status()["pendingChanges"] as? Int == 0)
        await #expect(try nurse.export() == before)

        // A FHIR bundle with an organization, a location, a practitioner, a care team and a group: the structure
        // the store does not hold is left out, the group (the practice's "chronic" subgroup) is not changed, and
        // the patient, her task and her clinical records are imported into the nurse's team.
        let bundle = Built.fixture("fhir/practice-bundle.json")
        let leftOut = "the practice's structure: only an admin token may add or change it"
        let strict = try await nurse.run("fhir", "import", bundle, "--team", team, "--strict")
        #expect(strict.status == 2 && strict.stderr.contains(leftOut), "\(strict)")
        let imported = try await nurse.run("fhir", "import", bundle, "--team", team)
        #expect(imported.status == 0, "\(imported)")
        for resource in ["Location", "Practitioner", "PractitionerRole", "CareTeam", "Group"] {
            #expect(imported.stderr.contains("not kept: \(resource) (\(leftOut))"), "\(imported)")
        }
        let patient = try #require(
            try await nurse.rows("patient", "list").first {
                ($0["fields"] as? [String: Any])?["familyName"] as? String == "Chalmers"
            }
        )
        let id = try #require(patient["id"] as? String)
        await #expect(try fields(nurse, id)["primaryTeam"] as? String == team)
        let chronic = try #require(
            try await admin.rows("subgroup", "list").first {
                ($0["fields"] as? [String: Any])?["key"] as? String == "chronic"
            }
        )
        await #expect(try fields(nurse, id)["subgroup"] as? String == chronic["id"] as? String)
        let synced = try await nurse.ok("sync")
        #expect(!synced.contains("refused"), "\(synced)")
        await #expect(try nurse.status()["refusedChanges"] as? Int == 0)
        try await admin.ok("sync")
        await #expect(try fields(admin, id)["familyName"] as? String == "Chalmers")
        let practice = try await admin.export()
        #expect(!practice.contains("Adam Careful") && !practice.contains("South Wing"))
        #expect(!practice.contains("Chronic conditions") && practice.contains("Chronic disease"), "the group's name")

        try await admin.ok("team", "set", team, "name=Healthy adults")
        try await admin.ok("sync")
        try await nurse.ok("sync")
        await #expect(try nurse.ok("team", "show", team).contains("Healthy adults"))

        // Given another token while no server answers, the replica forgets the role the old one had (the new one's
        // is read at its first session): it refuses nothing on the old role's account.
        let moved = try await nurse.run("remote", "set", "http://127.0.0.1:9", "--token", server.adminToken)
        #expect(moved.status == 0, "\(moved)")
        try await nurse.ok("team", "set", team, "name=Healthy elders")
        await #expect(try nurse.status()["pendingChanges"] as? Int == 1)
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
