/// An error from the Outpost client library: what was wrong, and how to fix it.
///
/// Messages name paths, ids, record types and fields, never patient data. Errors of dependencies (SQLite,
/// the network) are wrapped here and kept as ``cause``; they never cross the public API on their own.
public struct ClientError: Error, Sendable, CustomStringConvertible {
    /// What kind of error this is; new codes may be added at any time.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// No store exists at the path.
        public static let storeNotFound = Code("storeNotFound")
        /// A store already exists where one was to be created.
        public static let storeExists = Code("storeExists")
        /// The file is not an Outpost store, or is damaged.
        public static let storeCorrupt = Code("storeCorrupt")
        /// The store was written by a newer version of Outpost.
        public static let storeTooNew = Code("storeTooNew")
        /// The store cannot be written (permissions, read-only medium).
        public static let storeReadOnly = Code("storeReadOnly")
        /// Another process holds the store.
        public static let storeBusy = Code("storeBusy")
        /// A change or edit was refused (schema, policy or model validation).
        public static let invalidEdit = Code("invalidEdit")
        /// A record that an edit or query names does not exist.
        public static let unknownRecord = Code("unknownRecord")
        /// Any other storage failure.
        public static let storage = Code("storage")
        /// No server is set for this replica.
        public static let noRemote = Code("noRemote")
        /// The server could not be reached, or kept failing, after retries. Nothing was lost.
        public static let unreachable = Code("unreachable")
        /// The server refused the token (unknown, expired or revoked). The outbox is kept.
        public static let unauthorized = Code("unauthorized")
        /// The server refused a request or a change; ``ClientError/serverCode`` says why.
        public static let refused = Code("refused")
        /// A setting given to the replica is not usable (for example trusted certificates that are not PEM).
        public static let invalidSetting = Code("invalidSetting")
        /// The store is encrypted and no key (passphrase or key file) was given.
        public static let keyRequired = Code("keyRequired")
        /// The passphrase or key file given does not open the encrypted store.
        public static let wrongKey = Code("wrongKey")

        public var description: String { name }
    }

    /// What kind of error this is.
    public var code: Code
    /// What was wrong and how to fix it.
    public var message: String
    /// The underlying error, if any (may hold details unfit for display to other users).
    public var cause: (any Error & Sendable)?
    /// The server's error code (`clock_skew`, `forbidden`…) when the server refused something.
    public var serverCode: String?

    /// Creates an error.
    public init(code: Code, message: String, cause: (any Error & Sendable)? = nil, serverCode: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.serverCode = serverCode
    }

    public var description: String { message }
}
