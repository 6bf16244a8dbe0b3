import Foundation
import OutpostTestSupport
import Testing

/// `serve` that cannot start says why in one line and exits 1, before it creates anything: a first start that fails
/// leaves no practice, store or admin token behind (a second attempt would find a practice it never announced).
struct ServeStartFailureTests {
    @Test func aPortInUseIsNamedAndNothingIsCreated() async throws {
        let running = try await TestServer()
        let folder = try TemporaryDirectory("outpost-serve-busy")
        let data = folder.path("data")
        let port = String(running.port)
        let result = try await runProcess(Built.server, ["serve", "--data", data, "--port", port], in: folder.url)
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("port \(port) on 127.0.0.1 is in use"), "\(result.stderr)")
        #expect(result.output.isEmpty, "\(result)")
        #expect(!FileManager.default.fileExists(atPath: data), "a failed start created \(data)")
        await running.stop()
    }

    @Test func aDataPathThatCannotBeADirectoryIsNamed() async throws {
        let folder = try TemporaryDirectory("outpost-serve-data")
        let file = folder.path("a-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        for data in [file, file + "/data"] {
            let result = try await runProcess(Built.server, ["serve", "--data", data, "--port", "0"], in: folder.url)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("\(file) is a file, not a directory"), "\(result.stderr)")
            #expect(!result.stderr.contains("NSCocoaErrorDomain"), "\(result.stderr)")
        }
        let empty = try await runProcess(Built.server, ["token", "list", "--data", ""], in: folder.url)
        #expect(empty.status == 1 && empty.stderr.contains("the data directory is empty"), "\(empty)")
    }
}
