public import OutpostProtocol

/// A token as the store keeps it: never the secret, only its hash and what it grants.
public struct TokenEntry: Sendable, Hashable, Codable {
    /// The public id (`tok_…`).
    public var id: String
    /// The practice it is bound to.
    public var practice: String
    /// What it may do.
    public var role: Role
    /// The part of the practice it sees.
    public var scope: Scope
    /// A label for people (`home visits, Ana's laptop`).
    public var label: String
    /// When it was issued.
    public var createdAtMillis: UInt64
    /// When it stops working, if ever.
    public var expiresAtMillis: UInt64?
    /// When it was revoked, if it was.
    public var revokedAtMillis: UInt64?
    /// The person it is issued to (`per_…`), who alone may sign its changes; `nil` for a shared device.
    public var person: String? = nil
    /// The token it succeeds, whose devices' replica ids it took over.
    public var successorOf: String? = nil

    /// Whether the token may be used at `now`.
    public func isUsable(at now: UInt64) -> Bool {
        revokedAtMillis == nil && (expiresAtMillis.map { now < $0 } ?? true)
    }

    /// Why the token may not be used at `now`, or `nil` when it may.
    public func refusal(at now: UInt64) -> String? {
        if revokedAtMillis != nil {
            return "token \(id) was revoked; ask an administrator for a new token and run 'outpost remote set'"
        }
        if let expiry = expiresAtMillis, now >= expiry {
            return "token \(id) expired; ask an administrator for a new token and run 'outpost remote set'"
        }
        return nil
    }
}
