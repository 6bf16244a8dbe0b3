import Crypto
import Dispatch
import Foundation
import OutpostCRDT
import Synchronization
import Testing

@testable import OutpostClient

/// An encrypted store's sealed blobs: `0x00 0x45`, a 12-byte nonce, AES-256-GCM's ciphertext and 16-byte tag, the
/// purpose and record as associated data. On Linux the store seals and opens through OpenSSL (`OpenSSLGCM`), on
/// Apple platforms through Crypto (CryptoKit); either must open what the other sealed, so that a store moves
/// between them and every store written before keeps opening.
struct StoreCipherTests {
    private static var key: SymmetricKey {
        SymmetricKey(data: (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 5) })
    }
    private static let task = RecordRef(type: "task", id: "tsk_01JWMCKG2QYPGM5CV17B38YQ0Z")

    /// Rows of the sizes that matter to a block cipher's modes: empty, under, at and over a block, and long.
    private static func rows() -> [[UInt8]] {
        var random = SeededGenerator(seed: 7)
        return [0, 1, 15, 16, 17, 31, 300, 4_099].map { count in
            (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
    }

    @Test(arguments: [StoreCipher.Purpose.state, .change, .projection])
    func eitherImplementationOpensWhatTheOtherSealed(_ purpose: StoreCipher.Purpose) throws {
        let cipher = StoreCipher(key: Self.key)
        for plain in Self.rows() {
            let sealed = try cipher.seal(plain, purpose, of: Self.task)
            #expect(Array(sealed.prefix(2)) == StoreCipher.marker)
            #expect(sealed.count == plain.count + StoreCipher.overhead)
            #expect(try cipher.openWithCrypto(sealed, purpose, of: Self.task) == plain)
            #expect(try cipher.open(sealed, purpose, of: Self.task) == plain)
            let sealedByCrypto = try cipher.sealWithCrypto(plain, purpose, of: Self.task)
            #expect(try cipher.open(sealedByCrypto, purpose, of: Self.task) == plain)
            // A fresh nonce for every seal: the same row never seals to the same bytes.
            #expect(try cipher.seal(plain, purpose, of: Self.task) != sealed)
        }
    }

    @Test func aBlobAlteredAnywhereOrOpenedAsAnotherRecordPurposeOrKeyIsRefused() throws {
        let cipher = StoreCipher(key: Self.key)
        let plain = Self.rows()[6]
        let sealed = try cipher.seal(plain, .state, of: Self.task)
        // One bit flipped in the nonce, the ciphertext and the tag (the marker's are refused before opening).
        for offset in [2, 13, 14, 100, sealed.count - 17, sealed.count - 16, sealed.count - 1] {
            var altered = sealed
            altered[altered.startIndex + offset] ^= 0x01
            Self.expectRefused { try cipher.open(altered, .state, of: Self.task) }
            Self.expectRefused { try cipher.openWithCrypto(altered, .state, of: Self.task) }
        }
        // Cut short, another purpose, another record, another key: refused by both.
        let otherKey = StoreCipher(key: SymmetricKey(size: .bits256))
        let otherTask = RecordRef(type: "task", id: "tsk_01JWMCKG2QYPGM5CV17B38YQ0Y")
        for blob in [sealed.dropLast(), sealed.prefix(StoreCipher.overhead - 1)] {
            Self.expectRefused { try cipher.open(blob, .state, of: Self.task) }
            Self.expectRefused { try cipher.openWithCrypto(blob, .state, of: Self.task) }
        }
        for (opener, purpose, record) in [
            (cipher, StoreCipher.Purpose.change, Self.task), (cipher, .state, otherTask), (otherKey, .state, Self.task),
        ] {
            Self.expectRefused { try opener.open(sealed, purpose, of: record) }
            Self.expectRefused { try opener.openWithCrypto(sealed, purpose, of: record) }
        }
        // A refusal leaves the cipher as it was: the blob still opens.
        #expect(try cipher.open(sealed, .state, of: Self.task) == plain)
    }

    @Test func threadsSealAndOpenAtOnce() throws {
        let cipher = StoreCipher(key: Self.key)
        let rows = Self.rows()
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 64) { round in
            for (index, plain) in rows.enumerated() {
                let purpose: StoreCipher.Purpose = (round + index) % 2 == 0 ? .state : .change
                guard let sealed = try? cipher.seal(plain, purpose, of: Self.task),
                    (try? cipher.open(sealed, purpose, of: Self.task)) == plain,
                    (try? cipher.openWithCrypto(sealed, purpose, of: Self.task)) == plain
                else {
                    failures.add(1, ordering: .relaxed)
                    continue
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    private static func expectRefused(_ body: () throws -> [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) {
            _ = try body()
        } throws: { error in
            (error as? CRDTError)?.code == .malformedEncoding
        }
    }
}
