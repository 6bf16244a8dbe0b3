import Crypto
import Foundation
import _CryptoExtras

/// What unlocks an encrypted store: a passphrase, or the contents of a key file.
///
/// Neither opens the data directly: each unwraps the store's random data key (docs/store.md, "Encryption at
/// rest"), so changing the passphrase (``LocalStore/rekey(to:)``) rewrites one row, not the store. For example:
///
/// ```swift
/// var configuration = CareStore.configuration()
/// configuration.key = { () throws(ClientError) in try .passphrase("correct horse battery staple") }
/// let store = try LocalStore.create(at: path, configuration: configuration)
/// ```
public struct StoreKey: Sendable {
    enum Material: Sendable {
        case passphrase([UInt8])
        case keyFile([UInt8])
    }

    let material: Material

    /// The fewest bytes a key file may hold: a key file is a key (for example 32 random bytes), not a password.
    public static let minimumKeyFileBytes = 32

    /// A passphrase (its UTF-8 bytes), stretched with scrypt and the store's salt.
    ///
    /// - Throws: ``ClientError`` `invalidSetting` when the passphrase is empty.
    public static func passphrase(_ passphrase: String) throws(ClientError) -> StoreKey {
        guard !passphrase.isEmpty else {
            throw ClientError(code: .invalidSetting, message: "the passphrase is empty; choose a passphrase")
        }
        return StoreKey(material: .passphrase(Array(passphrase.utf8)))
    }

    /// A key file's contents (at least ``minimumKeyFileBytes`` bytes), expanded with HKDF and the store's salt.
    ///
    /// - Throws: ``ClientError`` `invalidSetting` when the contents are shorter than ``minimumKeyFileBytes``.
    public static func keyFile(
        contents: some Sequence<UInt8>,
        path: String = "the key file"
    ) throws(ClientError)
        -> StoreKey
    {
        let bytes = Array(contents)
        guard bytes.count >= minimumKeyFileBytes else {
            throw ClientError(
                code: .invalidSetting,
                message: "\(path) holds \(bytes.count) bytes, fewer than a key's \(minimumKeyFileBytes); make one "
                    + "with 'head -c 32 /dev/urandom > FILE'"
            )
        }
        return StoreKey(material: .keyFile(bytes))
    }

    /// Reads a key file.
    ///
    /// - Throws: ``ClientError`` `invalidSetting` when the file cannot be read or is too short.
    public static func keyFile(at path: String) throws(ClientError) -> StoreKey {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw ClientError(
                code: .invalidSetting,
                message: "could not read the key file \(path); check the path and its permissions"
            )
        }
        return try keyFile(contents: contents, path: path)
    }

    /// Makes a new key file at `path` (32 random bytes, readable by its owner only) and returns its key.
    ///
    /// - Throws: ``ClientError`` `invalidSetting` when a file is already there or it cannot be written.
    public static func makeKeyFile(at path: String) throws(ClientError) -> StoreKey {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw ClientError(
                code: .invalidSetting,
                message: "could not create the key file \(path); check the folder exists and can be written"
            )
        }
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced else {
            unlink(path)
            throw ClientError(code: .invalidSetting, message: "could not write the key file \(path)")
        }
        return StoreKey(material: .keyFile(bytes))
    }

    /// The method stored in the store's key row.
    var method: String {
        switch material {
        case .passphrase: "scrypt"
        case .keyFile: "keyFile"
        }
    }

    /// What the user gives for this method, for messages.
    static func noun(ofMethod method: String) -> String {
        method == "keyFile" ? "key file" : "passphrase"
    }
}

/// Gives the key of an encrypted store when asked: called once by ``LocalStore/open(at:configuration:)`` when
/// the store is encrypted (never for a plain store), and by ``LocalStore/create(at:replicaID:configuration:)``.
public typealias StoreKeySource = @Sendable () throws(ClientError) -> StoreKey

/// The scrypt cost of a passphrase: stored with the store's key row, so a store keeps the cost it was made with.
public struct ScryptCost: Sendable, Hashable {
    /// N: the number of rounds (a power of two); memory is 128 · N · r bytes.
    public var rounds: Int
    /// r: the block size.
    public var blockSize: Int
    /// p: the parallelism.
    public var parallelism: Int

    /// N = 2^15, r = 8, p = 3: one of OWASP's scrypt settings (32 MiB, well under the client's memory budget).
    public static let standard = ScryptCost(rounds: 1 << 15, blockSize: 8, parallelism: 3)

    /// Creates a cost.
    public init(rounds: Int, blockSize: Int, parallelism: Int) {
        self.rounds = rounds
        self.blockSize = blockSize
        self.parallelism = parallelism
    }

    /// Whether the cost is one this version derives keys with (refuses a key row that asks for gigabytes).
    var isSupported: Bool {
        rounds >= 2 && rounds <= 1 << 20 && rounds & (rounds - 1) == 0 && (1...32).contains(blockSize)
            && (1...16).contains(parallelism)
    }
}

/// The store's key row: the data key wrapped by the key that the passphrase or key file gives, and a key check
/// value. See docs/store.md, "Encryption at rest".
struct StoreKeyRow: Sendable {
    /// `scrypt` (a passphrase) or `keyFile`.
    var method: String
    /// 32 random bytes, new at every wrap.
    var salt: [UInt8]
    /// The scrypt cost (a passphrase only).
    var cost: ScryptCost?
    /// The data key sealed with AES-256-GCM under the wrapping key (nonce, ciphertext, tag).
    var wrappedKey: Data
    /// HMAC-SHA256 of a fixed label under the data key: confirms the unwrapped key is this store's.
    var keyCheck: Data

    private static let wrapLabel = Array("outpost store data key v1".utf8)
    private static let checkLabel = Array("outpost store key check v1".utf8)
    private static let keyFileInfo = Array("outpost store key file v1".utf8)

    /// Wraps `dataKey` under `key` with a new salt.
    static func wrap(
        _ dataKey: SymmetricKey,
        with key: StoreKey,
        cost: ScryptCost = .standard
    ) throws(ClientError)
        -> StoreKeyRow
    {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let method = key.method
        let usedCost: ScryptCost? = method == "scrypt" ? cost : nil
        let wrappingKey = try derive(key, salt: salt, cost: usedCost)
        do {
            let box = try AES.GCM.seal(
                dataKey.withUnsafeBytes { Array($0) },
                using: wrappingKey,
                authenticating: wrapLabel + Array(method.utf8)
            )
            guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
            return StoreKeyRow(
                method: method,
                salt: salt,
                cost: usedCost,
                wrappedKey: combined,
                keyCheck: Data(HMAC<SHA256>.authenticationCode(for: checkLabel, using: dataKey))
            )
        } catch {
            throw ClientError(code: .storage, message: "could not wrap the store's key (\(error))")
        }
    }

    /// Unwraps the data key with `key`; `path` names the store in messages.
    ///
    /// - Throws: ``ClientError`` `wrongKey` when `key` is of the other method or does not open the store,
    ///   `storeCorrupt` when the key row is damaged.
    func unwrap(with key: StoreKey, path: String) throws(ClientError) -> SymmetricKey {
        let noun = StoreKey.noun(ofMethod: method)
        guard key.method == method else {
            throw ClientError(
                code: .wrongKey,
                message: "the store at \(path) is locked with a \(noun), not a \(StoreKey.noun(ofMethod: key.method)); "
                    + (method == "keyFile"
                        ? "give its key file with --key-file (or OUTPOST_KEY_FILE)"
                        : "give its passphrase (OUTPOST_PASSPHRASE, or on a terminal) without --key-file")
            )
        }
        let wrappingKey = try Self.derive(key, salt: salt, cost: cost)
        let unwrapped: Data
        do {
            let box = try AES.GCM.SealedBox(combined: wrappedKey)
            unwrapped = try AES.GCM.open(box, using: wrappingKey, authenticating: Self.wrapLabel + Array(method.utf8))
        } catch {
            throw ClientError(
                code: .wrongKey,
                message: "the \(noun) does not open the store at \(path); check it and retry (nothing was changed)"
            )
        }
        let dataKey = SymmetricKey(data: unwrapped)
        guard unwrapped.count == 32,
            HMAC<SHA256>.isValidAuthenticationCode(keyCheck, authenticating: Self.checkLabel, using: dataKey)
        else {
            throw ClientError(
                code: .storeCorrupt,
                message: "the store at \(path) failed its key check: its key row was altered or damaged; restore it "
                    + "from a backup"
            )
        }
        return dataKey
    }

    /// The wrapping key: scrypt of a passphrase, HKDF-SHA256 of a key file's bytes; both with the salt.
    private static func derive(_ key: StoreKey, salt: [UInt8], cost: ScryptCost?) throws(ClientError) -> SymmetricKey {
        switch key.material {
        case .keyFile(let bytes):
            return HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: bytes),
                salt: salt,
                info: keyFileInfo,
                outputByteCount: 32
            )
        case .passphrase(let bytes):
            guard let cost, cost.isSupported else {
                throw ClientError(
                    code: .storeCorrupt,
                    message: "the store's key row asks for a key derivation this version does not support; it is "
                        + "damaged or was written by a newer Outpost"
                )
            }
            do {
                return try KDF.Scrypt.deriveKey(
                    from: bytes,
                    salt: salt,
                    outputByteCount: 32,
                    rounds: cost.rounds,
                    blockSize: cost.blockSize,
                    parallelism: cost.parallelism
                )
            } catch {
                throw ClientError(code: .storage, message: "could not derive the store's key from the passphrase")
            }
        }
    }
}
