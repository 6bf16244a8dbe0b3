#if os(Linux) && canImport(COpenSSLCrypto)
import COpenSSLCrypto
@preconcurrency import Crypto
import Foundation
import Synchronization

/// AES-256-GCM through OpenSSL's libcrypto, for ``StoreCipher`` on Linux: the same sealed form as Crypto's
/// `AES.GCM` (a 12-byte nonce, the ciphertext, a 16-byte tag), so either opens what the other sealed.
///
/// On Linux, Crypto's `AES.GCM.seal` and `open` set a BoringSSL context up for every call (the key's schedule and
/// its GHASH table) and reach it through generic code the compiler does not specialize across the module's
/// boundary: in a profile of an encrypted import, about 1.8 µs a seal of a 300-byte row, a sixth of it the
/// cipher itself (docs/store.md, "Encryption at rest"). Here a context keeps the key's schedule between calls,
/// and each seal or open sets only its nonce, in a few C calls. Contexts wait in a small pool, about one per thread
/// sealing or opening at once; a context that failed once is freed, not reused. OpenSSL clears a context's key
/// material when it frees it.
final class OpenSSLGCM: Sendable {
    static let nonceSize = 12
    static let tagSize = 16

    private let sealing: Pool
    private let opening: Pool

    /// A cipher for `key`, which must be 256 bits (``seal(_:authenticating:after:)`` fails otherwise).
    init(key: SymmetricKey) {
        sealing = Pool(key: key, encrypting: true)
        opening = Pool(key: key, encrypting: false)
    }

    /// `prefix`, then a random nonce (``NonceSource``), the ciphertext of `plain` and the tag; `nil`
    /// if OpenSSL failed.
    func seal(_ plain: [UInt8], authenticating associated: [UInt8], after prefix: [UInt8]) -> Data? {
        guard plain.count <= Int(Int32.max) - Self.tagSize, let context = sealing.take() else { return nil }
        var blob = Data(count: prefix.count + Self.nonceSize + plain.count + Self.tagSize)
        let sealed = blob.withUnsafeMutableBytes { out -> Bool in
            let base = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            base.initialize(from: prefix, count: prefix.count)
            let nonce = base + prefix.count
            let cipherText = nonce + Self.nonceSize
            NonceSource.shared.fill(UnsafeMutableRawBufferPointer(start: nonce, count: Self.nonceSize))
            guard EVP_EncryptInit_ex(context.handle, nil, nil, nil, nonce) == 1,
                Self.update(context, associated, encrypting: true)
            else { return false }
            var written: Int32 = 0
            if !plain.isEmpty {
                let updated = plain.withUnsafeBufferPointer { input in
                    EVP_EncryptUpdate(context.handle, cipherText, &written, input.baseAddress, Int32(input.count))
                }
                guard updated == 1, written == Int32(plain.count) else { return false }
            }
            var finalBytes: Int32 = 0
            return EVP_EncryptFinal_ex(context.handle, cipherText + plain.count, &finalBytes) == 1 && finalBytes == 0
                && EVP_CIPHER_CTX_ctrl(
                    context.handle,
                    EVP_CTRL_GCM_GET_TAG,
                    Int32(Self.tagSize),
                    UnsafeMutableRawPointer(cipherText + plain.count)
                ) == 1
        }
        sealing.give(context, reusable: sealed)
        return sealed ? blob : nil
    }

    /// The plain bytes of `blob` past its first `prefixCount` bytes (a nonce, the ciphertext, the tag); `nil` when
    /// it is too short, its tag does not match (altered, sealed with another key or other associated data), or
    /// OpenSSL failed.
    func open(_ blob: Data, prefixCount: Int, authenticating associated: [UInt8]) -> [UInt8]? {
        let count = blob.count - prefixCount - Self.nonceSize - Self.tagSize
        guard count >= 0, count <= Int(Int32.max), let context = opening.take() else { return nil }
        var authentic = false
        let plain = blob.withUnsafeBytes { raw -> [UInt8] in
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let nonce = base + prefixCount
            let cipherText = nonce + Self.nonceSize
            // OpenSSL takes the expected tag through a mutable pointer: a copy.
            var tag = [UInt8](UnsafeBufferPointer(start: cipherText + count, count: Self.tagSize))
            guard EVP_DecryptInit_ex(context.handle, nil, nil, nil, nonce) == 1,
                Self.update(context, associated, encrypting: false)
            else { return [] }
            let plain = [UInt8](unsafeUninitializedCapacity: count) { output, initialized in
                var written: Int32 = 0
                let updated =
                    count == 0
                    || EVP_DecryptUpdate(context.handle, output.baseAddress, &written, cipherText, Int32(count)) == 1
                        && written == Int32(count)
                initialized = updated ? count : 0
            }
            guard plain.count == count,
                EVP_CIPHER_CTX_ctrl(context.handle, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagSize), &tag) == 1
            else { return [] }
            var finalBytes: Int32 = 0
            var scratch = [UInt8](repeating: 0, count: 16)
            authentic = EVP_DecryptFinal_ex(context.handle, &scratch, &finalBytes) == 1 && finalBytes == 0
            return plain
        }
        opening.give(context, reusable: authentic)
        return authentic ? plain : nil
    }

    /// Feeds the associated data to a context set up for a new nonce.
    private static func update(_ context: Context, _ associated: [UInt8], encrypting: Bool) -> Bool {
        guard !associated.isEmpty else { return true }
        return associated.withUnsafeBufferPointer { bytes in
            var written: Int32 = 0
            let code =
                encrypting
                ? EVP_EncryptUpdate(context.handle, nil, &written, bytes.baseAddress, Int32(bytes.count))
                : EVP_DecryptUpdate(context.handle, nil, &written, bytes.baseAddress, Int32(bytes.count))
            return code == 1
        }
    }

    /// An OpenSSL cipher context with the key set, used by one thread at a time.
    struct Context: @unchecked Sendable {
        let handle: OpaquePointer
    }

    /// The contexts of one direction not in use: taken for a call, given back after it.
    private final class Pool: Sendable {
        /// Contexts kept for reuse; more in use at once are freed when given back.
        static let capacity = 8

        /// Read only, to key a new context. Crypto does not mark `SymmetricKey` `Sendable`; it is a value whose
        /// bytes never change once made, and nothing here writes it.
        let key: SymmetricKey
        let encrypting: Bool
        private let idle = Mutex<[Context]>([])

        init(key: SymmetricKey, encrypting: Bool) {
            self.key = key
            self.encrypting = encrypting
        }

        deinit {
            for context in idle.withLock({ $0 }) { EVP_CIPHER_CTX_free(context.handle) }
        }

        /// An idle context, or a new one with the key set; `nil` if OpenSSL failed or the key is not 256 bits.
        func take() -> Context? {
            if let context = idle.withLock({ $0.popLast() }) { return context }
            guard let handle = EVP_CIPHER_CTX_new() else { return nil }
            let ready = key.withUnsafeBytes { keyBytes -> Bool in
                guard keyBytes.count == 32 else { return false }
                let bytes = keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                return encrypting
                    ? EVP_EncryptInit_ex(handle, EVP_aes_256_gcm(), nil, bytes, nil) == 1
                    : EVP_DecryptInit_ex(handle, EVP_aes_256_gcm(), nil, bytes, nil) == 1
            }
            guard ready else {
                EVP_CIPHER_CTX_free(handle)
                return nil
            }
            return Context(handle: handle)
        }

        /// Keeps `context` for the next call if it is `reusable` and the pool has room; frees it otherwise.
        func give(_ context: Context, reusable: Bool) {
            let kept =
                reusable
                && idle.withLock { idle -> Bool in
                    guard idle.count < Self.capacity else { return false }
                    idle.append(context)
                    return true
                }
            if !kept { EVP_CIPHER_CTX_free(context.handle) }
        }
    }
}
#endif
