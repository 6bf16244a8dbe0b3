import Foundation
import OutpostTestSupport
import Testing

/// A token issued to a person (`outpost-server token issue --person`) signs only that person's edits: the server
/// refuses any other author from it. The session says the person, and the replica signs its edits with it from the
/// moment it learns it (`init`, `remote set`, a sync), instead of signing as the replica and having every edit
/// refused and held aside at its next sync.
@Suite(.serialized)
struct PersonTokenTests {
    @Test(arguments: Backend.all)
    func aReplicaWhoseTokenIsIssuedToAPersonSignsItsEditsWithIt(backend: Backend) async throws {
        let server = try await TestServer(backend: backend)
        let folder = try TemporaryDirectory("outpost-person-token")
        let admin = Device("admin", in: folder)
        try await admin.ok("init", "--server", server.url.absoluteString, "--token", server.adminToken)
        try await admin.ok("import", Built.fixture("practice-small.json"))
        try await admin.ok("sync")
        let people = try await admin.rows("person", "list").compactMap { $0["id"] as? String }.sorted()
        let patient = try #require(try await admin.rows("patient", "list").first?["id"] as? String)
        try #require(people.count >= 2)
        let token = try await server.issueToken(role: "clinician", extra: ["--person", people[0]])

        let nurse = Device("nurse", in: folder)
        let joined = try await nurse.ok("init", "--server", server.url.absoluteString, "--token", token)
        #expect(joined.contains("edits are signed by \(people[0]), the person this token is issued to"), "\(joined)")
        let other = try await nurse.run("use", "--person", people[1])
        #expect(other.status == 2 && other.stderr.contains("issued to \(people[0])"), "\(other)")
        try await nurse.ok("sync")
        try await nurse.ok("patient", "set", patient, "phone=(406) 555-0199")
        let synced = try await nurse.ok("sync")
        #expect(!synced.contains("refused"), "\(synced)")
        await #expect(try nurse.status()["refusedChanges"] as? Int == 0)
        try await admin.ok("sync")
        let shown = try await admin.ok("patient", "show", patient, "--json")
        #expect(shown.contains("(406) 555-0199"), "\(shown)")

        // A replica made offline and given the token later learns the person from `remote set`.
        let laptop = Device("laptop", in: folder)
        try await laptop.ok("init")
        let moved = try await laptop.ok("remote", "set", server.url.absoluteString, "--token", token)
        #expect(moved.contains("role clinician"), "\(moved)")
        #expect(try await laptop.ok("use").contains("author: \(people[0])"))
        // Given a token issued to no one, it signs as itself again; a person chosen with `use` stays chosen.
        try await laptop.ok("remote", "set", server.url.absoluteString, "--token", server.adminToken)
        #expect(try await laptop.ok("use").contains("author: replica:"))
        try await laptop.ok("sync")
        try await laptop.ok("use", "--person", people[1])
        try await laptop.ok("sync")
        #expect(try await laptop.ok("use").contains("author: \(people[1])"))
    }
}
