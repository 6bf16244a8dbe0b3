import Foundation
import OutpostTestSupport
import Testing

@testable import OutpostServer

/// Guessing tokens against the real server: after the limit, a guessing address gets `429` with `Retry-After`
/// for everything, while a device at another address, and a valid token whose prefix was guessed around, still
/// work. The window is an hour, so a loaded machine that takes minutes over the guesses cannot age the first
/// failures out before the last (the minute's window is the rule's, not the test's).
struct AuthThrottleTests {
    /// A `GET /v1/session` with `token`, over a connection from `source`.
    func session(_ server: TestServer, token: String, from source: String) async throws -> RawResponse {
        let connection = try RawConnection(port: server.port, from: source)
        let request =
            "GET /v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            + "Connection: close\r\n\r\n"
        return try #require(await connection.exchange(Array(request.utf8)))
    }

    @Test func manyBadTokensFromOneAddressAre429AndAGoodTokenFromAnotherStillWorks() async throws {
        let server = try await TestServer(arguments: ["--max-auth-failures", "5", "--auth-failure-window", "3600"])
        let good = server.adminToken
        let attacker = "127.0.0.2"
        var statuses: [Int] = []
        for attempt in 0..<8 {
            // Each guess differs in its prefix too, so only the address limit applies.
            let guess = "opt_\(String(format: "%08d", attempt))" + String(repeating: "A", count: 35)
            statuses.append(try await session(server, token: guess, from: attacker).status)
        }
        #expect(statuses.prefix(5).allSatisfy { $0 == 401 }, "\(statuses)")
        #expect(statuses.dropFirst(5).allSatisfy { $0 == 429 }, "\(statuses)")
        let throttled = try await session(server, token: good, from: attacker)
        #expect(throttled.status == 429, "a throttled address is refused even a good token: \(throttled)")
        #expect(throttled.error["code"] as? String == "rate_limited")
        let wait = try #require(Int(throttled.headers["retry-after"] ?? ""))
        #expect((1...3600).contains(wait), "Retry-After is within the window")
        #expect(!(throttled.error["message"] as? String ?? "").contains(good), "the message never echoes a token")

        let elsewhere = try await session(server, token: good, from: "127.0.0.3")
        #expect(elsewhere.status == 200, "another address is not throttled: \(elsewhere)")
    }

    @Test func wrongTokensAroundAPrefixAre429ButTheValidTokenWithThatPrefixIsNeverRefused() async throws {
        let server = try await TestServer(arguments: ["--max-auth-failures", "3", "--auth-failure-window", "3600"])
        let good = server.adminToken
        let prefix = String(good.prefix(12))
        var statuses: [Int] = []
        for attempt in 0..<5 {
            // From five addresses, so that only the prefix limit applies.
            let guess = prefix + String(repeating: Character(UnicodeScalar(UInt8(65 + attempt))), count: 31)
            statuses.append(try await session(server, token: guess, from: "127.0.1.\(attempt + 1)").status)
        }
        #expect(statuses == [401, 401, 429, 429, 429], "\(statuses)")
        let valid = try await session(server, token: good, from: "127.0.2.1")
        #expect(valid.status == 200, "\(valid)")
    }

    @Test func aFailureCountsForOneWindowThenLeavesIt() {
        let throttle = AuthThrottle(policy: .init(maxFailures: 3, windowMillis: 60_000, maxKeys: 10))
        for at: UInt64 in [1_000, 2_000, 3_000] {
            #expect(throttle.retryAfter(.address("a"), now: at) == nil)
            throttle.recordFailure(address: "a", prefix: "opt_x", now: at)
        }
        #expect(throttle.retryAfter(.address("a"), now: 4_000) == 57_000, "until the first failure is a minute old")
        #expect(throttle.retryAfter(.prefix("opt_x"), now: 4_000) == 57_000)
        #expect(throttle.retryAfter(.address("b"), now: 4_000) == nil)
        #expect(throttle.retryAfter(.address("a"), now: 61_000) == nil, "one failure left the window")
        for index in 0..<20 { throttle.recordFailure(address: "other-\(index)", prefix: nil, now: 70_000) }
        #expect(throttle.retryAfter(.address("a"), now: 70_001) == nil, "the stalest keys are dropped first")
    }
}
