import Foundation
import OutpostClient
import OutpostTestSupport
import Testing

/// The setting of the tests of changes the server refuses one by one: an admin who imported the small practice and
/// synced it, a clinician's device of the whole practice, and a school's site device (replica `school-1`), each
/// synced. A device of today checks what its token may do before it writes: a site device does not let its user
/// settle a conflict. One whose store forgot its role (``forgetRole()``, as a client from before that check) lets
/// its user settle one, and the server refuses the change (`forbidden`) and the device holds it aside; once an
/// admin settles the conflict, the same change sent again is no longer a resolution and is stored, beside the
/// admin's value (concurrent edits are kept for review). Any token but an admin's editing the practice's structure
/// (a team's name) is refused too, for good.
struct ForgetfulSchool {
    let admin: Device
    let clinician: Device
    let school: Device
    /// The practice's patients, sorted by id.
    let patients: [String]
    /// The practice's teams, sorted by id.
    let teams: [String]

    init(on server: TestServer, in folder: TemporaryDirectory, encoding: String? = nil) async throws {
        let url = server.url.absoluteString
        admin = Device("admin", in: folder, encoding: encoding)
        try await admin.ok("init", "--server", url, "--token", server.adminToken)
        try await admin.ok("import", Built.fixture("practice-small.json"))
        try await admin.ok("sync")
        patients = try await admin.rows("patient", "list").compactMap { $0["id"] as? String }.sorted()
        teams = try await admin.rows("team", "list").compactMap { $0["id"] as? String }.sorted()
        clinician = Device("clinician", in: folder, encoding: encoding)
        try await clinician.ok("init", "--server", url, "--token", try await server.issueToken(role: "clinician"))
        try await clinician.ok("sync")
        school = Device("school", in: folder, encoding: encoding)
        let token = try await server.issueToken(role: "site-device")
        try await school.ok("init", "--server", url, "--token", token, "--replica", "school-1")
        try await school.ok("sync")
    }

    /// The admin and the clinician give `patient` different birth dates while apart; every device syncs, so the
    /// school holds the conflict.
    func conflict(on patient: String) async throws {
        try await admin.ok("patient", "set", patient, "birthDate=1970-01-02")
        try await clinician.ok("patient", "set", patient, "birthDate=1971-03-04")
        for device in [admin, clinician, admin, school] { try await device.ok("sync") }
        try #require(try await school.rows("conflicts", "list").count == 1)
    }

    /// The school's store forgets the role its server gave it, until its next sync reads it again: its user may
    /// now settle a conflict on it.
    func forgetRole() throws {
        let store = try CareStore.open(
            at: school.store,
            key: { () throws(ClientError) in try .keyFile(at: TestKeyFile.path) }
        )
        try store.store.setSetting(SyncEngine.roleSetting, to: nil)
    }

    /// The birth date `device` shows for `patient` (one of the values when in conflict), and how many it holds.
    func birthDates(_ device: Device, _ patient: String) async throws -> [String] {
        let open = try await device.rows("conflicts", "list")
        guard open.contains(where: { $0["id"] as? String == "\(patient).birthDate" }) else {
            let text = try await device.ok("patient", "show", patient, "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            return [try #require((object["fields"] as? [String: Any])?["birthDate"] as? String)]
        }
        let text = try await device.ok("conflicts", "show", "\(patient).birthDate", "--json")
        let shown = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let values = try #require(shown["values"] as? [[String: Any]])
        return values.compactMap { $0["value"] as? String }.sorted()
    }
}
