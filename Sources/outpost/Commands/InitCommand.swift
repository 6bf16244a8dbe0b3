import ArgumentParser
import Foundation
import OutpostCRDT
import OutpostClient
import OutpostModel
import OutpostProtocol

/// `outpost init`: create this device's replica.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new replica (a local store) on this device; a server is optional.",
        discussion: "With --server and --token, the replica syncs with that server ('outpost sync')."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("This replica's id (default: a new random id).", valueName: "id")) var replica: String?
    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Encrypt the store (the default).",
            discussion: "The key is the key file (--key-file or $OUTPOST_KEY_FILE, made when absent), else "
                + "$OUTPOST_PASSPHRASE, else a passphrase asked twice on the terminal. --no-encrypt makes a plain store."
        )
    )
    var encrypt = true
    @OptionGroup var remoteOptions: RemoteOptions

    mutating func run() async throws {
        let remote = try remoteOptions.remote()
        let certificates = try remoteOptions.trustedCertificates()
        var replicaID: ReplicaID? = nil
        if let replica {
            guard let parsed = ReplicaID(replica) else {
                throw CLIError.input("--replica takes letters, digits, '-' and '_', at most 64 characters")
            }
            replicaID = parsed
        }
        let store = try create(replicaID: replicaID)
        var session: SessionInfo?
        if let remote {
            do {
                session = try await checkRemote(remote, trusting: certificates, store: store.store)
            } catch {
                // A refused token leaves nothing behind: the new store goes too, and is not said to be made.
                for suffix in ["", "-wal", "-shm"] {
                    try? FileManager.default.removeItem(atPath: storeOptions.path + suffix)
                }
                guard let error = error as? CLIError else { throw error }
                // No store is left to keep data in or to give a new token to: 'outpost init' is run again.
                let message = error.message.replacingOccurrences(of: "; local data and the outbox are kept", with: "")
                    .replacingOccurrences(of: "run 'outpost remote set'", with: "run 'outpost init' again with it")
                throw CLIError(
                    message: message + (message.hasSuffix("?") ? " No store was made." : "; no store was made"),
                    exitCode: error.exitCode
                )
            }
            try store.store.setRemote(remote)
            try store.store.setTrustedCertificates(certificates)
            if let session { try SyncEngine.remember(session, in: store.store) }
        }
        print("created replica \(store.replicaID) at \(storeOptions.path)")
        if let remote {
            print("server: \(remote.url.absoluteString)" + (session.map { " (practice \($0.practice))" } ?? ""))
            print("next: 'outpost sync' brings the practice's records to this replica")
        }
        if let person = session?.person {
            print(
                "edits are signed by \(person), the person this token is issued to; 'outpost use --site ID' sets where"
            )
        } else {
            print("next: 'outpost use --person ID --site ID' signs your edits once you have a person record")
        }
    }
}

extension Init {
    /// Creates the store, encrypted unless `--no-encrypt`; a key file this made goes again if the store is not made.
    func create(replicaID: ReplicaID?) throws -> CareStore {
        guard encrypt else {
            guard storeOptions.keyFile == nil else {
                throw CLIError.input("--key-file and --no-encrypt contradict each other; drop one of them")
            }
            return try CareStore.create(at: storeOptions.path, replicaID: replicaID)
        }
        guard !FileManager.default.fileExists(atPath: storeOptions.path) else {
            // The library's refusal, before any key file is made or passphrase asked for.
            return try CareStore.create(at: storeOptions.path, replicaID: replicaID)
        }
        let (key, madeFile) = try Passphrase.newKey(
            keyFile: storeOptions.keyFilePath,
            passphraseVariable: Passphrase.variable,
            for: storeOptions.path,
            refusal: "'outpost init' encrypts the new store and needs a key: set \(Passphrase.variable), give a key "
                + "file with --key-file, run on a terminal to be asked, or pass --no-encrypt for a plain store"
        )
        do {
            return try CareStore.create(at: storeOptions.path, replicaID: replicaID, key: { key })
        } catch {
            if let madeFile { try? FileManager.default.removeItem(atPath: madeFile) }
            throw error
        }
    }
}
