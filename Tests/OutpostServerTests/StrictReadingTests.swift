import Foundation
import OutpostClient
import OutpostModel
import OutpostProtocol
import Testing

/// The real server reads pushes strictly (issue 10, items 5 and 12): every push in protocol/golden/invalid/
/// is refused with the code its index names and stores nothing, and a push without JSON's content type is
/// refused.
struct StrictReadingTests {
    /// One entry of protocol/golden/invalid/index.json.
    struct InvalidExample: Decodable, CustomStringConvertible {
        let file: String
        let refusal: String
        let why: String

        var description: String { file }
    }

    static let invalidDirectory = Built.packageRoot.appendingPathComponent("protocol/golden/invalid")

    static func pushExamples() throws -> [InvalidExample] {
        let data = try Data(contentsOf: invalidDirectory.appendingPathComponent("index.json"))
        return try JSONDecoder().decode([InvalidExample].self, from: data).filter { $0.file.hasPrefix("push-request.") }
    }

    /// The records the invalid goldens name (patient, site, author), in a tiny practice.
    static let goldenPractice = TinyPractice.json
        .replacingOccurrences(of: TinyPractice.patients[0], with: "pat_01KKBFJZCTT8BHAW9GPEZGQKFM")
        .replacingOccurrences(of: TinyPractice.site, with: "sit_01KJSESY2XM23H3YFCY7MTSQTS")
        .replacingOccurrences(of: TinyPractice.person, with: "per_01KJYKKBT1YWAT28G7VFNAJGNS")

    /// A server holding the golden practice, pushed by an admin device other than the goldens' replica; its
    /// clock allows the goldens' timestamps (late 2026).
    static func seededServer() async throws -> (TestServer, TemporaryDirectory) {
        let server = try await TestServer(arguments: ["--max-clock-skew", String(100 * 365 * 86_400)])
        let directory = try TemporaryDirectory("outpost-strict")
        let seed = try LocalReplica("seed-admin", in: directory)
        try seed.care.importPractice(try PracticeDump.decode(Array(goldenPractice.utf8)))
        _ = try await seed.engine(server.transport(server.adminToken)).sync()
        return (server, directory)
    }

    @Test func everyInvalidPushGoldenIsRefusedByTheServerWithItsCodeAndNothingIsStored() async throws {
        let (server, directory) = try await Self.seededServer()
        _ = directory
        let admin = server.adminToken
        let before = try await server.holdings(admin)
        let examples = try Self.pushExamples()
        try #require(examples.count > 30)
        for example in examples {
            let body = try Data(contentsOf: Self.invalidDirectory.appendingPathComponent(example.file))
            let (status, answer) = try await server.request("POST", Wire.Path.push, token: admin, body: body)
            let code = HTTPAnswer(status: status, headers: [:], body: answer).error["code"] as? String
            let expected = example.refusal == "malformed_request" ? 400 : 422
            #expect(status == expected, "\(example.file) (\(example.why)): \(String(decoding: answer, as: UTF8.self))")
            #expect(code == example.refusal, "\(example.file)")
        }
        #expect(try await server.holdings(admin) == before, "a refused push stored something")
    }

    /// A valid push of one change to the golden patient, as bytes.
    static func validPush() -> Data {
        let text = """
            {"changes":[{"author":"per_01KJYKKBT1YWAT28G7VFNAJGNS","clock":{"c":0,"ms":1795437000000},\
            "field":"preferredLanguage","id":"laptop-rn-04/41","op":"assign",\
            "record":{"id":"pat_01KKBFJZCTT8BHAW9GPEZGQKFM","type":"patient"},"replaces":[],\
            "site":"sit_01KJSESY2XM23H3YFCY7MTSQTS","value":"fr"}],"replica":"laptop-rn-04"}
            """
        return Data(text.utf8)
    }

    @Test func aPushWithoutJSONsContentTypeIsRefusedAndNothingIsStored() async throws {
        let (server, directory) = try await Self.seededServer()
        _ = directory
        let admin = server.adminToken
        let before = try await server.holdings(admin)

        let body = Self.validPush()
        let connection = try RawConnection(port: server.port)
        let raw =
            "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer \(admin)\r\n"
            + "Content-Length: \(body.count)\r\n\r\n"
        let missing = try #require(await connection.exchange(Array(raw.utf8) + Array(body)))
        #expect(missing.status == 415, "\(missing)")
        #expect(missing.error["code"] as? String == "unsupported_media_type")
        #expect(missing.error["field"] as? String == "Content-Type")

        for type in ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16"] {
            let answer = try await server.send(
                "POST",
                Wire.Path.push,
                headers: ["Authorization": "Bearer \(admin)", "Content-Type": type],
                body: body
            )
            #expect(answer.status == 415, "\(type)")
            #expect(answer.error["code"] as? String == "unsupported_media_type", "\(type)")
        }
        #expect(try await server.holdings(admin) == before)

        let accepted = try await server.send(
            "POST",
            Wire.Path.push,
            headers: ["Authorization": "Bearer \(admin)", "Content-Type": "application/json; charset=utf-8"],
            body: body
        )
        #expect(accepted.status == 200, "\(String(decoding: accepted.body, as: UTF8.self))")
    }

    @Test func aStrictJSONRefusalSaysWhereAndNamesNoValue() async throws {
        let server = try await TestServer()
        let body = Data(#"{"replica":"laptop-rn-04","replica":"x","changes":[]}"#.utf8)
        let (status, answer) = try await server.request("POST", Wire.Path.push, token: server.adminToken, body: body)
        let error = HTTPAnswer(status: status, headers: [:], body: answer).error
        #expect(status == 400)
        #expect(error["code"] as? String == "malformed_request")
        let message = try #require(error["message"] as? String)
        #expect(message.contains("at byte 26"), "\(message)")
        #expect(message.contains("'replica' is repeated"), "\(message)")
    }
}
