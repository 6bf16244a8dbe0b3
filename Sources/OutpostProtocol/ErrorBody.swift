/// The JSON body of every `4xx` and `5xx` answer: `{"error": {"code": ..., "message": ...}}`.
public struct ErrorBody: Sendable, Hashable, Codable {
    /// What went wrong.
    public var error: Detail

    /// Creates an error body.
    public init(_ error: Detail) {
        self.error = error
    }

    /// What went wrong, where, and how to fix it; never patient data.
    public struct Detail: Sendable, Hashable, Codable {
        /// A stable, machine-readable code (see ``ErrorCode``).
        public var code: ErrorCode
        /// One human sentence: what was wrong and how to fix it.
        public var message: String
        /// The field, parameter or header at fault, when there is one.
        public var field: String?
        /// The index of the offending change in a push, when there is one.
        public var index: Int?
        /// The request id the server logged, for support.
        public var requestID: String?

        /// Creates an error detail.
        public init(
            code: ErrorCode,
            message: String,
            field: String? = nil,
            index: Int? = nil,
            requestID: String? = nil
        ) {
            self.code = code
            self.message = message
            self.field = field
            self.index = index
            self.requestID = requestID
        }
    }
}

/// The error codes of the wire protocol; `protocol/README.md` lists each with its HTTP status and meaning.
///
/// A struct with static members rather than an enum, so a client meets a newer server's code as a value it
/// can print rather than a decoding failure.
public struct ErrorCode: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    /// 400: the body is not JSON, or not the message the endpoint expects.
    public static let malformedRequest = ErrorCode(rawValue: "malformed_request")
    /// 400: a query parameter is missing or invalid.
    public static let invalidParameter = ErrorCode(rawValue: "invalid_parameter")
    /// 400: the protocol version the client speaks is not served here.
    public static let unsupportedProtocol = ErrorCode(rawValue: "unsupported_protocol")
    /// 405: the path is known but not with this method; the `Allow` header lists the methods it takes.
    public static let methodNotAllowed = ErrorCode(rawValue: "method_not_allowed")
    /// 415: a request body without `Content-Type: application/json`.
    public static let unsupportedMediaType = ErrorCode(rawValue: "unsupported_media_type")
    /// 422: a pushed change breaks the care model's rules (unknown field, bad value, immutable field…).
    public static let invalidChange = ErrorCode(rawValue: "invalid_change")
    /// 401: no token, an unknown token, or an expired or revoked one.
    public static let unauthorized = ErrorCode(rawValue: "unauthorized")
    /// 403: the token is valid but its role or scope does not allow this.
    public static let forbidden = ErrorCode(rawValue: "forbidden")
    /// 403: the replica id of a push belongs to another device.
    public static let replicaMismatch = ErrorCode(rawValue: "replica_mismatch")
    /// 403: a pushed change edits a patient (or its records) outside the token's scope of sites and teams.
    public static let outOfScope = ErrorCode(rawValue: "out_of_scope")
    /// 404: no such endpoint, or no such record in this practice.
    public static let notFound = ErrorCode(rawValue: "not_found")
    /// 409: a change id the server holds with different content (a replica restored from an old backup).
    public static let changeIDReused = ErrorCode(rawValue: "change_id_reused")
    /// 409: a pushed change's clock is too far ahead of the server's; the device re-stamps its pending
    /// changes from the server's clock and pushes again.
    public static let clockSkew = ErrorCode(rawValue: "clock_skew")
    /// 409: a binary push names by abbreviation (layout 3) a record the server does not hold, or holds twice, or
    /// not the one the device meant; nothing was stored. The device pushes the batch again naming every record in
    /// full.
    public static let unresolvedRecords = ErrorCode(rawValue: "unresolved_records")
    /// 410: the server can no longer serve this checkpoint; the device bootstraps again from a snapshot,
    /// keeping its unpushed changes.
    public static let checkpointExpired = ErrorCode(rawValue: "checkpoint_expired")
    /// 413: the body is larger than ``Limits/maxBodyBytes`` or the push larger than
    /// ``Limits/maxPushChanges``.
    public static let tooLarge = ErrorCode(rawValue: "too_large")
    /// 429: too many failed authentications from this address or for this token prefix; retry after
    /// `Retry-After` seconds.
    public static let rateLimited = ErrorCode(rawValue: "rate_limited")
    /// 500: an unexpected failure; the body carries only a request id.
    public static let internalError = ErrorCode(rawValue: "internal")
    /// 503: the server is starting or stopping.
    public static let unavailable = ErrorCode(rawValue: "unavailable")
}
