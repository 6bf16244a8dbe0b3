public import Foundation

/// Paths, headers and JSON settings shared by the client and the server.
public enum Wire {
    /// The header carrying the wire protocol version on every request and response.
    public static let protocolHeader = "Outpost-Protocol"
    /// The header carrying the server's request id on every response.
    public static let requestIDHeader = "Outpost-Request-Id"
    /// The header a client names its software and version with (`outpost/0.1.0`), on every request.
    public static let clientHeader = "Outpost-Client"
    /// The header carrying the number of changes waiting in the device's outbox, on pushes and pulls.
    public static let outboxHeader = "Outpost-Outbox"
    /// The header carrying the number of the device's changes the server refused and it holds aside (not those
    /// discarded), on pushes and pulls.
    public static let refusedHeader = "Outpost-Refused"
    /// The header a client sends on `POST /v1/push` to ask for per-change refusals (``refusalsPerChange``):
    /// the server then stores every change it can and lists the others in ``PushResponse/refused``. Without
    /// it, a push is all or nothing (protocol/README.md, section 5).
    public static let refusalsHeader = "Outpost-Refusals"
    /// The value of ``refusalsHeader`` that asks for per-change refusals.
    public static let refusalsPerChange = "per-change"
    /// The header a device sends on pulls and snapshot pages with the server epoch it last synced with
    /// (``SessionInfo/epoch``): a checkpoint or cursor of another epoch (the server was restored from a backup)
    /// is answered `410 checkpoint_expired` (protocol/README.md, "Epochs").
    public static let epochHeader = "Outpost-Epoch"

    /// The endpoints of protocol version 1.
    public enum Path {
        public static let session = "/v1/session"
        public static let push = "/v1/push"
        public static let changes = "/v1/changes"
        public static let snapshot = "/v1/snapshot"
        public static let health = "/health"
        public static let ready = "/ready"
        public static let metrics = "/metrics"
    }

    /// An encoder for wire messages: sorted keys, so equal messages are equal bytes.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A decoder for wire messages.
    public static func makeDecoder() -> JSONDecoder {
        JSONDecoder()
    }

    /// The media type of every body; a request with a body MUST send it (`charset=utf-8` is allowed).
    public static let contentType = "application/json"

    /// Whether a `Content-Type` header value names ``contentType``: `application/json`, in any case, with
    /// no parameter other than `charset=utf-8`.
    public static func isJSONContentType(_ value: String) -> Bool {
        let parts = value.split(separator: ";", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        guard parts.first == contentType else { return false }
        return parts.dropFirst().allSatisfy { $0 == "charset=utf-8" || $0 == "charset=\"utf-8\"" }
    }

    /// Decodes a request body strictly, as servers read requests (protocol/README.md, sections 1 and 2): the
    /// bytes are checked by ``StrictJSON`` in its integer-only profile first (UTF-8, no byte-order mark, no
    /// repeated key, no trailing comma, integers without fraction or exponent), then decoded.
    ///
    /// - Throws: ``StrictJSON/Failure`` when the bytes are not strict JSON, or `DecodingError` when they are
    ///   not the message.
    public static func decodeRequest<Message: Decodable>(_ type: Message.Type, from data: Data) throws -> Message {
        try StrictJSON.validate(data, integersOnly: true)
        return try makeDecoder().decode(type, from: data)
    }
}
