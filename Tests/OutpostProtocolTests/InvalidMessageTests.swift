import Foundation
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
        "push-request": { _ = try Wire.makeDecoder().decode(PushRequest.self, from: $0) },
        "push-response": { _ = try Wire.makeDecoder().decode(PushResponse.self, from: $0) },
        "pull-response": { _ = try Wire.makeDecoder().decode(PullResponse.self, from: $0) },
        "snapshot-page": { _ = try Wire.makeDecoder().decode(SnapshotPage.self, from: $0) },
        "error-body": { _ = try Wire.makeDecoder().decode(ErrorBody.self, from: $0) },
    ]

    /// Malformed messages the Swift decoders still accept: Foundation's `JSONDecoder` (behind
    /// `Wire.makeDecoder()`) takes a trailing comma. A known issue until the decoder refuses it (see
    /// protocol/README.md, "Known gaps"); the test then fails, to say the entry can go.
    static let acceptedByTheSwiftDecoders: Set<String> = ["push-request.not-json.json"]

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
            if Self.acceptedByTheSwiftDecoders.contains(example.file) {
                withKnownIssue("the Swift decoder accepts \(example.file): \(example.why)") {
                    #expect(throws: (any Error).self) { try decode(data) }
                }
            } else {
                #expect(throws: (any Error).self, "\(example.why)") { try decode(data) }
            }
        case "invalid_change":
            #expect(throws: Never.self, "a well-formed push must decode so the server can name the change") {
                try decode(data)
            }
        default:
            Issue.record("unknown refusal \(example.refusal) in index.json")
        }
    }
}
