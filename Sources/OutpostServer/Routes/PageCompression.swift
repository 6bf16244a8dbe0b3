import CDeflate
import OutpostProtocol

/// gzip for the server's pages (``SyncRoutes/page(_:contentType:gzip:next:)``): libdeflate, which compresses a
/// whole buffer (a page is one) faster than zlib, in the same format, so any gzip reader (the device's zlib,
/// `curl --compressed`) reads it. The device keeps zlib (``WireCompression``) for its pushes: `OutpostClient`
/// also runs on Apple platforms, which have no libdeflate.
enum PageCompression {
    /// Measured on the reference practice's pages (docs/sync.md, "Fifteenth session"): level 7 is smaller than
    /// zlib's default (6) and still faster; libdeflate's 6 is faster again but a bootstrap's pages come out 1%
    /// larger than zlib's, and on a slow link bytes cost more than the server's CPU.
    static let level: Int32 = 7

    /// `bytes` as one gzip stream.
    static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        // A compressor holds its level's tables (some hundreds of kB): one per page, freed after it.
        guard let compressor = libdeflate_alloc_compressor(level) else { return WireCompression.compress(bytes) }
        defer { libdeflate_free_compressor(compressor) }
        let bound = libdeflate_gzip_compress_bound(compressor, bytes.count)
        let compressed = [UInt8](unsafeUninitializedCapacity: bound) { output, count in
            count = bytes.withUnsafeBytes { input in
                libdeflate_gzip_compress(compressor, input.baseAddress, input.count, output.baseAddress, bound)
            }
        }
        // Never short of room with the bound; were it, the page goes through zlib.
        return compressed.isEmpty ? WireCompression.compress(bytes) : compressed
    }
}
