public import Foundation

/// Paths, headers and JSON settings shared by the client and the server.
public enum Wire {
    /// The header carrying the wire protocol version on every request and response.
    public static let protocolHeader = "Outpost-Protocol"
    /// The header carrying the server's request id on every response.
    public static let requestIDHeader = "Outpost-Request-Id"

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
}
