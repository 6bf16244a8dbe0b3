import Foundation
import OutpostProtocol
import Testing

/// Refusals and their error bodies, through the server's routes in this process (``InProcessServer``): bad
/// queries, tokens, protocol versions, paths, methods and bodies are each a `4xx` with the JSON error body,
/// and the feed is unchanged. The real-process suites (``PushRefusalTests``) keep the refusals that need a
/// pushed practice and the sockets.
struct RouteRefusalTests {
    /// The practice's feed as the admin token reads it, to show that a refusal stored nothing.
    func feed(_ server: InProcessServer.Client) async throws -> Data {
        let answer = try await server.request("GET", "/v1/changes?since=0", token: server.adminToken)
        try #require(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
        return answer.body
    }

    @Test func badQueriesTokensAndPathsAreRefusedWithJSONErrorBodies() async throws {
        try await InProcessServer.run { server in
            let admin = server.adminToken
            let before = try await feed(server)
            let parameters: [(String, String)] = [
                ("/v1/changes?since=abc", "since"), ("/v1/changes?since=-1", "since"),
                ("/v1/changes?limit=0", "limit"), ("/v1/changes?limit=abc", "limit"),
                ("/v1/changes?limit=1000000", "limit"), ("/v1/changes?wait=-1", "wait"),
                ("/v1/changes?wait=3600", "wait"), ("/v1/snapshot?limit=0", "limit"),
                ("/v1/snapshot?after=garbage", "after"),
            ]
            for (path, field) in parameters {
                let answer = try await server.request("GET", path, token: admin)
                let error = try expectRefusal(answer.pair, status: 400, code: "invalid_parameter")
                #expect(error["field"] as? String == field, "\(path): \(error)")
            }

            let ahead = try expectRefusal(
                try await server.request("GET", "/v1/changes?since=1000", token: admin).pair,
                status: 410,
                code: "checkpoint_expired"
            )
            #expect(ahead["field"] as? String == "since")

            for path in [Wire.Path.session, "/v1/changes?since=0"] {
                try expectRefusal(try await server.request("GET", path).pair, status: 401, code: "unauthorized")
                try expectRefusal(
                    try await server.request("GET", path, token: "nope").pair,
                    status: 401,
                    code: "unauthorized"
                )
                try expectRefusal(
                    try await server.request("GET", path, headers: ["Authorization": "Basic \(admin)"]).pair,
                    status: 401,
                    code: "unauthorized"
                )
            }
            try expectRefusal(
                try await server.request("POST", Wire.Path.push, token: "nope", body: Data("{}".utf8)).pair,
                status: 401,
                code: "unauthorized"
            )
            try expectRefusal(
                try await server.request("GET", Wire.Path.session, token: admin, headers: [Wire.protocolHeader: "99"])
                    .pair,
                status: 400,
                code: "unsupported_protocol"
            )

            let unknown = try await server.request("GET", "/v1/nothing-here", token: admin)
            let error = try expectRefusal(unknown.pair, status: 404, code: "not_found")
            let requestID = try #require(unknown.headers[Wire.requestIDHeader.lowercased()])
            #expect(error["requestID"] as? String == requestID)
            try expectRefusal(
                try await server.request("GET", Wire.Path.push, token: admin).pair,
                status: 405,
                code: "method_not_allowed"
            )
            #expect(try await feed(server) == before)
        }
    }

    @Test func pushBodiesThatAreNotAPushAreRefusedAs400NamingWhatIsWrong() async throws {
        try await InProcessServer.run { server in
            let before = try await feed(server)
            let cases: [(String, String, String?)] = [
                ("truncated JSON", #"{"replica":"site-a","changes":["#, nil),
                ("not JSON", "replica=site-a", nil),
                ("an empty body", "", nil),
                ("null", "null", nil),
                ("an array", "[]", nil),
                ("a number as the replica", #"{"replica":5,"changes":[]}"#, "replica"),
                ("an object as the changes", #"{"replica":"site-a","changes":{}}"#, "changes"),
                ("no changes key", #"{"replica":"site-a"}"#, "changes"),
                ("a replica id with spaces", #"{"replica":"site a!","changes":[]}"#, "replica"),
                ("an unknown top-level key", #"{"replica":"site-a","changes":[],"priority":"high"}"#, "priority"),
            ]
            for (name, body, key) in cases {
                let answer = try await server.request(
                    "POST",
                    Wire.Path.push,
                    token: server.adminToken,
                    body: Data(body.utf8)
                )
                let error = try expectRefusal(answer.pair, status: 400, code: "malformed_request")
                let message = error["message"] as? String ?? ""
                if let key { #expect(message.contains(key), "\(name): the message should name '\(key)': \(message)") }
            }
            #expect(try await feed(server) == before)
        }
    }
}
