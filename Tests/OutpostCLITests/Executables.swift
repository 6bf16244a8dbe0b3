import Foundation
import OutpostTestSupport

/// Locates the executables SwiftPM built beside the test bundle.
enum Executables {
    /// The build products folder (`.build/debug` or `.build/release`).
    static var productsDirectory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("outpost").path) { return url }
        }
        return URL(fileURLWithPath: ".build/debug")
    }

    /// The `outpost` CLI.
    static var outpost: URL { productsDirectory.appendingPathComponent("outpost") }
    /// The `outpost-server` executable.
    static var server: URL { productsDirectory.appendingPathComponent("outpost-server") }
}
