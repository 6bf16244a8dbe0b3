import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol
import OutpostSamples

/// The CPU a bootstrap spends on encodings, without SQLite or HTTP: the server reads each record's stored state
/// and writes snapshot pages; the device reads the pages.
struct WireBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Time the snapshot's encodings in memory: stored states read and written, pages written and read.",
        discussion: """
            The reference practice's merged states (its creation changes applied to a CRDT Document), then, each \
            timed over every record, best of --runs: the server's stored form written (BinaryWriter) and read \
            (BinaryReader.readRecordState), snapshot pages of --page records written (SnapshotPage.binaryEncoded, \
            before compression) and read (SnapshotPage(binary:)). The server's side of a bootstrap is a read of \
            the stored form and a page write per record; the device's, a page read and its records prepared for \
            its store (LocalStore.prepare).
            """
    )

    @Option(help: "Seed of the generated practice.") var seed: UInt64 = 1
    @Option(help: "Practice size: small, medium or reference.") var size: String = "reference"
    @Option(help: "Runs of each measurement; the best is reported.") var runs: Int = 5
    @Option(help: "Records per snapshot page.") var page: Int = 2_000

    func validate() throws {
        guard PracticeGenerator.Size(named: size) != nil else {
            throw ValidationError("--size must be small, medium or reference")
        }
        guard runs >= 1, page >= 1 else { throw ValidationError("--runs and --page must be at least 1") }
    }

    func run() throws {
        guard let practiceSize = PracticeGenerator.Size(named: size) else { throw ExitCode.validationFailure }
        let dump = PracticeGenerator(seed: seed, size: practiceSize).generate()
        let changes = try dump.changes(
            replica: ReplicaID(unchecked: "bench"),
            clock: Timestamp(millis: PracticeGenerator.asOf.millis),
            author: "per_bench"
        )
        var document = Document(schema: CareModel.schema)
        try document.apply(changes)
        let records = document.records.sorted { $0.key < $1.key }.map {
            SnapshotRecord(record: $0.key, state: $0.value)
        }
        print("practice: seed \(seed), size \(size), \(records.count) records, \(changes.count) changes")

        var stored: [[UInt8]] = []
        let write = try best {
            stored = records.map { record in
                var writer = BinaryWriter()
                writer.write(record.state)
                return writer.bytes
            }
        }
        var states = 0
        let read = try best {
            states = 0
            for bytes in stored {
                var reader = BinaryReader(bytes)
                states += try reader.readRecordState().sortedFields.count
            }
        }
        guard states > 0 else { throw ValidationError("the stored states read back empty") }
        let pages = stride(from: 0, to: records.count, by: page).map { start in
            SnapshotPage(
                records: Array(records[start..<min(start + page, records.count)]),
                checkpoint: "c1",
                next: start + page < records.count ? "task/next" : nil
            )
        }
        var serverSide: Duration?
        for layout in BinaryWire.layouts.reversed() {
            let timed = try time(pages, layout: layout, holding: records.count) { $0.records.count }
            if serverSide == nil {
                let storedBytes = stored.reduce(0) { $0 + $1.count }
                print("stored form: written \(Self.format(write)), read \(Self.format(read)) (\(storedBytes) bytes)")
                serverSide = read + timed.write
            }
            print(
                "snapshot pages of \(page), binary layout \(layout): written \(Self.format(timed.write)), read "
                    + "\(Self.format(timed.read)) (\(pages.count) pages, \(timed.bytes) bytes before compression, "
                    + "\(timed.gzipped) gzipped)"
            )
        }
        // Pull pages of 5,000 changes scattered over the practice, as a day's edits are.
        var generator = SeededGenerator(seed: seed)
        let scattered = (0..<10_000).map { _ in changes[Int(generator.next() % UInt64(changes.count))] }
        let pulls = stride(from: 0, to: scattered.count, by: 5_000).map {
            PullResponse(
                changes: Array(scattered[$0..<min($0 + 5_000, scattered.count)]),
                checkpoint: "c1",
                hasMore: true
            )
        }
        // The device holds every record these edits touch: in layout 3 each is named by abbreviation, and read back
        // by looking it up among the practice's records (in memory here; in a store, a range of an index).
        var held: [RecordAbbreviation: [String]] = [:]
        for record in records {
            if let abbreviation = RecordAbbreviation(record.record) {
                held[abbreviation, default: []].append(record.record.id)
            }
        }
        for layout in BinaryWire.layouts.reversed() {
            let timed = try time(
                pulls,
                layout: layout,
                holding: scattered.count,
                abbreviating: { _ in true },
                resolve: { abbreviations in
                    abbreviations.map { abbreviation in held[abbreviation].flatMap { $0.count == 1 ? $0[0] : nil } }
                },
                count: { $0.changes.count }
            )
            print(
                "pull pages of 5000 scattered changes, binary layout \(layout): written \(Self.format(timed.write)), "
                    + "read \(Self.format(timed.read)) (\(timed.bytes) bytes before compression, \(timed.gzipped) "
                    + "gzipped\(layout >= 3 ? "; every record named by abbreviation, as to a device holding them" : ""))"
            )
        }
        // The server writes its pages from the stored states, without decoding them: timed on the same pages,
        // and checked to be the same bytes.
        let storedPages = stride(from: 0, to: records.count, by: page).map { start in
            (start..<min(start + page, records.count)).map {
                StoredRecordState(record: records[$0].record, state: stored[$0])
            }
        }
        var fromStored: [[UInt8]] = []
        let transcode = try best {
            fromStored = try zip(pages, storedPages).map { message, states in
                try SnapshotPage.binaryEncoded(
                    stored: states,
                    checkpoint: message.checkpoint,
                    next: message.next,
                    layout: BinaryWire.latestLayout
                )
            }
        }
        guard fromStored == pages.map({ $0.binaryEncoded(layout: BinaryWire.latestLayout) }) else {
            throw ValidationError("pages written from the stored states differ from those of the decoded states")
        }
        if let serverSide {
            print(
                "server's side of a bootstrap (stored form read + pages written, layout "
                    + "\(BinaryWire.latestLayout)): \(Self.format(serverSide)); pages written from the stored "
                    + "form, not decoded (as the server does), the same bytes: \(Self.format(transcode))"
            )
        }
        // The device's side beyond reading the pages: each page's records prepared for a store that does not hold
        // them (state encoded in the store's row format, owner, projected rows, conflicts, writes' clocks counted),
        // off its writer.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outpost-bench-wire-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try CareStore.create(
            at: folder.appendingPathComponent("device.sqlite").path,
            replicaID: ReplicaID(unchecked: "device")
        ).store
        var prepared = 0
        let prepare = try best {
            prepared = pages.reduce(0) { $0 + store.prepare($1.records).preparedCount }
        }
        guard prepared == records.count else { throw ValidationError("the pages prepared lost records") }
        print(
            "device's preparing of the pages' records for its store (LocalStore.prepare: states in the store's row "
                + "format, owners, projected rows, conflicts, clocks counted): \(Self.format(prepare))"
        )
        print(
            "reproduce: .build-release/release/outpost-bench wire --seed \(seed) --size \(size) --runs \(runs) "
                + "--page \(page)"
        )
    }

    /// `messages` written in `layout` and read back, each the best of `runs`: the times, and the bytes before and
    /// after gzip. What they read back must hold `items` things (`count` of each message). In layout 3 the records
    /// `known` says the receiver holds are named by abbreviation, and read back with the ids `resolve` finds.
    private func time<Message: BinaryWireMessage>(
        _ messages: [Message],
        layout: UInt8,
        holding items: Int,
        abbreviating known: (RecordRef) -> Bool = { _ in false },
        resolve: ([RecordAbbreviation]) -> [String?] = { $0.map { _ in nil } },
        count: (Message) -> Int
    ) throws -> (write: Duration, read: Duration, bytes: Int, gzipped: Int) {
        var encoded: [[UInt8]] = []
        let write = try best { encoded = messages.map { $0.binaryEncoded(layout: layout, abbreviating: known) } }
        var decoded = 0
        let read = try best {
            decoded = 0
            for bytes in encoded {
                let abbreviations = try BinaryWire.abbreviations(in: bytes, kind: Message.binaryKind)
                let resolved = abbreviations.isEmpty ? [] : resolve(abbreviations)
                decoded += count(try Message(binary: bytes, resolved: resolved))
            }
        }
        guard decoded == items else { throw ValidationError("the messages read back lost some of what they held") }
        return (
            write, read, encoded.reduce(0) { $0 + $1.count },
            encoded.reduce(0) { $0 + WireCompression.compress($1).count }
        )
    }

    /// The best of `runs` timings of `body`.
    private func best(_ body: () throws -> Void) throws -> Duration {
        var best = Duration.seconds(1_000_000)
        for _ in 0..<runs {
            let start = ContinuousClock.now
            try body()
            best = min(best, ContinuousClock.now - start)
        }
        return best
    }

    static func format(_ duration: Duration) -> String {
        let millis = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return "\(Int(millis.rounded())) ms"
    }
}
