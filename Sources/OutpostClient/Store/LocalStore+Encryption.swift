import Crypto
import Foundation
import GRDB
import Logging

extension LocalStore {
    /// Whether the store's record states and change-log rows are encrypted (docs/store.md, "Encryption at rest").
    public var isEncrypted: Bool { codec.isEncrypted }

    /// The codec of a new store, and its key row when `configuration.key` asks for encryption: a new random data
    /// key, wrapped by the key the source gives.
    static func newCodec(_ configuration: Configuration) throws(ClientError) -> (StoreCodec, StoreKeyRow?) {
        guard let source = configuration.key else { return (StoreCodec(cipher: nil), nil) }
        let key = try source()
        let dataKey = SymmetricKey(size: .bits256)
        let row = try StoreKeyRow.wrap(dataKey, with: key)
        return (StoreCodec(cipher: StoreCipher(key: dataKey)), row)
    }

    /// The codec of an existing store: plain without a key row; otherwise the data key unwrapped with the key
    /// `configuration.key` gives.
    static func unlock(
        _ row: StoreKeyRow?,
        configuration: Configuration,
        path: String
    ) throws(ClientError)
        -> StoreCodec
    {
        guard let row else { return StoreCodec(cipher: nil) }
        guard let source = configuration.key else {
            throw ClientError(
                code: .keyRequired,
                message: "the store at \(path) is encrypted; give its \(StoreKey.noun(ofMethod: row.method)) "
                    + (row.method == "keyFile"
                        ? "with --key-file (or OUTPOST_KEY_FILE)"
                        : "in OUTPOST_PASSPHRASE, or run on a terminal to be asked")
            )
        }
        let dataKey = try row.unwrap(with: try source(), path: path)
        return StoreCodec(cipher: StoreCipher(key: dataKey))
    }

    /// The store's key row, or `nil` for a plain store (or one made before encryption existed).
    static func fetchKeyRow(_ db: Database) throws -> StoreKeyRow? {
        guard try db.tableExists("storeKey"), let row = try Row.fetchOne(db, sql: "SELECT * FROM storeKey WHERE id = 1")
        else { return nil }
        var cost: ScryptCost?
        if let rounds = row["scryptRounds"] as Int?, let blockSize = row["scryptBlockSize"] as Int?,
            let parallelism = row["scryptParallelism"] as Int?
        {
            cost = ScryptCost(rounds: rounds, blockSize: blockSize, parallelism: parallelism)
        }
        return StoreKeyRow(
            method: row["method"],
            salt: Array(row["salt"] as Data),
            cost: cost,
            wrappedKey: row["wrappedKey"],
            keyCheck: row["keyCheck"]
        )
    }

    /// Writes the key row (replacing any).
    static func insert(_ row: StoreKeyRow, db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO storeKey
                    (id, method, salt, scryptRounds, scryptBlockSize, scryptParallelism, wrappedKey, keyCheck)
                VALUES (1, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                row.method, Data(row.salt), row.cost?.rounds, row.cost?.blockSize, row.cost?.parallelism,
                row.wrappedKey, row.keyCheck,
            ]
        )
    }

    /// Locks the store with another key (a new passphrase, or a key file): the data key is wrapped again under
    /// `key` with a new salt, in one row; no record or change is rewritten. Afterwards the old key no longer
    /// opens this file: the old key row is overwritten in place (`secure_delete`) and the write-ahead log is
    /// truncated. A copy of the store taken before still opens with the old key.
    ///
    /// - Throws: ``ClientError`` `invalidSetting` when the store is not encrypted, or a storage error (then the
    ///   old key still opens the store).
    public func rekey(to key: StoreKey) throws(ClientError) {
        guard let cipher = codec.cipher else {
            throw ClientError(
                code: .invalidSetting,
                message: "the store at \(path) is not encrypted, so it has no key to change; make an encrypted one "
                    + "with 'outpost init' (encrypted unless --no-encrypt) and sync it from the server, or, for a store "
                    + "that never synced, carry its records with 'outpost fhir export' and 'outpost fhir import'"
            )
        }
        let row = try StoreKeyRow.wrap(cipher.key, with: key)
        do {
            try writer.barrierWriteWithoutTransaction { db in
                try db.execute(sql: "PRAGMA secure_delete = ON")
                defer { try? db.execute(sql: "PRAGMA secure_delete = OFF") }
                try db.inTransaction {
                    try Self.insert(row, db: db)
                    return .commit
                }
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch {
            throw Self.wrap(error, path: path, doing: "change the store's key")
        }
        configuration.logger.info("rekeyed store", metadata: ["replica": "\(replicaID)", "method": "\(row.method)"])
    }
}
