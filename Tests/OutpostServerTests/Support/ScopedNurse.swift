import Foundation
import OutpostTestSupport
import Testing

extension Device {
    /// The `--json` output of `outpost` with `arguments`, decoded as a list of objects.
    func rows(_ arguments: String...) async throws -> [[String: Any]] {
        let text = try await ok(arguments: arguments + ["--json"])
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
    }
}

/// The setting of the scope-refusal tests: an admin who imported the small practice and synced it, and a nurse
/// whose token is scoped to the first of the practice's teams (sorted by id), joined as replica `nurse-1`.
struct ScopedNurse {
    let admin: Device
    let nurse: Device
    /// The practice's teams, sorted by id; the nurse's scope is the first.
    let teams: [String]
    /// A subgroup of the practice, for the patients the nurse registers.
    let subgroup: String

    init(on server: TestServer, in folder: TemporaryDirectory, encoding: String? = nil) async throws {
        admin = Device("admin", in: folder, encoding: encoding)
        try await admin.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await admin.ok("import", Built.fixture("practice-small.json"))
        try await admin.ok("sync")
        teams = try await admin.rows("team", "list").compactMap { $0["id"] as? String }.sorted()
        subgroup = try #require(try await admin.rows("subgroup", "list").compactMap { $0["id"] as? String }.first)
        try #require(teams.count >= 2)
        nurse = Device("nurse", in: folder, encoding: encoding)
        let token = try await server.issueToken(role: "clinician", extra: ["--teams", teams[0]])
        try await nurse.ok("init", "--server", server.url.absoluteString, "--token", token, "--replica", "nurse-1")
        try await nurse.ok("sync")
    }

    /// The nurse's own patients (those of its team), sorted by id.
    func nursePatients() async throws -> [String] {
        try await nurse.rows("patient", "list").compactMap { $0["id"] as? String }.sorted()
    }

    /// The nurse registers a patient for the second team, with `fields` besides the required ones; not synced.
    /// Allowed (the nurse's own push creates it), it leaves the patient outside the nurse's scope: the server counts
    /// it as sent to her device, and her next sync pushes her edits to it and then removes it.
    func registerForTheOtherTeam(_ givenName: String = "Ana", _ fields: String...) async throws -> String {
        try await nurse.ok(
            arguments: [
                "patient", "add", "givenName=\(givenName)", "familyName=Ruiz", "birthDate=1980-01-02", "sex=female",
                "primaryTeam=\(teams[1])", "subgroup=\(subgroup)", "status=active",
            ] + fields
        )
    }
}
