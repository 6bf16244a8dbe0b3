import Foundation
import HTTPTypes
import OutpostProtocol

/// Server epochs, as pure code (protocol/README.md, "Epochs").
///
/// A store's epoch is a random id set when the store is created and replaced by every restore from a backup.
/// Feed positions are only meaningful within one epoch: after a restore the feed is rewound to the backup's,
/// and the positions after it are given again to other changes. A device sends the epoch it last synced with
/// (``Wire/epochHeader``); a pull, a snapshot cursor or a push of changes from another epoch is answered `410
/// checkpoint_expired`, and the device bootstraps again and pushes again what the restored store lacks.
enum EpochRule {
    /// A new epoch id: `epo_` and 32 lowercase hexadecimal digits (128 random bits).
    static func makeEpoch() -> String {
        "epo_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// Checks a pull's checkpoint: it must come from this store's epoch `epoch` (when the device says which it
    /// has; `nil` when it did not, or the store's epoch was not read) and be no later than the practice's feed
    /// head. A pull from the start (`since` 0) is always served.
    ///
    /// - Throws: ``ServerError`` `410 checkpoint_expired` naming why.
    static func checkPull(since: Int64, head: Int64, deviceEpoch: String?, epoch: String?) throws(ServerError) {
        if since > 0, let deviceEpoch, let epoch, deviceEpoch != epoch {
            throw restored(field: "since", what: "checkpoint \(since)", deviceEpoch: deviceEpoch, epoch: epoch)
        }
        guard since <= head else {
            throw ServerError(
                .checkpointExpired,
                .gone,
                "checkpoint \(since) is ahead of this server's feed (restored from a backup?); bootstrap again "
                    + "from /v1/snapshot, keeping unpushed changes",
                field: "since"
            )
        }
    }

    /// Checks a snapshot cursor's epoch (its position is checked against the feed head as before): a snapshot
    /// begun before a restore is begun again.
    static func checkSnapshotCursor(deviceEpoch: String?, epoch: String?) throws(ServerError) {
        if let deviceEpoch, let epoch, deviceEpoch != epoch {
            throw restored(field: "after", what: "the snapshot cursor", deviceEpoch: deviceEpoch, epoch: epoch)
        }
    }

    /// Checks a push's epoch: a push that carries changes, from a device that says it last synced in another
    /// epoch, is refused before anything is stored. Stored in a restored store, its changes would raise the
    /// replica's acknowledged counter past the changes the backup lacks below them, and the device, asking what
    /// the server holds once it learns of the restore, would never send those again. A push with no changes (the
    /// question itself) stores nothing and is answered in any epoch. A backend checks it in the push's own
    /// transaction, with the epoch that transaction reads.
    static func checkPush(carriesChanges: Bool, deviceEpoch: String?, epoch: String?) throws(ServerError) {
        if carriesChanges, let deviceEpoch, let epoch, deviceEpoch != epoch {
            throw ServerError(
                .checkpointExpired,
                .gone,
                "this push is of epoch \(deviceEpoch), but this server was restored from a backup and is in epoch "
                    + "\(epoch); read the session again, ask what the server holds of your replica (a push with no "
                    + "changes), push again your changes above it, and bootstrap again",
                field: Wire.epochHeader
            )
        }
    }

    private static func restored(field: String, what: String, deviceEpoch: String, epoch: String) -> ServerError {
        ServerError(
            .checkpointExpired,
            .gone,
            "\(what) is of epoch \(deviceEpoch), but this server was restored from a backup and is in epoch "
                + "\(epoch); bootstrap again from /v1/snapshot and push again your changes it lacks",
            field: field
        )
    }
}
