import OutpostModel
import Testing

/// `JSONValueWalk` finds a value's end however its bytes are cut into chunks (as `outpost import` reads a file).
struct JSONValueWalkTests {
    static let values = [
        #"{"a":[1,{"b":"}]"}],"c":"x\"y\\"}"#,
        #"["{",[],{},"\\\"",["]"]]"#,
        #""a string with \" and ] and }""#,
    ]

    @Test(arguments: values)
    func theEndIsFoundAtEveryCut(_ value: String) {
        let bytes = Array(value.utf8) + Array(#","next":1}"#.utf8)
        let end = value.utf8.count
        for cut in 0...bytes.count {
            var walk = JSONValueWalk()
            let first = Array(bytes[..<cut])
            let second = Array(bytes[cut...])
            let found =
                if let inFirst = first.withUnsafeBufferPointer({ walk.end(in: $0, from: 0) }) {
                    inFirst
                } else {
                    second.withUnsafeBufferPointer { walk.end(in: $0, from: 0) }.map { cut + $0 }
                }
            #expect(found == end, "cut at \(cut)")
        }
    }

    @Test func anUnendedValueAsksForMore() {
        var walk = JSONValueWalk()
        let bytes = Array(#"{"a":"}"#.utf8)
        #expect(bytes.withUnsafeBufferPointer { walk.end(in: $0, from: 0) } == nil)
        #expect(Array("\"}".utf8).withUnsafeBufferPointer { walk.end(in: $0, from: 0) } == 2)
    }
}
