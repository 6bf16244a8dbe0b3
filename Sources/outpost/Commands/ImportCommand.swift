import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel

/// `outpost import FILE`
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Load a practice (the generator's JSON format, docs/practice-format.md) in one transaction.",
        discussion: "Every record is validated first; if any is invalid, nothing is written."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: ArgumentHelp("The practice file.", valueName: "file")) var file: String
    @Flag(
        help: ArgumentHelp(
            "Print progress lines on stderr even when it is not a terminal.",
            discussion: "One line per percent: 'importing: 42% (21000/50000 fields)'. On a terminal, large "
                + "imports always show progress on one updating line."
        )
    )
    var progress = false

    mutating func run() throws {
        let store = try storeOptions.open()
        // The file is read as it goes, one record at a time (never whole): first its header, then its records
        // twice (ids, then the import itself, per creation rank when out of it), so memory does not grow with the
        // practice.
        let practiceFile = PracticeFile(path: file)
        let header: PracticeFile.Header
        do {
            header = try practiceFile.header()
        } catch let error as ModelError {
            throw CLIError.input("\(file): \(error.description)")
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.input("cannot read \(file); check the path and its permissions")
        }
        let progressBar = ImportProgress(lines: progress)
        // An import refused part way leaves no bar open before its error.
        defer { progressBar.finish() }
        let file = file
        let refusal = { (error: any Error) -> ClientError in
            switch error {
            case let error as ClientError: error
            case let error as ModelError:
                ClientError(code: .invalidEdit, message: "\(file): \(error.description)", cause: error)
            default: ClientError(code: .invalidEdit, message: "cannot read \(file); check the path and its permissions")
            }
        }
        let records = PracticeRecords(
            { body throws(ClientError) in
                do {
                    try practiceFile.records { record in try body(record) }
                } catch {
                    throw refusal(error)
                }
            },
            summaries: { body throws(ClientError) in
                do {
                    try practiceFile.summaries { summary in try body(summary) }
                } catch {
                    throw refusal(error)
                }
            }
        )
        let count: Int
        do {
            count = try store.importPractice(
                format: header.format,
                version: header.version,
                practice: header.practice,
                records: records
            ) { done, total in
                progressBar.report(done: done, of: total)
            }
        } catch {
            // A record the store refuses: the line names the file, as the file's own errors do.
            throw Self.namingFile(file, error)
        }
        print("imported \(count) records from \(file)")
    }
}

extension Import {
    /// `error`, an import's refusal, naming `file` when it does not already (a record the store refused).
    static func namingFile(_ file: String, _ error: ClientError) -> any Error {
        guard error.code == .invalidEdit, !error.message.hasPrefix("\(file): "),
            !error.message.hasPrefix("cannot read ")
        else { return error }
        return CLIError.input("\(file): \(error.message)")
    }
}

/// A practice file (`docs/practice-format.md`) read as a stream: its header, then its records one at a time,
/// each decoded from its own bytes. Memory holds one read buffer and one record, whatever the file's size.
///
/// Errors are the ones ``PracticeDump/decode(_:)`` gives for the same file: a ``ModelError`` `invalidDump`
/// naming where the JSON does not have the dump's shape (`dump.records[12].fields`), or that it is not JSON.
struct PracticeFile {
    /// The dump's header: every top-level member but `records`.
    struct Header: Decodable {
        var format: String
        var version: Int
        var practice: PracticeDump.Header
    }

    let path: String

    /// Reads the header; the records are scanned (their JSON checked for balance) but not decoded.
    func header() throws -> Header {
        var members: [UInt8] = Array("{".utf8)
        try scan(
            member: { key, value in
                if members.count > 1 { members.append(UInt8(ascii: ",")) }
                members.append(contentsOf: key)
                members.append(UInt8(ascii: ":"))
                members.append(contentsOf: value)
            },
            record: { _ in }
        )
        members.append(UInt8(ascii: "}"))
        // A file of another Outpost format is named as such, before its shape is found wanting.
        struct Format: Decodable { var format: String? }
        if let format = try? JSONDecoder().decode(Format.self, from: Data(members)).format,
            format != PracticeDump.formatName
        {
            throw CLIError.input(
                format == "outpost-export"
                    ? "\(path) is an 'outpost export' (format outpost-export), which shows a replica's state to compare; "
                        + "import reads practice files (format \(PracticeDump.formatName), docs/practice-format.md). "
                        + "To carry records to another store, sync it from the server, or use 'outpost fhir export' "
                        + "and 'outpost fhir import'"
                    : "\(path) is of format '\(format)', not a practice file (format \(PracticeDump.formatName), "
                        + "docs/practice-format.md)"
            )
        }
        do {
            return try JSONDecoder().decode(Header.self, from: Data(members))
        } catch {
            throw Self.refusal(error, at: "")
        }
    }

    /// Calls `body` with each record, in the file's order.
    func records(_ body: (DumpRecord) throws -> Void) throws {
        let decoder = JSONDecoder()
        var index = 0
        try scan(
            member: { _, _ in },
            record: { bytes in
                let record = try Self.decode(bytes, index: index, with: decoder)
                index += 1
                try body(record)
            }
        )
    }

    /// Decodes record number `index` of the file, refusing it by its path: read straight from its JSON when it
    /// is plain (`DumpRecord(plainJSON:)`), else with `decoder`, which names what is wrong.
    static func decode(_ bytes: [UInt8], index: Int, with decoder: JSONDecoder) throws -> DumpRecord {
        if let record = DumpRecord(plainJSON: bytes) { return record }
        do {
            return try decoder.decode(DumpRecord.self, from: Data(bytes))
        } catch {
            throw refusal(error, at: ".records[\(index)]")
        }
    }

    /// Calls `body` with each record's reference and the number of edits that create it, read from the
    /// record's JSON without decoding all of it (a record this quick reading does not follow is decoded).
    func summaries(_ body: (PracticeRecords.Summary) throws -> Void) throws {
        let decoder = JSONDecoder()
        var index = 0
        try scan(
            member: { _, _ in },
            record: { bytes in
                if let summary = Self.summary(of: bytes) {
                    index += 1
                    return try body(summary)
                }
                let record = try Self.decode(bytes, index: index, with: decoder)
                index += 1
                var edits = 0
                for field in record.fields.values {
                    switch field {
                    case .value(let value): edits += value.isNull ? 0 : 1
                    case .list(let values): edits += values.count
                    }
                }
                try body((RecordRef(type: record.type, id: record.id), edits))
            }
        )
    }

    /// A record's summary read straight from its JSON: its `type` and `id` (strings of valid UTF-8 without
    /// escapes or control characters) and the values of its `fields` (an array counts its elements, `null` none,
    /// any other value one); nil when the record is not that simple (then it is decoded).
    static func summary(of bytes: [UInt8]) -> PracticeRecords.Summary? {
        var scanner = PlainJSONScanner(bytes: bytes)
        guard scanner.take(UInt8(ascii: "{")) else { return nil }
        var type: String?
        var id: String?
        var edits: Int?
        if !scanner.take(UInt8(ascii: "}")) {
            repeat {
                guard let key = scanner.strictString(), scanner.take(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "type": type = scanner.strictString()
                case "id": id = scanner.strictString()
                case "fields": edits = scanner.countFieldValues()
                default: guard scanner.skipValue() else { return nil }
                }
            } while scanner.take(UInt8(ascii: ","))
            guard scanner.take(UInt8(ascii: "}")) else { return nil }
        }
        guard let type, let id, let edits, scanner.atEnd else { return nil }
        return (RecordRef(type: type, id: id), edits)
    }

    /// The error ``PracticeDump/decode(_:)`` gives for a decoding error at `location` (below `dump`).
    static func refusal(_ error: any Error, at location: String) -> ModelError {
        guard let error = error as? DecodingError else { return notJSON }
        let path: [any CodingKey]
        switch error {
        case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context),
            .valueNotFound(_, let context):
            if case .dataCorrupted = error, context.codingPath.isEmpty, context.underlyingError != nil {
                return notJSON
            }
            path = context.codingPath
        @unknown default:
            path = []
        }
        let inner = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return shape(at: "dump" + location + inner)
    }

    /// The JSON is valid but not a dump's at `field`.
    static func shape(at field: String) -> ModelError {
        ModelError(
            code: .invalidDump,
            field: field,
            rule: "must be an outpost-practice JSON document (docs/practice-format.md)",
            message: "the JSON does not have the dump's shape at \(field); see docs/practice-format.md"
        )
    }

    static let notJSON = ModelError(
        code: .invalidDump,
        field: "dump",
        rule: "must be an outpost-practice JSON document (docs/practice-format.md)",
        message: "the file is not valid JSON; check that it is a complete practice dump"
    )

    /// Walks the top-level object: every member but `records` goes to `member` (its key's and value's JSON),
    /// each element of `records` to `record` (its JSON, its brackets balanced; decoding checks the rest).
    private func scan(
        member: (_ key: [UInt8], _ value: [UInt8]) throws -> Void,
        record: (_ bytes: [UInt8]) throws -> Void
    ) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CLIError.input("\(path) is a folder; give the practice's JSON file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CLIError.input("cannot read \(path); check the path and its permissions")
        }
        defer { try? handle.close() }
        var reader = ByteReader(handle: handle)
        var value: [UInt8] = []
        try reader.expect(UInt8(ascii: "{"))
        var sawRecords = false
        if try reader.peekSkippingSpace() == UInt8(ascii: "}") {
            _ = try reader.next()
        } else {
            while true {
                var key: [UInt8] = []
                guard try reader.peekSkippingSpace() == UInt8(ascii: "\"") else { throw Self.notJSON }
                try reader.value(into: &key)
                try reader.expect(UInt8(ascii: ":"))
                if key == Array("\"records\"".utf8) {
                    guard !sawRecords else { throw Self.shape(at: "dump.records") }
                    sawRecords = true
                    try reader.expect(UInt8(ascii: "["))
                    if try reader.peekSkippingSpace() == UInt8(ascii: "]") {
                        _ = try reader.next()
                    } else {
                        while true {
                            value.removeAll(keepingCapacity: true)
                            try reader.value(into: &value)
                            try record(value)
                            let separator = try reader.nextSkippingSpace()
                            if separator == UInt8(ascii: "]") { break }
                            guard separator == UInt8(ascii: ",") else { throw Self.notJSON }
                        }
                    }
                } else {
                    value.removeAll(keepingCapacity: true)
                    try reader.value(into: &value)
                    try member(key, value)
                }
                let separator = try reader.nextSkippingSpace()
                if separator == UInt8(ascii: "}") { break }
                guard separator == UInt8(ascii: ",") else { throw Self.notJSON }
            }
        }
        guard try reader.peekSkippingSpace() == nil else { throw Self.notJSON }
        if !sawRecords { throw Self.shape(at: "dump") }
    }
}

/// Reads a file in chunks of 1 MiB and walks JSON values without decoding them.
private struct ByteReader {
    let handle: FileHandle
    var buffer: [UInt8] = []
    var position = 0
    var atEnd = false

    init(handle: FileHandle) {
        self.handle = handle
    }

    mutating func peek() throws -> UInt8? {
        if position == buffer.count {
            guard !atEnd else { return nil }
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty {
                atEnd = true
                return nil
            }
            buffer = Array(chunk)
            position = 0
        }
        return buffer[position]
    }

    mutating func next() throws -> UInt8? {
        guard let byte = try peek() else { return nil }
        position += 1
        return byte
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    mutating func peekSkippingSpace() throws -> UInt8? {
        while let byte = try peek(), Self.isSpace(byte) { position += 1 }
        return try peek()
    }

    mutating func nextSkippingSpace() throws -> UInt8? {
        _ = try peekSkippingSpace()
        return try next()
    }

    mutating func expect(_ byte: UInt8) throws {
        guard try nextSkippingSpace() == byte else { throw PracticeFile.notJSON }
    }

    /// Appends the next JSON value's bytes to `out`: an object or array up to its matching bracket, a string
    /// up to its closing quote, or a literal up to the next separator. Its content is checked when decoded.
    mutating func value(into out: inout [UInt8]) throws {
        guard let first = try peekSkippingSpace() else { throw PracticeFile.notJSON }
        switch first {
        case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "\""):
            // Walked over each chunk read and copied in runs, not byte by byte through `next()` (which was 6% of
            // an import's time).
            var walk = JSONValueWalk()
            while try peek() != nil {
                let start = position
                let end = buffer.withUnsafeBufferPointer { walk.end(in: $0, from: start) }
                position = end ?? buffer.count
                out.append(contentsOf: buffer[start..<position])
                if end != nil { return }
            }
            throw PracticeFile.notJSON
        default:
            while let byte = try peek(), !Self.isSpace(byte), byte != UInt8(ascii: ","), byte != UInt8(ascii: "}"),
                byte != UInt8(ascii: "]")
            {
                out.append(byte)
                position += 1
            }
            if out.isEmpty { throw PracticeFile.notJSON }
        }
    }
}
