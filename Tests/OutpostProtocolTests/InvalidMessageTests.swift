import Foundation
import OutpostCRDT
import OutpostModel
import OutpostProtocol
import Testing

/// One entry of `protocol/golden/invalid/index.json`: a message a v1 server must refuse, and with which code.
struct InvalidExample: Sendable, Decodable, CustomStringConvertible {
    /// The file name; the part before the first dot names the message's schema.
    let file: String
    /// `malformed_request` when the message itself is malformed (it must not decode); `invalid_change` when it
    /// is a well-formed message carrying a change the care model refuses (it decodes, so the server can name
    /// the change's index).
    let refusal: String
    /// Why it is invalid, in words.
    let why: String
    /// `care model` when only the care model refuses it (no schema can say so).
    let refusedBy: String?

    var description: String { file }

    var schemaName: String { String(file.prefix { $0 != "." }) }

    static func all() throws -> [InvalidExample] {
        let data = try ProtocolFiles.read("index.json", in: ProtocolFiles.invalid)
        return try JSONDecoder().decode([InvalidExample].self, from: data)
    }
}

/// Every invalid example is refused the way `protocol/golden/invalid/index.json` says.
struct InvalidMessageTests {
    /// Decoders of the v1 messages, by schema name.
    static let decoders: [String: @Sendable (Data) throws -> Void] = [
        "session-info": { _ = try Wire.makeDecoder().decode(SessionInfo.self, from: $0) },
        // Requests are read as the server reads them: strictly.
        "push-request": { _ = try Wire.decodeRequest(PushRequest.self, from: $0) },
        "push-response": { _ = try Wire.makeDecoder().decode(PushResponse.self, from: $0) },
        "pull-response": { _ = try Wire.makeDecoder().decode(PullResponse.self, from: $0) },
        "snapshot-page": { _ = try Wire.makeDecoder().decode(SnapshotPage.self, from: $0) },
        "error-body": { _ = try Wire.makeDecoder().decode(ErrorBody.self, from: $0) },
    ]

    @Test func everyInvalidFileIsListedInTheIndexExactlyOnce() throws {
        let listed = try InvalidExample.all().map(\.file)
        #expect(Set(listed).count == listed.count)
        #expect(
            Set(listed) == Set(try ProtocolFiles.jsonFiles(in: ProtocolFiles.invalid).filter { $0 != "index.json" })
        )
    }

    @Test(arguments: try InvalidExample.all())
    func invalidExampleIsRefusedAtTheRightLayer(_ example: InvalidExample) throws {
        let decode = try #require(Self.decoders[example.schemaName], "no message type for \(example.schemaName)")
        let data = try ProtocolFiles.read(example.file, in: ProtocolFiles.invalid)
        switch example.refusal {
        case "malformed_request":
            #expect(throws: (any Error).self, "\(example.why)") { try decode(data) }
        case "invalid_change":
            #expect(throws: Never.self, "a well-formed push must decode so the server can name the change") {
                try decode(data)
            }
            if example.refusedBy == "care model" {
                let push = try Wire.decodeRequest(PushRequest.self, from: data)
                let refused = push.changes.contains { change in
                    guard let type = RecordType(rawValue: change.record.type) else { return true }
                    do throws(ModelError) {
                        try CareModel.validateEdit(
                            type,
                            field: change.field,
                            operation: change.operation,
                            value: change.value,
                            current: FieldState(),
                            today: CalendarDate(year: 2026, month: 11, day: 24)!
                        )
                        return false
                    } catch {
                        return true
                    }
                }
                #expect(refused, "the care model accepts \(example.file): \(example.why)")
            }
        default:
            Issue.record("unknown refusal \(example.refusal) in index.json")
        }
    }
}
