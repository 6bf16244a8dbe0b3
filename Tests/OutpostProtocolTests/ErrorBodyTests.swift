import Foundation
import OutpostProtocol
import Testing

struct ErrorBodyTests {
    @Test func anUnknownErrorCodeDecodesAsAValueNotAFailure() throws {
        let json = #"{"error":{"code":"something_new","message":"A newer server said no."}}"#
        let body = try Wire.makeDecoder().decode(ErrorBody.self, from: Data(json.utf8))
        #expect(body.error.code == ErrorCode(rawValue: "something_new"))
        #expect(body.error.code != .malformedRequest)
        #expect(body.error.index == nil)
    }

    @Test func scopesAreSortedAndDeduplicated() {
        let scope = Scope(sites: ["sit_B", "sit_A", "sit_B"], teams: [])
        #expect(scope.sites == ["sit_A", "sit_B"])
        #expect(!scope.isWholePractice)
        #expect(Scope.practice.isWholePractice)
    }
}
