import Synchronization

/// Failed authentications, counted per client address and per presented token prefix in a sliding window, so
/// that guessing tokens is slow and cheap to refuse (protocol/README.md, section 3).
///
/// - An address with `maxFailures` failures in the last `window` is refused every request (`429`, with
///   `Retry-After`) until its oldest counted failure leaves the window, before its token is even hashed. Devices
///   behind the same address as a guesser wait too: the limit is generous for that reason.
/// - A token prefix (what `outpost remote show` prints of a secret) with `maxFailures` failures is answered
///   `429` instead of `401` for further wrong tokens with that prefix; a valid token is never refused for its
///   prefix, so nobody can lock a device out by guessing around its token.
///
/// The decisions are pure functions of the failures recorded and the time given; the state is bounded (at most
/// `maxKeys` keys, the stalest dropped first).
final class AuthThrottle: Sendable {
    struct Policy: Sendable {
        /// Failures allowed per key in one window.
        var maxFailures = 30
        /// The window, in milliseconds.
        var windowMillis: UInt64 = 60_000
        /// The most keys remembered.
        var maxKeys = 100_000
    }

    enum Key: Hashable {
        case address(String)
        case prefix(String)
    }

    let policy: Policy
    private let failures = Mutex<[Key: [UInt64]]>([:])

    init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// The token prefix a presented secret is counted under: its first 12 characters (`opt_` and 8 more).
    static func prefix(of secret: String) -> String { String(secret.prefix(12)) }

    /// Milliseconds until `key` may try again, or `nil` when it may now.
    func retryAfter(_ key: Key, now: UInt64) -> UInt64? {
        failures.withLock { table in
            guard var times = table[key] else { return nil }
            times.removeAll { $0 + policy.windowMillis <= now }
            table[key] = times.isEmpty ? nil : times
            guard times.count >= policy.maxFailures, let oldest = times.first else { return nil }
            return oldest + policy.windowMillis - now
        }
    }

    /// Counts a failed authentication from `address` with a secret of `prefix`.
    func recordFailure(address: String, prefix: String?, now: UInt64) {
        failures.withLock { table in
            for key in [Key.address(address)] + (prefix.map { [Key.prefix($0)] } ?? []) {
                var times = table[key, default: []]
                times.removeAll { $0 + policy.windowMillis <= now }
                times.append(now)
                // Only the last `maxFailures` matter for the decision.
                if times.count > policy.maxFailures { times.removeFirst(times.count - policy.maxFailures) }
                table[key] = times
            }
            if table.count > policy.maxKeys {
                let stalest = table.sorted { ($0.value.last ?? 0) < ($1.value.last ?? 0) }
                    .prefix(table.count - policy.maxKeys).map(\.key)
                for key in stalest { table[key] = nil }
            }
        }
    }
}
