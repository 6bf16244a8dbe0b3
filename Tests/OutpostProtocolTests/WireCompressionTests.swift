import Foundation
import OutpostCRDT
import OutpostProtocol
import Testing

/// gzip as the sync messages use it: round trips, and every malformed or oversized stream refused with a bound.
struct WireCompressionTests {
    /// A page-like body: repetitive, as sync pages are.
    static let sample = Array((0..<4_000).map { "change \($0 % 97) of record pat_\($0 % 13);" }.joined().utf8)

    @Test func aBodyRoundTripsAndShrinks() throws {
        let compressed = WireCompression.compress(Self.sample)
        #expect(compressed.count * 4 < Self.sample.count)
        #expect(compressed.prefix(2) == [0x1f, 0x8b], "a gzip stream starts with its magic")
        #expect(try WireCompression.decompress(compressed, limit: Self.sample.count) == Self.sample)
    }

    @Test func anEmptyBodyRoundTrips() throws {
        #expect(try WireCompression.decompress(WireCompression.compress([UInt8]()), limit: 10).isEmpty)
    }

    @Test func aStreamThatInflatesPastTheLimitIsRefusedAsTooLarge() throws {
        // 64 MiB of zeros compress to about 64 kB: a bomb for a receiver that inflates without a bound.
        let bomb = WireCompression.compress([UInt8](repeating: 0, count: 64 << 20))
        #expect(bomb.count < 100_000)
        #expect(throws: WireCompression.Failure.tooLarge(limit: 1 << 20)) {
            try WireCompression.decompress(bomb, limit: 1 << 20).count
        }
    }

    @Test(arguments: [1 << 20, 8 << 20])
    func aStreamOneBytePastTheLimitIsRefusedAndOneAtTheLimitIsRead(limit: Int) throws {
        let over = WireCompression.compress([UInt8](repeating: 0x20, count: limit + 1))
        #expect(throws: WireCompression.Failure.tooLarge(limit: limit)) {
            try WireCompression.decompress(over, limit: limit).count
        }
        let at = WireCompression.compress([UInt8](repeating: 0x20, count: limit))
        #expect(try WireCompression.decompress(at, limit: limit).count == limit)
    }

    @Test func aCutOffStreamIsRefusedAtEveryLength() throws {
        let compressed = WireCompression.compress(Self.sample)
        for length in [0, 1, 10, 19, 20, compressed.count / 2, compressed.count - 8, compressed.count - 1] {
            #expect(throws: WireCompression.Failure.corrupt, "cut at \(length)") {
                try WireCompression.decompress(compressed.prefix(length), limit: 1 << 20).count
            }
        }
    }

    @Test func trailingBytesAndNonGzipBodiesAreRefused() throws {
        let compressed = WireCompression.compress(Self.sample)
        #expect(throws: WireCompression.Failure.corrupt) {
            try WireCompression.decompress(compressed + [0, 1, 2], limit: 1 << 20).count
        }
        #expect(throws: WireCompression.Failure.corrupt) {
            try WireCompression.decompress(Array("{\"changes\":[],\"replica\":\"x\"}".utf8), limit: 1 << 20).count
        }
        var flipped = compressed
        flipped[flipped.count / 2] ^= 0xff
        #expect(throws: WireCompression.Failure.self) {
            try WireCompression.decompress(flipped, limit: 1 << 20).count
        }
    }

    @Test func seededRandomMutationsNeverCrashAndNeverInflatePastTheLimit() throws {
        var generator = SeededGenerator(seed: 11)
        let compressed = WireCompression.compress(Self.sample)
        for _ in 0..<2_000 {
            var bytes = compressed
            for _ in 0..<Int(generator.next() % 4 + 1) {
                bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
            }
            if let inflated = try? WireCompression.decompress(bytes, limit: 200_000) {
                #expect(inflated.count <= 200_000)
            }
        }
    }

    @Test(arguments: [
        ("gzip", true), ("GZIP", true), ("x-gzip", true), ("deflate, gzip;q=0.5", true), ("*", true),
        ("gzip;q=0", false), ("br", false), ("identity", false), ("*;q=0", false), ("gzip;q=0, *", false),
        ("br, *;q=0.1", true),
    ])
    func acceptEncodingIsReadAsRFC9110Says(header: String, accepted: Bool) {
        #expect(WireCompression.accepts(header) == accepted, "\(header)")
    }
}
