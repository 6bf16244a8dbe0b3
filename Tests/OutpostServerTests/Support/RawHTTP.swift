import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP connection to the test server on loopback, for requests no HTTP client would send (partial
/// headers, a short body, bytes the parser refuses) and for connections that send nothing.
///
/// Blocking socket calls run on their own threads, off Swift's cooperative pool; waits are bounded by a
/// generous hang guard (a receive timeout), never measured.
final class RawConnection: @unchecked Sendable {  // `fd` is written only in init and deinit.
    let fd: Int32

    /// Connects to the server on 127.0.0.1 from `source`, another loopback address (the whole of 127.0.0.0/8 is
    /// this machine's), so that a test can be two clients at two addresses.
    init(port: Int, from source: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(description: "socket() failed: errno \(errno)") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw HarnessError(description: "bind(\(source)) failed: errno \(code)")
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw HarnessError(description: "connect() failed: errno \(code)")
        }
    }

    deinit { Glibc.close(fd) }

    /// Sends `bytes` from a thread of its own (a server that stops reading must not block the test); errors
    /// (the server closed first) are ignored.
    func sendInBackground(_ bytes: [UInt8]) {
        let fd = fd
        Thread {
            var sent = 0
            while sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                if count <= 0 { return }
                sent += count
            }
        }.start()
    }

    /// Reads until the server closes the connection; `closed` is false when the hang guard ran out first.
    func readUntilClosed(guardSeconds: Int = 120) async -> (bytes: [UInt8], closed: Bool) {
        let fd = fd
        return await withCheckedContinuation { continuation in
            Thread {
                var timeout = timeval(tv_sec: guardSeconds, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if count > 0 {
                        received += buffer[..<count]
                    } else if count == 0 || errno == ECONNRESET {
                        continuation.resume(returning: (received, true))
                        return
                    } else if errno != EINTR {
                        continuation.resume(returning: (received, false))
                        return
                    }
                }
            }.start()
        }
    }

    /// Sends `text` and reads the answer until the server closes the connection.
    func exchange(_ bytes: [UInt8]) async -> RawResponse? {
        sendInBackground(bytes)
        let (received, closed) = await readUntilClosed()
        guard closed else { return nil }
        return RawResponse(received)
    }
}

/// An HTTP/1.1 response read off a raw connection.
struct RawResponse: CustomStringConvertible {
    var status: Int
    var headers: [String: String]
    var body: Data

    init?(_ bytes: [UInt8]) {
        let data = Data(bytes)
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = head.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        self.status = status
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        self.headers = headers
        body = data[end.upperBound...]
    }

    /// The `error` object of a JSON error body.
    var error: [String: Any] {
        ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? [String: Any] ?? [:]
    }

    var description: String { "\(status) \(headers) \(String(decoding: body, as: UTF8.self))" }
}

/// An answer of the test server with its headers.
struct HTTPAnswer {
    var status: Int
    var headers: [String: String]
    var body: Data

    /// The `error` object of a JSON error body.
    var error: [String: Any] {
        ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["error"] as? [String: Any] ?? [:]
    }

    func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }
}

extension TestServer {
    /// Sends one request with exactly the headers given and returns the status, headers and body.
    func send(
        _ method: String,
        _ path: String,
        headers: [String: String] = [:],
        body: Data? = nil
    ) async throws
        -> HTTPAnswer
    {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: 60)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var fields: [String: String] = [:]
        for case (let name as String, let value as String) in http.allHeaderFields { fields[name] = value }
        return HTTPAnswer(status: http.statusCode, headers: fields, body: data)
    }
}
