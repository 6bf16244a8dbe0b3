import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostSamples
import OutpostTestSupport
import Testing

/// A real `outpost import`, SIGKILLed at seeded points of its progress, leaves the store exactly as it was
/// before the command or exactly as it is after it, and sound.
///
/// The kill is triggered by the import's own progress lines (`--progress`), never by sleeping: each seed
/// picks a percentage, and the test kills the process when a progress line reaches it (101 lets it finish).
/// The 100% line is printed after the last edit is applied in memory and before the records are written
/// and the transaction commits, so a kill there lands in the commit itself.
struct KillTests {
    /// Big enough for a few dozen progress lines (about 17,000 field writes), small enough for a debug build.
    static let size = PracticeGenerator.Size(
        name: "kill",
        patients: 60,
        teamsPerSubgroup: [1, 1, 1, 1],
        tasksPerPatient: 20,
        sites: 3
    )

    /// The practice file, the store it is imported into (already holding a few edits) and that store's
    /// export after a complete import, made once.
    struct Base: Sendable {
        var practice: String
        var store: String
        var before: String
        var beforeCounter: Int
        var after: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let base = Once<Result<Base, Failure>> { await makeBase() }

    private static func makeBase() async -> Result<Base, Failure> {
        do {
            let directory = TestScratch.root.appendingPathComponent("kill-base")
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let practice = directory.appendingPathComponent("practice.json").path
            try Data(PracticeGenerator(seed: 11, size: size).generate().jsonText().utf8)
                .write(to: URL(fileURLWithPath: practice))

            let sandbox = try Sandbox()
            sandbox.store = directory.appendingPathComponent("store.sqlite").path
            try await sandbox.outpost("init", "--replica", "kill")
            let site = try await sandbox.outpost("site", "add", "name=Home visits", "kind=home-visit")
            try await sandbox.outpost("site", "set", site, "phone=555-0100")
            try await sandbox.outpost("person", "add", "name=Nurse", "role=rn", "sites=\(site)")
            let before = try await sandbox.export()
            let counter = try await sandbox.pendingChanges()

            // The same import, run to completion on a copy, is the "after" state.
            let reference = sandbox.path("reference.sqlite")
            try FileManager.default.copyItem(atPath: sandbox.store, toPath: reference)
            let full = try await sandbox.run(["import", practice, "--store", reference])
            guard full.status == 0 else { return .failure(Failure(description: "reference import failed: \(full)")) }
            sandbox.store = reference
            let after = try await sandbox.export()
            return .success(
                Base(
                    practice: practice,
                    store: directory.appendingPathComponent("store.sqlite").path,
                    before: before,
                    beforeCounter: counter,
                    after: after
                )
            )
        } catch {
            return .failure(Failure(description: "could not prepare the kill test: \(error)"))
        }
    }

    /// Replaces the wall-clock part of the clocks of log entries written after `counter` with `T`: those
    /// are the import's own changes, stamped with the time the import ran. Returns the text and the
    /// distinct times replaced (one transaction stamps one time).
    static func normalized(_ export: String, after counter: Int) throws -> (text: String, times: Set<String>) {
        let pattern = try NSRegularExpression(pattern: #""clock":"([0-9]+)\.([0-9]+)","id":"kill/([0-9]+)""#)
        let source = export as NSString
        var text = ""
        var times: Set<String> = []
        var position = 0
        for match in pattern.matches(in: export, range: NSRange(location: 0, length: source.length)) {
            let counterText = source.substring(with: match.range(at: 3))
            guard let changeCounter = Int(counterText), changeCounter > counter else { continue }
            let millis = match.range(at: 1)
            text += source.substring(with: NSRange(location: position, length: millis.location - position)) + "T"
            times.insert(source.substring(with: millis))
            position = millis.location + millis.length
        }
        text += source.substring(from: position)
        return (text, times)
    }

    /// Seeds 1–6 kill inside the transaction (at 95, 16, 21, 10, 44 and 32%); 51 kills at the 100% line,
    /// while the records are written and the transaction commits; 111 lets the import finish.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 51, 111] as [UInt64])
    func anImportKilledAtASeededPointLeavesTheStoreBeforeOrAfter(seed: UInt64) async throws {
        let base = try await Self.base.get().get()
        let sandbox = try Sandbox()
        try FileManager.default.copyItem(atPath: base.store, toPath: sandbox.store)
        var generator = SeededGenerator(seed: seed)
        let target = Int(generator.next() % 102)

        let process = Process()
        process.executableURL = Executables.outpost
        process.arguments = ["import", base.practice, "--progress"]
        process.environment = sandbox.environment()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardError = pipe
        let exit = try process.start()
        // A safety net only (a hung child would hang the test run); no outcome depends on it.
        let watchdog = DispatchWorkItem { [pid = process.processIdentifier] in kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 300, execute: watchdog)
        defer { watchdog.cancel() }

        var buffer = Data()
        var percents: [Int] = []
        var killed = false
        reading: while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                guard line.hasPrefix("importing: "), let percent = Int(line.dropFirst(11).prefix { $0 != "%" })
                else { continue }
                percents.append(percent)
                if percent >= target {
                    kill(process.processIdentifier, SIGKILL)
                    killed = true
                    break reading
                }
            }
        }
        await exit.wait()
        #expect(!percents.isEmpty, "no progress lines (seed \(seed))")
        if killed {
            #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
        } else {
            #expect(target > 100 && process.terminationStatus == 0, "seed \(seed): exit \(process.terminationStatus)")
        }

        let store = try CareStore.open(at: sandbox.store, key: Sandbox.key)
        #expect(try store.store.verifyIntegrity() == [], "seed \(seed)")
        #expect(try store.store.checkProjection() == [], "seed \(seed): the projection disagrees with the states")
        let export = try await sandbox.export()
        if export == base.before {
            #expect(killed, "seed \(seed): a finished import left nothing")
            return
        }
        let found = try Self.normalized(export, after: base.beforeCounter)
        let expected = try Self.normalized(base.after, after: base.beforeCounter)
        #expect(found.times.count == 1, "seed \(seed): import changes carry \(found.times.count) times")
        #expect(
            found.text == expected.text,
            "seed \(seed), killed at \(percents.last ?? -1)%: the store is neither before nor after the import"
        )
        // The store is usable after the kill.
        await #expect(try sandbox.outpost("status").contains("replica:         kill"))
    }

    @Test func theNormalizationOnlyHidesTheImportTime() throws {
        let export =
            #"{"clock":"100.0","id":"kill/3"},{"clock":"2000.5","id":"kill/9"},{"clock":"2000.6","id":"kill/10"}"#
        let normalized = try Self.normalized(export, after: 5)
        #expect(
            normalized.text
                == #"{"clock":"100.0","id":"kill/3"},{"clock":"T.5","id":"kill/9"},{"clock":"T.6","id":"kill/10"}"#
        )
        #expect(normalized.times == ["2000"])
    }
}
