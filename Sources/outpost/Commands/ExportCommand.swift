import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// `outpost export`
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract:
            "Write a canonical dump of every record: sorted and stable, identical on replicas with the same state."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "Output format (json).") var format = "json"
    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file"))
    var output: String?

    mutating func validate() throws {
        guard format == "json" else { throw ValidationError("--format takes json") }
    }

    mutating func run() throws {
        let store = try storeOptions.open()
        // Written as it is read, so that the whole practice is never in memory; a file is written beside
        // its destination and moved into place once complete.
        let temporary = output.map { $0 + ".partial-\(ProcessInfo.processInfo.processIdentifier)" }
        if let temporary {
            guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
                throw CLIError.runtime("could not write \(output ?? ""); check the folder exists and is writable")
            }
        }
        guard let handle = temporary.map({ FileHandle(forWritingAtPath: $0) }) ?? FileHandle.standardOutput else {
            throw CLIError.runtime("could not write \(output ?? ""); check the folder exists and is writable")
        }
        var buffer = Data()
        do {
            try store.exportCanonicalJSON { piece in
                buffer.append(contentsOf: piece)
                if buffer.count >= 1 << 16 {
                    try handle.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try handle.write(contentsOf: buffer)
            if let temporary, let output {
                try handle.close()
                guard rename(temporary, output) == 0 else { throw CLIError.runtime("rename") }
            }
        } catch let error as ClientError {
            if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
            throw error
        } catch {
            if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
            throw CLIError.runtime("could not write \(output ?? "the export"); check the disk and the folder")
        }
    }
}
