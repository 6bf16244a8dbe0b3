import ArgumentParser
import OutpostProtocol

@main
struct OutpostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost",
        abstract: "Work with Outpost records offline and sync them with an Outpost server.",
        version: "outpost \(OutpostVersion.software) (protocol v\(OutpostVersion.wireProtocol))"
    )

    mutating func run() throws {
        print(Self.helpMessage())
    }
}
