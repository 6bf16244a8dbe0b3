@preconcurrency import Crypto
import Foundation
import OutpostCRDT

/// Seals and opens an encrypted store's blobs (record states and change-log rows) with the store's data key.
///
/// A sealed blob is the bytes `0x00 0x45` (no plain row of either format starts so), then AES-256-GCM's
/// combined form: a random 12-byte nonce, the ciphertext of the plain row (``StoreCodec``'s bytes), and the
/// 16-byte tag. The associated data is the blob's purpose (state or change-log row) and its record's type and
/// id, so a blob copied to another record's row, or from a state to a change-log row, fails to open. Opening
/// checks the tag: a blob altered by one bit, or sealed with another key, is refused with a ``CRDTError``
/// (`malformedEncoding`) naming the record, never decoded.
struct StoreCipher: Sendable {
    /// The first two bytes of every sealed blob.
    static let marker: [UInt8] = [0x00, 0x45]
    /// Bytes a sealed blob adds to the plain row: the marker, the nonce and the tag.
    static let overhead = 2 + 12 + 16

    /// What a blob holds; part of its associated data.
    enum Purpose: UInt8 {
        case state = 1
        case change = 2
        /// A projected row's sealed values (``ProjectionCodec``); the record is the table and the row's id.
        case projection = 3
    }

    /// The data key (256 bits): random per store, wrapped in the store by the passphrase or key file.
    let key: SymmetricKey
    #if os(Linux) && canImport(COpenSSLCrypto)
    /// On Linux, the seals and opens: OpenSSL's AES-GCM, which keeps the key's schedule between calls.
    private let openSSL: OpenSSLGCM
    #endif

    init(key: SymmetricKey) {
        self.key = key
        #if os(Linux) && canImport(COpenSSLCrypto)
        openSSL = OpenSSLGCM(key: key)
        #endif
    }

    /// Whether `blob` is a sealed blob: its first two bytes read in place (every row an encrypted store reads
    /// is checked so, and `Data`'s generic iteration costs more than the check).
    static func isSealed(_ blob: Data) -> Bool {
        blob.count >= 2 && blob[blob.startIndex] == marker[0] && blob[blob.startIndex + 1] == marker[1]
    }

    /// Seals a plain row of `record`.
    func seal(_ plain: [UInt8], _ purpose: Purpose, of record: RecordRef) throws(CRDTError) -> Data {
        #if os(Linux) && canImport(COpenSSLCrypto)
        guard let blob = openSSL.seal(plain, authenticating: Self.associatedData(purpose, record), after: Self.marker)
        else { throw Self.unsealable(record, "OpenSSL failed") }
        return blob
        #else
        return try sealWithCrypto(plain, purpose, of: record)
        #endif
    }

    /// ``seal(_:_:of:)`` through Crypto's `AES.GCM`: the seal on Apple platforms; on Linux, where OpenSSL seals,
    /// the tests' proof that either opens what the other sealed.
    func sealWithCrypto(_ plain: [UInt8], _ purpose: Purpose, of record: RecordRef) throws(CRDTError) -> Data {
        do {
            let box = try AES.GCM.seal(
                plain,
                using: key,
                nonce: Self.randomNonce(),
                authenticating: Self.associatedData(purpose, record)
            )
            guard let combined = box.combined else { throw StoreCodec.malformed("no sealed form") }
            var blob = Data(capacity: Self.marker.count + combined.count)
            blob.append(contentsOf: Self.marker)
            blob.append(combined)
            return blob
        } catch {
            throw Self.unsealable(record, "\(error)")
        }
    }

    private static func unsealable(_ record: RecordRef, _ reason: String) -> CRDTError {
        CRDTError(code: .malformedEncoding, message: "could not encrypt a stored row of \(record) (\(reason))")
    }

    /// A random 12-byte nonce.
    ///
    /// On Linux, swift-crypto's `AES.GCM.Nonce()` reads its 12 bytes 8 at a time through
    /// `SystemRandomNumberGenerator`: two `getrandom` system calls per seal, and a bootstrap seals about 133,000
    /// rows. ``NonceSource`` reads the bytes of 21 nonces in one call, into a page a forked child sees wiped.
    /// Elsewhere `AES.GCM.Nonce()` is kept (on Apple platforms CryptoKit's, which draws its bytes without a system
    /// call per nonce).
    static func randomNonce() -> AES.GCM.Nonce {
        #if os(Linux)
        return withUnsafeTemporaryAllocation(byteCount: 12, alignment: 1) { bytes in
            NonceSource.shared.fill(bytes)
            return (try? AES.GCM.Nonce(data: UnsafeRawBufferPointer(bytes))) ?? AES.GCM.Nonce()
        }
        #else
        return AES.GCM.Nonce()
        #endif
    }

    /// Opens a sealed blob of `record` and returns the plain row.
    func open(_ blob: Data, _ purpose: Purpose, of record: RecordRef) throws(CRDTError) -> [UInt8] {
        #if os(Linux) && canImport(COpenSSLCrypto)
        guard Self.isSealed(blob), blob.count >= Self.overhead else {
            throw Self.unauthentic(purpose, of: record, "is not encrypted")
        }
        guard
            let plain = openSSL.open(
                blob,
                prefixCount: Self.marker.count,
                authenticating: Self.associatedData(purpose, record)
            )
        else { throw Self.unauthentic(purpose, of: record, "failed its authentication check") }
        return plain
        #else
        return try openWithCrypto(blob, purpose, of: record)
        #endif
    }

    /// ``open(_:_:of:)`` through Crypto's `AES.GCM` (see ``sealWithCrypto(_:_:of:)``).
    func openWithCrypto(_ blob: Data, _ purpose: Purpose, of record: RecordRef) throws(CRDTError) -> [UInt8] {
        guard Self.isSealed(blob), blob.count >= Self.overhead else {
            throw Self.unauthentic(purpose, of: record, "is not encrypted")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: blob.dropFirst(Self.marker.count))
            let plain = try AES.GCM.open(box, using: key, authenticating: Self.associatedData(purpose, record))
            // Copied in one piece, not byte by byte through `Data`'s iterator.
            return plain.withUnsafeBytes { Array($0) }
        } catch {
            throw Self.unauthentic(purpose, of: record, "failed its authentication check")
        }
    }

    private static func unauthentic(_ purpose: Purpose, of record: RecordRef, _ what: String) -> CRDTError {
        let row = purpose == .state ? "the stored state" : "a change-log row"
        return CRDTError(
            code: .malformedEncoding,
            message: "\(row) of \(record) \(what): the store was altered or damaged; restore it from a backup"
        )
    }

    /// The purpose, then the record's type and id, each after its length (four bytes, big-endian).
    private static func associatedData(_ purpose: Purpose, _ record: RecordRef) -> [UInt8] {
        // Built without intermediate arrays: every row an encrypted store reads is opened with it.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(9 + record.type.utf8.count + record.id.utf8.count)
        bytes.append(purpose.rawValue)
        func append(_ part: String) {
            let count = part.utf8.count
            bytes.append(UInt8(truncatingIfNeeded: count >> 24))
            bytes.append(UInt8(truncatingIfNeeded: count >> 16))
            bytes.append(UInt8(truncatingIfNeeded: count >> 8))
            bytes.append(UInt8(truncatingIfNeeded: count))
            bytes += part.utf8
        }
        append(record.type)
        append(record.id)
        return bytes
    }
}
