import ArgumentParser
import OutpostProtocol
import OutpostServer

@main
struct OutpostServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost-server",
        abstract: "The Outpost sync server: the umbrella store a network of practices shares.",
        discussion: "Sync endpoints arrive with the sync issue; today this prints its version and help.",
        version: ServerInfo.versionLine
    )

    mutating func run() throws {
        print(Self.helpMessage())
    }
}
