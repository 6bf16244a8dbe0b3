import Foundation
public import HTTPTypes
public import Hummingbird
public import OutpostProtocol

/// A refusal the server explains to its client: an HTTP status and a JSON ``ErrorBody``.
///
/// Messages name what was wrong and how to fix it, with ids where useful, and never patient data.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    /// The machine-readable code.
    public var code: ErrorCode
    /// The HTTP status sent with it.
    public var status: HTTPResponse.Status
    /// What was wrong and how to fix it.
    public var message: String
    /// The parameter, header or change field at fault.
    public var field: String?
    /// The index of the offending change in a push.
    public var index: Int?

    /// Creates a refusal.
    public init(
        _ code: ErrorCode,
        _ status: HTTPResponse.Status,
        _ message: String,
        field: String? = nil,
        index: Int? = nil
    ) {
        self.code = code
        self.status = status
        self.message = message
        self.field = field
        self.index = index
    }

    public var description: String { "\(code): \(message)" }

    /// Whether the fault is the caller's (a `4xx`) rather than the server's.
    public var isClientError: Bool { status.code < 500 }

    /// A `401`; `tokenPresented` marks a token that was sent but cannot be used, which the
    /// `WWW-Authenticate` challenge says as `error="invalid_token"` (RFC 6750 section 3).
    static func unauthorized(_ message: String, tokenPresented: Bool = false) -> ServerError {
        var error = ServerError(.unauthorized, .unauthorized, message)
        error.isInvalidToken = tokenPresented
        return error
    }

    /// Whether a `401` answers a token that was presented but is unknown, expired or revoked.
    var isInvalidToken = false
    /// For a `429`: the seconds until the client may try again (`Retry-After`).
    var retryAfterSeconds: Int?

    /// A `429` saying when to try again.
    static func rateLimited(_ message: String, retryAfterSeconds: Int) -> ServerError {
        var error = ServerError(.rateLimited, .tooManyRequests, message)
        error.retryAfterSeconds = retryAfterSeconds
        return error
    }

    /// The `WWW-Authenticate` challenge of a `401` (RFC 6750 section 3).
    var challenge: String {
        "Bearer realm=\"outpost\"" + (isInvalidToken ? ", error=\"invalid_token\"" : "")
    }

    static func forbidden(_ message: String, index: Int? = nil) -> ServerError {
        ServerError(.forbidden, .forbidden, message, index: index)
    }

    static func malformed(_ message: String, field: String? = nil) -> ServerError {
        ServerError(.malformedRequest, .badRequest, message, field: field)
    }

    static func parameter(_ name: String, _ message: String) -> ServerError {
        ServerError(.invalidParameter, .badRequest, message, field: name)
    }

    /// A binary push naming by abbreviation records this server does not hold as the device meant. One message
    /// whatever was not resolved: an answer that said which record, or why, would tell a device whether the
    /// practice holds a record it may not see.
    static let unresolved = ServerError(
        .unresolvedRecords,
        .conflict,
        "The push names by abbreviation records this server does not hold as the device meant; nothing was stored. "
            + "Push the batch again naming every record in full."
    )

    static func tooLarge(_ message: String) -> ServerError {
        ServerError(.tooLarge, .contentTooLarge, message)
    }

    /// The body sent for this refusal.
    func body(requestID: String?) -> ErrorBody {
        ErrorBody(.init(code: code, message: message, field: field, index: index, requestID: requestID))
    }
}

extension ServerError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try Self.jsonResponse(body(requestID: context.id), status: status)
        if status == .unauthorized {
            response.headers[.wwwAuthenticate] = challenge
        }
        if let retryAfterSeconds {
            response.headers[.retryAfter] = String(retryAfterSeconds)
        }
        return response
    }

    static func jsonResponse(_ body: some Encodable, status: HTTPResponse.Status) throws -> Response {
        let data = try Wire.makeEncoder().encode(body)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(data.count)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
