/// What a restore must not undo: the revocations, purges and audit entries the replaced store recorded after the
/// backup was taken (docs/backup.md, "What a restore keeps of the store it replaces").
///
/// A backup is an older copy of the store. Restored alone it would bring back a token revoked since (a lost laptop's
/// token working again), the records of a patient purged since (a legal erasure undone), and erase the audit
/// entries that said so. The restore reads these from the store it replaces, before replacing it
/// (``read(from:takenAtMillis:)``), decides what the restored store lacks (``plan(_:restoredTokens:restoredPurges:)``,
/// pure), and makes it so through the restored store's own administration (``apply(to:now:)``): the same paths an
/// administrator's `token revoke` and `purge` take, audited.
public struct RestoreCarryOver: Sendable, Equatable {
    /// What the replaced store held that a restore keeps.
    public struct Replaced: Sendable, Equatable {
        /// Its revoked tokens.
        public var revoked: [TokenEntry] = []
        /// Its purges, of every practice.
        public var purges: [PurgeEntry] = []
        /// Its audit entries recorded after the backup was taken, oldest first.
        public var audit: [AuditEntry] = []

        public init(revoked: [TokenEntry] = [], purges: [PurgeEntry] = [], audit: [AuditEntry] = []) {
            self.revoked = revoked
            self.purges = purges
            self.audit = audit
        }
    }

    /// Tokens to revoke again: revoked in the replaced store, active in the restored one.
    public var revoke: [String] = []
    /// Purges to make again: made in the replaced store, absent from the restored one (whether or not it holds
    /// the patient: one it does not hold is recorded, so that devices pushing its records again are not stored).
    public var purges: [PurgeEntry] = []
    /// The replaced store's audit entries after the backup, appended to the restored store's log as they were.
    public var audit: [AuditEntry] = []
    /// Purges of practices the restored store does not hold (added after the backup): nothing of them to erase, and
    /// their tokens are not in it either; reported, not made.
    public var outsidePractices: [PurgeEntry] = []

    public init(
        revoke: [String] = [],
        purges: [PurgeEntry] = [],
        audit: [AuditEntry] = [],
        outsidePractices: [PurgeEntry] = []
    ) {
        self.revoke = revoke
        self.purges = purges
        self.audit = audit
        self.outsidePractices = outsidePractices
    }

    /// Whether nothing is carried over.
    public var isEmpty: Bool { revoke.isEmpty && purges.isEmpty && audit.isEmpty }

    /// Reads what the store about to be replaced holds that a restore of a backup taken at `takenAtMillis` keeps.
    public static func read(from store: any AdminStorage, takenAtMillis: UInt64) async throws(ServerError) -> Replaced {
        var replaced = Replaced()
        replaced.revoked = try await store.tokens(practice: nil).filter { $0.revokedAtMillis != nil }
        for practice in try await store.practices() {
            replaced.purges += try await store.purges(practice: practice.id)
        }
        replaced.audit = try await store.auditLog(practice: nil).filter { $0.atMillis > takenAtMillis }
        return replaced
    }

    /// What the restored store lacks of `replaced`, given its practices, tokens and purges.
    public static func plan(
        _ replaced: Replaced,
        restoredPractices: Set<String>,
        restoredTokens: [TokenEntry],
        restoredPurges: [PurgeEntry]
    ) -> RestoreCarryOver {
        let active = Set(restoredTokens.filter { $0.revokedAtMillis == nil }.map(\.id))
        let purged = Set(restoredPurges.map { "\($0.practice)/\($0.patient)" })
        let missing = replaced.purges.filter { !purged.contains("\($0.practice)/\($0.patient)") }
            .sorted { ($0.atMillis, $0.practice, $0.patient) < ($1.atMillis, $1.practice, $1.patient) }
        return RestoreCarryOver(
            revoke: replaced.revoked.map(\.id).filter(active.contains).sorted(),
            purges: missing.filter { restoredPractices.contains($0.practice) },
            audit: replaced.audit,
            outsidePractices: missing.filter { !restoredPractices.contains($0.practice) }
        )
    }

    /// Reads the restored store's practices, tokens and purges and plans against them.
    public static func plan(
        _ replaced: Replaced,
        for store: any AdminStorage
    ) async throws(ServerError)
        -> RestoreCarryOver
    {
        let practices = try await store.practices()
        var purges: [PurgeEntry] = []
        for practice in practices { purges += try await store.purges(practice: practice.id) }
        return plan(
            replaced,
            restoredPractices: Set(practices.map(\.id)),
            restoredTokens: try await store.tokens(practice: nil),
            restoredPurges: purges
        )
    }

    /// Makes it so in the restored store: the audit entries appended as they were, then each token revoked and each
    /// purge made again (each audited as it is made). Each step stands alone: one that fails does not stop the
    /// others (the replaced store is gone by now); what failed is returned, in words saying what to do by hand.
    public func apply(to store: any AdminStorage, now: UInt64) async -> [String] {
        var failures: [String] = []
        do {
            try await store.carryOver(audit: audit, now: now)
        } catch {
            failures.append("the replaced store's \(audit.count) audit entries were not appended (\(error.message))")
        }
        for token in revoke {
            do {
                _ = try await store.revokeToken(id: token, now: now)
            } catch {
                failures.append(
                    "\(token) was not revoked again (\(error.message)); revoke it: outpost-server token revoke \(token)"
                )
            }
        }
        for purge in purges {
            do {
                try await store.purgeAgain(purge, now: now)
            } catch {
                failures.append(
                    "the purge of \(purge.patient) was not made again (\(error.message)); make it: outpost-server purge "
                        + "patient \(purge.patient) --practice \(purge.practice) --reason …"
                )
            }
        }
        return failures
    }
}

extension RestoreCarryOver {
    /// The audit detail of the entry that closes the carried-over ones.
    static func carryOverDetail(_ count: Int) -> String {
        "\(count) audit entr\(count == 1 ? "y" : "ies") of the replaced store, recorded after the backup was taken, "
            + "carried over above"
    }
}
