import Foundation
import OutpostTestSupport
import Testing

/// The server over HTTPS with a certificate made here with the `openssl` command line: devices that trust its
/// CA sync; a device that does not is refused with a clear line, and nothing of it is lost.
@Suite(.serialized)
struct TLSTests {
    /// A CA and a certificate for 127.0.0.1 it signed, as PEM files in `directory`.
    struct Certificates {
        var ca: String
        var certificate: String
        var key: String
    }

    static func openssl(_ arguments: [String], in directory: TemporaryDirectory) async throws {
        let result = try await runProcess(URL(fileURLWithPath: "/usr/bin/openssl"), arguments, in: directory.url)
        try #require(result.status == 0, "openssl \(arguments.joined(separator: " ")): \(result.stderr)")
    }

    static func makeCertificates(_ name: String, in directory: TemporaryDirectory) async throws -> Certificates {
        let ca = directory.path("\(name)-ca.pem")
        let caKey = directory.path("\(name)-ca.key")
        let key = directory.path("\(name)-server.key")
        let request = directory.path("\(name)-server.csr")
        let certificate = directory.path("\(name)-server.pem")
        let extensions = directory.path("\(name)-server.ext")
        try await openssl(
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", ca, "-days", "2",
                "-subj", "/CN=Outpost test CA \(name)", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            in: directory
        )
        try await openssl(
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
            in: directory
        )
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        try await openssl(
            [
                "x509", "-req", "-in", request, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", certificate,
                "-days", "2", "-extfile", extensions,
            ],
            in: directory
        )
        return Certificates(ca: ca, certificate: certificate, key: key)
    }

    @Test func devicesTrustingThePrivateCASyncOverTLSAndOthersAreRefusedWithNothingLost() async throws {
        let folder = try TemporaryDirectory("outpost-tls")
        let trusted = try await Self.makeCertificates("trusted", in: folder)
        let other = try await Self.makeCertificates("other", in: folder)
        let server = try await TestServer(
            arguments: ["--tls-cert", trusted.certificate, "--tls-key", trusted.key],
            trustedCertificates: try String(contentsOfFile: trusted.ca, encoding: .utf8)
        )
        let url = server.url.absoluteString
        #expect(url.hasPrefix("https://"))
        let token = server.adminToken
        let office = Device("office", in: folder)
        let laptop = Device("laptop", in: folder)
        try await office.ok("init", "--server", url, "--token", token, "--ca-file", trusted.ca)
        try await office.ok("import", Built.fixture("practice-small.json"))
        try await office.ok("sync")
        try await laptop.ok("init", "--server", url, "--token", token, "--ca-file", trusted.ca)
        let report = try await laptop.ok("sync")
        #expect(report.contains("bootstrapped"), "\(report)")
        await #expect(try laptop.export() == office.export())

        // A device trusting another CA, and one trusting only the system's authorities: the server's
        // certificate is refused, the sync exits 1 with one clear line, and the device's edits stay queued.
        for (name, extra) in [("stranger", ["--ca-file", other.ca]), ("system", [])] {
            let device = Device(name, in: folder)
            try await device.ok(arguments: ["init", "--server", url, "--token", token] + extra)
            try await device.ok("import", Built.fixture("practice-small.json"))
            let pending = try await device.status()["pendingChanges"] as? Int ?? 0
            #expect(pending > 0)
            let refused = try await device.run("sync")
            #expect(refused.status == 1, "\(name): \(refused)")
            #expect(refused.stderr.contains("certificate"), "\(name): \(refused.stderr)")
            await #expect(try device.status()["pendingChanges"] as? Int == pending)
        }

        // A CA file that is not PEM is refused before anything is written.
        let junk = folder.path("junk.pem")
        try "not a certificate\n".write(toFile: junk, atomically: true, encoding: .utf8)
        let junkDevice = Device("junk", in: folder)
        let bad = try await junkDevice.run("init", "--server", url, "--token", token, "--ca-file", junk)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--ca-file"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: junkDevice.store))
    }

    @Test func aServerGivenACertificateWithoutItsKeyOrAnUnreadableOneRefusesToStart() async throws {
        let folder = try TemporaryDirectory("outpost-tls-bad")
        let trusted = try await Self.makeCertificates("bad", in: folder)
        let data = folder.path("data")
        let halfGiven = try await runProcess(
            Built.server,
            ["serve", "--data", data, "--port", "0", "--tls-cert", trusted.certificate],
            in: folder.url
        )
        #expect(halfGiven.status != 0)
        #expect(halfGiven.stderr.contains("--tls-key"), "\(halfGiven.stderr)")
        let swapped = try await runProcess(
            Built.server,
            ["serve", "--data", data, "--port", "0", "--tls-cert", trusted.key, "--tls-key", trusted.certificate],
            in: folder.url
        )
        #expect(swapped.status != 0)
        #expect(swapped.stderr.contains("TLS"), "\(swapped.stderr)")
        // A start that fails creates no practice and writes no admin token.
        #expect(!FileManager.default.fileExists(atPath: data + "/admin-token"))
    }
}
