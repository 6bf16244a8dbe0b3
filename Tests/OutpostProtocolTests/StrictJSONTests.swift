import Foundation
import OutpostCRDT
import OutpostProtocol
import Testing

/// The strict reader refuses what RFC 8259 and the protocol refuse, says where, and accepts every golden.
struct StrictJSONTests {
    func failure(_ text: String, integersOnly: Bool = true) -> StrictJSON.Failure? {
        failure(Data(text.utf8), integersOnly: integersOnly)
    }

    func failure(_ data: Data, integersOnly: Bool = true) -> StrictJSON.Failure? {
        do throws(StrictJSON.Failure) {
            try StrictJSON.validate(data, integersOnly: integersOnly)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        #"{}"#, #"[]"#, #"0"#, #"-12"#, #""a""#, #"true"#, #"null"#, #" {"a" : [1, {"b": null}] } "#,
        #"{"a\u0062":1,"ab2":2}"#, #"{"é":"\u00e9\ud83d\ude00 😀"}"#, #"{"a":{"a":{"a":1}}}"#,
        #"[{"k":1},{"k":2}]"#,
    ])
    func strictJSONIsAccepted(_ text: String) {
        #expect(failure(text) == nil)
    }

    @Test(arguments: [
        (#"{"a":1,"a":2}"#, 7, "repeated"),
        (#"{"ab":1,"a\u0062":2}"#, 8, "repeated"),
        (#"{"a":1,}"#, 6, "trailing comma"),
        (#"[1,2,]"#, 4, "trailing comma"),
        (#"{"a":3.0}"#, 5, "fraction"),
        (#"{"a":1e0}"#, 5, "exponent"),
        (#"{"a":01}"#, 5, "leading zero"),
        (#"{"a":1} x"#, 8, "follow"),
        (#"{"a":"\ud800"}"#, 6, "surrogate"),
        (#"{"a":"x"#, 7, "cut short"),
        (#"{'a':1}"#, 1, "key in quotes"),
        ("{\"a\":\"\u{01}\"}", 6, "control character"),
    ])
    func faultsAreRefusedWithTheirOffset(_ text: String, _ offset: Int, _ words: String) throws {
        let error = try #require(failure(text), "\(text) was accepted")
        #expect(error.offset == offset, "\(error)")
        #expect(error.message.contains(words), "\(error)")
    }

    @Test func fractionsAreJSONOutsideTheWireProfile() {
        #expect(failure(#"{"a":3.25e-2}"#, integersOnly: false) == nil)
        #expect(failure(#"{"a":3.}"#, integersOnly: false) != nil)
    }

    @Test func encodingsOtherThanUTF8AreRefused() throws {
        let text = #"{"replica":"a"}"#
        #expect(try #require(failure(Data([0xEF, 0xBB, 0xBF]) + Data(text.utf8))).message.contains("byte-order mark"))
        #expect(try #require(failure(text.data(using: .utf16LittleEndian)!)).message.contains("UTF-16"))
        #expect(try #require(failure(text.data(using: .utf16)!)).message.contains("UTF-16"))
        #expect(failure(Data(#"{"a":""#.utf8) + Data([0xC3, 0x28]) + Data(#""}"#.utf8)) != nil)
        #expect(failure(Data(#"{"a":""#.utf8) + Data([0xED, 0xA0, 0x80]) + Data(#""}"#.utf8)) != nil)
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(failure(deep)?.message.contains("nest") == true)
    }

    @Test func manyKeysInOneObjectAreCheckedForRepeats() throws {
        let keys = (0..<5_000).map { "\"k\($0)\":\($0)" }
        #expect(failure("{" + keys.joined(separator: ",") + "}") == nil)
        let error = try #require(failure("{" + (keys + ["\"k4321\":0"]).joined(separator: ",") + "}"))
        #expect(error.message.contains("k4321"))
    }

    @Test func everyGoldenIsStrictJSON() throws {
        for name in try ProtocolFiles.jsonFiles(in: ProtocolFiles.golden) {
            let data = try ProtocolFiles.read(name, in: ProtocolFiles.golden)
            #expect(failure(data) == nil, "\(name)")
        }
    }

    @Test func wireDecodesRequestsStrictlyAndNamesTheCounterOrder() throws {
        let data = try ProtocolFiles.read("push-request.json", in: ProtocolFiles.golden)
        let push = try Wire.decodeRequest(PushRequest.self, from: data)
        var reversed = push
        reversed.changes.reverse()
        let encoded = try Wire.makeEncoder().encode(reversed)
        #expect(throws: DecodingError.self) { try Wire.decodeRequest(PushRequest.self, from: encoded) }
        #expect(throws: StrictJSON.Failure.self) {
            try Wire.decodeRequest(PushRequest.self, from: Data("\u{FEFF}".utf8) + data)
        }
    }

    @Test func contentTypesAreJSONOnly() {
        #expect(Wire.isJSONContentType("application/json"))
        #expect(Wire.isJSONContentType("Application/JSON; charset=UTF-8"))
        #expect(!Wire.isJSONContentType("text/plain"))
        #expect(!Wire.isJSONContentType("application/json; charset=utf-16"))
        #expect(!Wire.isJSONContentType("application/jsonx"))
    }
}
