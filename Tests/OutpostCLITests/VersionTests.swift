import Foundation
import OutpostTestSupport
import Testing

struct VersionTests {
    @Test func bothExecutablesPrintTheirVersion() throws {
        for url in [Executables.outpost, Executables.server] {
            let process = Process()
            process.executableURL = url
            process.arguments = ["--version"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(output.contains("0.1.0"), "\(url.lastPathComponent) printed \(output)")
        }
    }
}
