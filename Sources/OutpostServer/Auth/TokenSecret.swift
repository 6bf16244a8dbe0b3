import Crypto
import Foundation

/// A bearer token's secret: random, shown once, stored only as its SHA-256 hash.
///
/// The secret reads `opt_` followed by 43 base64url characters (256 random bits). Its id, `tok_` and the
/// first 12 hex digits of the hash, names the token in listings and revocations without revealing it.
public struct TokenSecret: Sendable, Hashable {
    /// The secret, as given to the device.
    public let text: String

    /// Wraps a secret a client presented.
    public init(_ text: String) {
        self.text = text
    }

    /// Makes a new random secret from `generator` (the system's cryptographic generator by default).
    public static func make<G: RandomNumberGenerator>(using generator: inout G) -> TokenSecret {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let encoded = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return TokenSecret("opt_" + encoded)
    }

    /// Makes a new random secret from the system's cryptographic generator.
    public static func make() -> TokenSecret {
        var generator = SystemRandomNumberGenerator()
        return make(using: &generator)
    }

    /// The hex SHA-256 of the secret: what the store keeps.
    public var hash: String {
        SHA256.hash(data: Data(text.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The token's public id.
    public var id: String { "tok_" + hash.prefix(12) }
}
