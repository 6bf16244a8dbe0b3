import Foundation
import OutpostClient
import OutpostProtocol
import OutpostTestSupport
import Testing

/// Health, readiness, metrics and logs: they say what the server did and never what a patient is called.
@Suite(.serialized)
struct ServerObservabilityTests {
    @Test func healthReadinessAndMetricsAnswerAndCarryNoPatientData() async throws {
        let server = try await TestServer(arguments: ["--log-level", "info"])
        let directory = try TemporaryDirectory("outpost-observability")
        let admin = server.adminToken
        #expect(try await server.request("GET", Wire.Path.health).0 == 200)
        #expect(try await server.request("GET", Wire.Path.ready).0 == 200)

        let a = try LocalReplica("site-a", in: directory)
        try TinyPractice.load(into: a.care)
        let report = try await a.engine(server.transport(admin)).sync()
        #expect(report.pushed > 0)
        let b = try LocalReplica("site-b", in: directory)
        _ = try await b.engine(server.transport(admin)).sync()
        // A refusal carries the request id the log shows.
        let bad = try await server.raw("GET", "/v1/changes?since=abc", headers: ["Authorization": "Bearer \(admin)"])
        #expect(bad.status == 400)
        let requestID = try #require(bad.headers[Wire.requestIDHeader.lowercased()])

        let (status, body) = try await server.request("GET", Wire.Path.metrics)
        #expect(status == 200)
        let metrics = String(decoding: body, as: UTF8.self)
        let accepted = metrics.split(separator: "\n").first { $0.hasPrefix("outpost_changes_accepted_total") }
        #expect(accepted.flatMap { Double($0.split(separator: " ").last ?? "") } == Double(report.pushed), "\(metrics)")
        #expect(metrics.contains("outpost_changes_served_total"), "\(metrics)")
        #expect(metrics.contains("hb_requests"), "no request counter: \(metrics)")
        // A refusal is timed like an answer (it was counted, and not timed, before).
        let refusalTimed = metrics.split(separator: "\n").contains {
            $0.hasPrefix("http_server_request_duration") && $0.contains("count") && $0.contains("\"400\"")
                && !$0.hasSuffix(" 0")
        }
        #expect(refusalTimed, "\(metrics)")
        for secret in TinyPractice.sensitive + TinyPractice.patients {
            #expect(!metrics.contains(secret), "/metrics carries \(secret)")
        }

        let logs = server.logs
        #expect(logs.contains("hb.request.id=\(requestID)"), "the request id \(requestID) is not in the logs: \(logs)")
        #expect(logs.contains("push"), "\(logs)")
        for secret in TinyPractice.sensitive {
            #expect(!logs.contains(secret), "the server's log carries \(secret)")
        }
    }
}
