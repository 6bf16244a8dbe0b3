import CompressNIO
public import Foundation
import NIOCore

/// gzip for the heavy sync messages (protocol/README.md, section 16): HTTP content coding, so `curl
/// --compressed` reads them too.
///
/// A push body of at least ``threshold`` bytes is sent with `Content-Encoding: gzip`; a pull or snapshot
/// request says `Accept-Encoding: gzip` and the server compresses answers of at least ``threshold`` bytes.
/// Both sides inflate with a bound, so a small body that would inflate past the receiver's limit is refused
/// rather than filling memory.
public enum WireCompression {
    /// The one content coding besides `identity`.
    public static let gzip = "gzip"

    /// Bodies smaller than this are sent as they are: the gzip header and trailer would eat the gain.
    public static let threshold = 1_024

    /// Why a compressed body could not be read.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// It would inflate past the limit.
        case tooLarge(limit: Int)
        /// It is not a whole gzip stream.
        case corrupt

        public var description: String {
            switch self {
            case .tooLarge(let limit): "it inflates to more than \(limit) bytes"
            case .corrupt: "it is not a whole gzip stream"
            }
        }
    }

    /// `bytes` as one gzip stream, at zlib's default level.
    public static func compress(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        do {
            var output = try input.compress(with: .gzip())
            return output.readBytes(length: output.readableBytes) ?? []
        } catch {
            // zlib fails to deflate only on an exhausted allocator; the caller then sends the bytes as they are.
            preconditionFailure("gzip could not compress \(input.readableBytes) bytes: \(error)")
        }
    }

    /// The bytes a gzip stream inflates to, at most `limit`.
    ///
    /// - Throws: ``Failure/tooLarge(limit:)`` past the limit, ``Failure/corrupt`` for anything but one whole
    ///   gzip stream.
    public static func decompress(_ bytes: some Collection<UInt8>, limit: Int) throws(Failure) -> [UInt8] {
        // The smallest gzip stream (header and trailer around an empty deflate block) is 20 bytes.
        guard bytes.count >= 20 else { throw .corrupt }
        var input = ByteBuffer(bytes: bytes)
        // The trailer's last four bytes are the inflated size modulo 2^32 (RFC 1952, ISIZE).
        let trailerSize = input.getInteger(
            at: input.readerIndex + bytes.count - 4,
            endianness: .little,
            as: UInt32.self
        )
        do {
            // compress-nio's bound is approximate (it can hand back a byte or so more): checked again below.
            var output = try input.decompress(with: .gzip(), maxSize: limit + 1)
            guard output.readableBytes <= limit else { throw Failure.tooLarge(limit: limit) }
            // zlib's stream API stops quietly at the end of a cut-off input: a body whose inflated size is not its
            // trailer's was cut off (or was not gzip). A stream followed by anything (a second member, garbage) is
            // not one body either.
            guard input.readableBytes == 0, trailerSize == UInt32(truncatingIfNeeded: output.readableBytes) else {
                throw Failure.corrupt
            }
            return output.readBytes(length: output.readableBytes) ?? []
        } catch let error as Failure {
            throw error
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw .tooLarge(limit: limit)
        } catch {
            throw .corrupt
        }
    }

    /// Whether an `Accept-Encoding` header value accepts gzip (`gzip` or `x-gzip` listed with a non-zero
    /// weight, or `*`), as RFC 9110 section 12.5.3 reads it.
    public static func accepts(_ header: String) -> Bool {
        var star = false
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = parts.first else { continue }
            let refused = parts.dropFirst().contains { parameter in
                parameter.hasPrefix("q=") && (Double(parameter.dropFirst(2)) ?? 1) == 0
            }
            if coding == "gzip" || coding == "x-gzip" { return !refused }
            if coding == "*" { star = !refused }
        }
        return star
    }

    /// `data` compressed, when it is large enough to gain.
    public static func compressIfLarge(_ data: Data) -> (body: Data, encoding: String?) {
        guard data.count >= threshold else { return (data, nil) }
        return (Data(compress(data)), gzip)
    }
}
