import NIOSSL

/// The certificate authorities a replica trusts for its server, when the server's certificate comes from a
/// private CA: PEM text kept in the replica's settings (``LocalStore/trustedCertificates()``), given by
/// `outpost init|remote set --ca-file FILE`.
public enum TrustedCertificates {
    /// The replica setting that holds them.
    public static let setting = "remote.trustedCertificates"

    /// Checks that `pem` holds at least one PEM certificate.
    ///
    /// - Throws: ``ClientError`` `invalidSetting` saying what was wrong.
    public static func check(_ pem: String) throws(ClientError) {
        do {
            _ = try parse(pem)
        } catch {
            throw ClientError(code: .invalidSetting, message: error.reason)
        }
    }

    static func parse(_ pem: String) throws(TransportFailure) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
        } catch {
            throw TransportFailure(
                reason: "the trusted CA file is not PEM certificates (-----BEGIN CERTIFICATE-----); give the CA's "
                    + "certificate as PEM"
            )
        }
        guard !certificates.isEmpty else {
            throw TransportFailure(reason: "the trusted CA file holds no PEM certificate")
        }
        return certificates
    }
}

extension LocalStore {
    /// The PEM certificates this replica alone trusts for its server, or `nil` for the system's authorities.
    public func trustedCertificates() throws(ClientError) -> String? {
        try setting(TrustedCertificates.setting)
    }

    /// Sets (or, with `nil`, clears) the certificates this replica alone trusts for its server.
    public func setTrustedCertificates(_ pem: String?) throws(ClientError) {
        if let pem { try TrustedCertificates.check(pem) }
        try setSetting(TrustedCertificates.setting, to: pem)
    }
}
