import Foundation
import OutpostCRDT
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// Pushes sent twice, and bad requests of every kind over raw HTTP: each is a `4xx` with a JSON error body
/// and stores nothing (the practice's feed and snapshot are byte for byte what they were).
@Suite(.serialized)
struct PushRefusalTests {
    /// A server holding the tiny practice, pushed by the in-process replica `site-a` with the admin token.
    struct Seeded {
        let server: TestServer
        let directory: TemporaryDirectory
        let admin: String
        let a: LocalReplica
        /// The changes `site-a` pushed.
        let pushed: [Change]
    }

    func seeded() async throws -> Seeded {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-refusals")
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let pushed = try a.store.pendingChanges()
        let report = try await a.engine(server.transport(server.adminToken)).sync()
        try #require(report.pushed == pushed.count)
        return Seeded(server: server, directory: directory, admin: server.adminToken, a: a, pushed: pushed)
    }

    func push(
        _ server: TestServer,
        _ token: String,
        _ replica: String,
        _ changes: [Change]
    ) async throws -> (
        Int, Data
    ) {
        let request = PushRequest(replica: try #require(ReplicaID(replica)), changes: changes)
        return try await server.request("POST", Wire.Path.push, token: token, body: try wire(request))
    }

    @Test func theSamePushSentTwiceIsStoredOnceAndTheSecondAnswerCountsDuplicates() async throws {
        let server = try await TestServer()
        let directory = try TemporaryDirectory("outpost-refusals")
        let admin = server.adminToken
        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let changes = try a.store.pendingChanges()
        let body = try wire(PushRequest(replica: a.store.replicaID, changes: changes))

        let (firstStatus, first) = try await server.request("POST", Wire.Path.push, token: admin, body: body)
        try #require(firstStatus == 200, "\(String(decoding: first, as: UTF8.self))")
        let firstAnswer = try Wire.makeDecoder().decode(PushResponse.self, from: first)
        #expect(firstAnswer.accepted == changes.count)
        #expect(firstAnswer.duplicates == 0)
        #expect(firstAnswer.acknowledged == changes.last?.id.counter)
        let before = try await server.holdings(admin)

        let (secondStatus, second) = try await server.request("POST", Wire.Path.push, token: admin, body: body)
        try #require(secondStatus == 200, "\(String(decoding: second, as: UTF8.self))")
        let secondAnswer = try Wire.makeDecoder().decode(PushResponse.self, from: second)
        #expect(secondAnswer.accepted == 0)
        #expect(secondAnswer.duplicates == changes.count)
        #expect(secondAnswer.acknowledged == firstAnswer.acknowledged)
        #expect(try await server.holdings(admin) == before)
        #expect(try await server.feed(admin).count == changes.count)
    }

    @Test func aChangeIDReusedWithDifferentContentIsRefusedAndNothingOfThePushIsStored() async throws {
        let seeded = try await seeded()
        let (server, admin, a) = (seeded.server, seeded.admin, seeded.a)
        try a.care.update([
            .assign(RecordRef(type: "patient", id: TinyPractice.patients[0]), "preferredLanguage", "fr")
        ])
        let fresh = try a.store.pendingChanges()
        try #require(fresh.count == 1)
        var reused = seeded.pushed[3]
        reused.value = .string("Something else entirely")
        let before = try await server.holdings(admin)

        // Counters strictly increase within a push, so the reused (older) change goes first.
        let error = try expectRefusal(
            try await push(server, admin, "site-a", [reused] + fresh),
            status: 409,
            code: "change_id_reused"
        )
        #expect(error["index"] as? Int == 0)
        #expect(try await server.holdings(admin) == before, "the valid change after it was stored")

        let (status, body) = try await push(server, admin, "site-a", fresh)
        #expect(status == 200)
        #expect(try Wire.makeDecoder().decode(PushResponse.self, from: body).accepted == 1)
    }

    /// Malformed changes in an otherwise valid push (the body-level refusals are in-process, RouteRefusalTests).
    @Test func malformedBodiesWrongTypesAndUnknownKeysAreRefusedAs400AndStoreNothing() async throws {
        let seeded = try await seeded()
        let (server, admin) = (seeded.server, seeded.admin)
        let valid = try jsonObject(seeded.pushed[0])
        func body(_ changes: [[String: Any]], extra: [String: Any] = [:]) throws -> Data {
            var object: [String: Any] = ["replica": "site-a", "changes": changes]
            object.merge(extra) { _, new in new }
            return try jsonData(object)
        }
        func with(_ key: String, _ value: Any) -> [String: Any] {
            var change = valid
            change[key] = value
            return change
        }
        let cases: [(String, Data, String?)] = [
            ("an unknown key in a change", try body([with("urgent", true)]), "urgent"),
            ("a string as the clock", try body([with("clock", "soon")]), "clock"),
            ("an object as the value", try body([with("value", ["given": "x"])]), "value"),
            ("a change id without a counter", try body([with("id", "site-a")]), "id"),
            ("a change id with counter 0", try body([with("id", "site-a/0")]), "id"),
            ("an unknown operation", try body([with("op", "delete")]), "op"),
        ]
        let before = try await server.holdings(admin)
        for (name, data, key) in cases {
            let answer = try await server.request("POST", Wire.Path.push, token: admin, body: data)
            let error = try expectRefusal(answer, status: 400, code: "malformed_request")
            let message = error["message"] as? String ?? ""
            if let key { #expect(message.contains(key), "\(name): the message should name '\(key)': \(message)") }
        }
        #expect(try await server.holdings(admin) == before)
        let (health, _) = try await server.request("GET", "/health")
        #expect(health == 200)
    }

    @Test func oversizedBodiesAndPushesWithTooManyChangesAreRefusedAs413AndStoreNothing() async throws {
        let seeded = try await seeded()
        let (server, admin) = (seeded.server, seeded.admin)
        let before = try await server.holdings(admin)

        var large = Data(#"{"replica":"site-a","changes":[],"padding":""#.utf8)
        large.append(Data(repeating: UInt8(ascii: "x"), count: Limits.standard.maxBodyBytes + 1))
        large.append(Data(#""}"#.utf8))
        try expectRefusal(
            try await server.request("POST", Wire.Path.push, token: admin, body: large),
            status: 413,
            code: "too_large"
        )

        // Distinct, increasing counters: a push's counters strictly increase (else it is malformed).
        var many: [Change] = []
        for offset in 1...(Limits.standard.maxPushChanges + 1) {
            var fresh = seeded.pushed[0]
            fresh.id = try #require(ChangeID("site-a/\(seeded.pushed.count + offset)"))
            many.append(fresh)
        }
        let error = try expectRefusal(try await push(server, admin, "site-a", many), status: 413, code: "too_large")
        #expect((error["message"] as? String ?? "").contains("\(Limits.standard.maxPushChanges)"))
        #expect(try await server.holdings(admin) == before)
    }

    @Test func changesTheTokenOrTheModelDoNotAllowAreRefusedNamingTheChangeAndStoreNothing() async throws {
        let seeded = try await seeded()
        let (server, admin) = (seeded.server, seeded.admin)
        let clinician = try await server.issueToken(role: "clinician")
        let patient = TinyPractice.patients[0]
        let next = seeded.pushed.count + 1
        let fine = try change("site-a/\(next)", "patient", patient, "preferredLanguage", "es")
        let before = try await server.holdings(admin)

        // Another replica's change id inside this replica's push.
        var error = try expectRefusal(
            try await push(
                server,
                admin,
                "site-a",
                [fine, try change("site-b/1", "patient", patient, "riskTier", "low")]
            ),
            status: 403,
            code: "replica_mismatch"
        )
        #expect(error["index"] as? Int == 1)

        // A clinician editing the practice's structure.
        error = try expectRefusal(
            try await push(
                server,
                clinician,
                "clinic-laptop",
                [
                    try change("clinic-laptop/1", "site", TinyPractice.site, "name", "Renamed")
                ]
            ),
            status: 403,
            code: "forbidden"
        )
        #expect(error["index"] as? Int == 0)

        // A value the care model refuses, after a valid change.
        error = try expectRefusal(
            try await push(
                server,
                admin,
                "site-a",
                [
                    fine, try change("site-a/\(next + 1)", "patient", patient, "sex", "martian"),
                ]
            ),
            status: 422,
            code: "invalid_change"
        )
        #expect(error["index"] as? Int == 1)
        #expect((error["field"] as? String ?? "").contains("sex"), "\(error)")

        // A record type the model does not have.
        error = try expectRefusal(
            try await push(server, admin, "site-a", [try change("site-a/\(next)", "spaceship", "spa_1", "name", "x")]),
            status: 422,
            code: "invalid_change"
        )
        #expect(error["field"] as? String == "record.type")

        // A field the record type does not have.
        error = try expectRefusal(
            try await push(server, admin, "site-a", [try change("site-a/\(next)", "patient", patient, "shoeSize", 9)]),
            status: 422,
            code: "invalid_change"
        )
        #expect(error["index"] as? Int == 0)

        // A change stamped a day ahead of the server's clock.
        error = try expectRefusal(
            try await push(
                server,
                admin,
                "site-a",
                [
                    try change(
                        "site-a/\(next)",
                        "patient",
                        patient,
                        "preferredLanguage",
                        "es",
                        millis: nowMillis() + 86_400_000
                    )
                ]
            ),
            status: 409,
            code: "clock_skew"
        )
        #expect(error["index"] as? Int == 0)

        // A counter the server cannot store (beyond 2^63 - 1): refused, and the server keeps running.
        try expectRefusal(
            try await push(
                server,
                admin,
                "site-a",
                [
                    try change("site-a/9223372036854775808", "patient", patient, "preferredLanguage", "es")
                ]
            ),
            status: 422,
            code: "invalid_change"
        )
        let (health, _) = try await server.request("GET", "/health")
        #expect(health == 200)

        #expect(try await server.holdings(admin) == before)
        let (status, _) = try await push(server, admin, "site-a", [fine])
        #expect(status == 200, "the valid change alone is accepted")
    }

    @Test func aDevicePushingUnderAnotherDevicesReplicaIDIsRefusedWhileThatDevicesTokenIsUsable() async throws {
        let seeded = try await seeded()
        let (server, admin) = (seeded.server, seeded.admin)
        let other = try await server.issueToken(role: "admin")
        let next = seeded.pushed.count + 1
        let forged = try change("site-a/\(next)", "patient", TinyPractice.patients[0], "phone", "(406) 555-0999")
        let before = try await server.holdings(admin)

        let error = try expectRefusal(
            try await push(server, other, "site-a", [forged]),
            status: 403,
            code: "replica_mismatch"
        )
        #expect((error["message"] as? String ?? "").contains("another device"))
        try expectRefusal(try await push(server, other, "site-a", []), status: 403, code: "replica_mismatch")
        #expect(try await server.holdings(admin) == before)

        // The replica's own token still pushes under it.
        let (status, _) = try await push(server, admin, "site-a", [forged])
        #expect(status == 200)
    }

    @Test func idsArePerPracticeAndNoAnswerRevealsWhetherAnotherPracticeHoldsAnID() async throws {
        let seeded = try await seeded()
        let (server, admin) = (seeded.server, seeded.admin)
        let added = try await server.admin(["practice", "add", "Other Practice"])
        try #require(added.status == 0, "\(added)")
        let otherPractice = added.output
        let other = try await server.issueToken(role: "admin", practice: otherPractice)
        let before = try await server.holdings(admin)

        // Writing a field of an id the first practice holds, and of one nobody holds: the same answer, and the
        // other practice's write makes a record of its own.
        let held = try change(
            "intruder/1",
            "patient",
            TinyPractice.patients[0],
            "phone",
            "(406) 555-0999",
            author: "replica:intruder"
        )
        let unheld = try change(
            "intruder/2",
            "patient",
            "pat_01JWMCKG1BY8F26N8A4JNVV0VZ",
            "phone",
            "(406) 555-0998",
            author: "replica:intruder"
        )
        let first = try await push(server, other, "intruder", [held])
        let second = try await push(server, other, "intruder", [unheld])
        #expect(first.0 == 200 && second.0 == 200, "\(String(decoding: first.1, as: UTF8.self))")
        #expect(try await server.feed(other).count == 2)
        #expect(try await server.holdings(admin) == before, "the first practice's patient is untouched")

        // A new record that points at the first practice's team, and at a team nobody holds: both are references
        // to a record this practice does not hold, refused alike, and the messages differ only by the id.
        func reference(_ counter: Int, team: String) throws -> Change {
            try change(
                "intruder/\(counter)",
                "task",
                "tsk_01JWMCKG1BY8F26N8A4JNVV0VB",
                "team",
                .string(team),
                author: "replica:intruder"
            )
        }
        let otherBefore = try await server.holdings(other)
        let heldTeam = try await push(server, other, "intruder", [try reference(3, team: TinyPractice.team)])
        let unheldTeam = try await push(
            server,
            other,
            "intruder",
            [try reference(3, team: "tea_01JWMCKG1BY8F26N8A4JNVV0VC")]
        )
        let a = try expectRefusal(heldTeam, status: 422, code: "invalid_change")
        let b = try expectRefusal(unheldTeam, status: 422, code: "invalid_change")
        #expect(
            (a["message"] as? String)?.replacingOccurrences(of: TinyPractice.team, with: "ID")
                == (b["message"] as? String)?.replacingOccurrences(of: "tea_01JWMCKG1BY8F26N8A4JNVV0VC", with: "ID")
        )
        let text = String(decoding: heldTeam.1, as: UTF8.self)
        for secret in TinyPractice.sensitive + [TinyPractice.subgroup, "Fault Clinic"] {
            #expect(!text.contains(secret), "the refusal reveals \(secret): \(text)")
        }
        #expect(try await server.holdings(admin) == before)
        #expect(try await server.holdings(other) == otherBefore)
    }
}
