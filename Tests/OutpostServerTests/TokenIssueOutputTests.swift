import Foundation
import OutpostTestSupport
import Testing

/// Issue 8: `outpost-server token issue` says where the secret went, truthfully: captured by `$(…)` or a
/// pipe, it was not shown "above".
struct TokenIssueOutputTests {
    @Test func aSecretCapturedFromStandardOutputIsNotSaidToBeShownAbove() async throws {
        let server = try await TestServer()
        let result = try await server.admin(["token", "issue", "--role", "clinician", "--label", "home visits"])
        #expect(result.status == 0, "\(result)")
        #expect(result.lines.count == 1, "the secret alone on stdout: \(result)")
        #expect(!result.stderr.contains("above"), "stdout is a file here, not the screen: \(result)")
        #expect(result.stderr.contains("written to standard output"), "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
    }
}
