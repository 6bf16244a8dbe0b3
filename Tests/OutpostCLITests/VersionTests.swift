import Foundation
import OutpostTestSupport
import Testing

struct VersionTests {
    @Test func bothExecutablesPrintTheirVersion() async throws {
        let sandbox = try Sandbox()
        for url in [Executables.outpost, Executables.server] {
            let result = try await ChildProcess.run(url, ["--version"], in: sandbox.directory, environment: [:])
            #expect(result.status == 0)
            #expect(result.stdout.contains("0.1.0"), "\(url.lastPathComponent) printed \(result)")
        }
    }
}
