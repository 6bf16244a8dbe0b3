import OutpostCRDT
import Testing

/// `concurrentMap` keeps the order of a plain `map`, on one thread or several, and rethrows the first slice's error.
struct ConcurrentMapTests {
    struct Odd: Error, Equatable { var value: Int }

    @Test(arguments: [0, 1, 255, 256, 257, 1_001])
    func mapsInOrderWhateverTheCount(count: Int) throws {
        let numbers = Array(0..<count)
        #expect(try numbers.concurrentMap { $0 * 3 + 1 } == numbers.map { $0 * 3 + 1 })
        #expect(try numbers.concurrentMap(parts: 3, minimum: 1) { String($0) } == numbers.map { String($0) })
        #expect(try numbers.concurrentMap(parts: 4, minimum: 1) { $0 } == numbers)
    }

    @Test func rethrowsTheErrorOfTheFirstFailingSlice() {
        let numbers = Array(0..<1_000)
        // Both halves fail; the first half's error is the one rethrown.
        #expect(throws: Odd(value: 101)) {
            try numbers.concurrentMap { number in
                if number == 101 || number == 901 { throw Odd(value: number) }
                return number
            }
        }
        #expect(throws: Odd(value: 901)) {
            try numbers.concurrentMap { number in
                if number == 901 { throw Odd(value: number) }
                return number
            }
        }
    }
}
