#if os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The random bytes of ``StoreCipher``'s nonces on Linux: read from the kernel 252 at a time (21 nonces per
/// system call instead of one), into a page the kernel wipes in a forked child.
///
/// A bootstrap into an encrypted store seals about 133,000 rows; in a profile of `outpost sync` bootstrapping the
/// reference practice, the `getentropy` call of each nonce took 427 of the 768 samples in the seals, 3.8% of the
/// device's processor time (docs/sync.md, "Thirty-seventh session").
///
/// Random bytes kept in a process are handed out once only, even across `fork`: the bytes, their count and the
/// lock that guards them live in a page mapped with `MADV_WIPEONFORK` (Linux 4.14 and later), which a child of
/// `fork` sees zero-filled: its count is 0 and its lock unlocked (a zero-filled `pthread_mutex_t` is an unlocked
/// one), so it reads fresh bytes instead of sealing with nonces its parent uses too (AES-GCM under one key must
/// never see a nonce twice), even when another thread of the parent was drawing one as it forked. The kernel's
/// support is checked as BoringSSL checks it: an unknown `madvise` advice must fail before `MADV_WIPEONFORK`'s
/// success is believed (an emulator that ignores `madvise` returns 0 for both). Where the kernel cannot wipe the
/// page, every nonce is read with a system call of its own, as before. Each
/// nonce is still 12 independent random bytes: the collision odds are those of random nonces, whatever the number
/// of processes sealing with one store's key.
final class NonceSource: @unchecked Sendable {
    // @unchecked: the page's bytes (lock, count, random bytes) are read and written only under the page's lock;
    // `page` itself is set once, in `init`.

    /// The source ``StoreCipher`` seals with.
    static let shared = NonceSource()

    /// The bytes a refill reads: a multiple of a nonce's 12, within `getentropy`'s limit of 256.
    static let refillBytes = 252
    /// The page's layout: the lock, the count of bytes not yet handed out (0 in a new page and in a forked
    /// child's), then the bytes, handed out from the end.
    private static let pageBytes = 4096
    private static let countOffset = 64
    private static let bytesOffset = 72

    /// The page, or `nil` when the kernel cannot wipe it on `fork` (every nonce then a system call).
    private let page: UnsafeMutableRawPointer?
    /// Where refills read from: the kernel (``read(_:)``); tests give a source that counts.
    private let refill: @Sendable (UnsafeMutableRawBufferPointer) -> Void

    /// A source with a page of its own (tests make their own; the store uses ``shared``). `wipedOnFork: false`
    /// maps the page without `MADV_WIPEONFORK`, and `refill` replaces the kernel: only tests do either, to see a
    /// forked child hand out its parent's bytes then, and to follow each byte.
    init(
        wipedOnFork: Bool = true,
        refill: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Void = NonceSource.read
    ) {
        self.refill = refill
        page = Self.map(wipedOnFork: wipedOnFork)
    }

    deinit {
        if let page { munmap(page, Self.pageBytes) }
    }

    /// A zero-filled page for the lock, count and bytes, wiped in a forked child; `nil` where the kernel cannot
    /// wipe it.
    private static func map(wipedOnFork: Bool) -> UnsafeMutableRawPointer? {
        guard MemoryLayout<pthread_mutex_t>.size <= countOffset,
            let mapped = mmap(nil, pageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapped != MAP_FAILED
        else { return nil }
        if wipedOnFork {
            // An advice the kernel does not know must fail: then its success for MADV_WIPEONFORK means something.
            guard madvise(mapped, pageBytes, -1) != 0, madvise(mapped, pageBytes, MADV_WIPEONFORK) == 0 else {
                munmap(mapped, pageBytes)
                return nil
            }
        }
        // The lock's bytes are zero, as PTHREAD_MUTEX_INITIALIZER's are (glibc, musl): an unlocked mutex.
        mapped.bindMemory(to: pthread_mutex_t.self, capacity: 1)
        return mapped
    }

    /// Whether nonces come from the page (the kernel wipes it on `fork`), not from a system call each.
    var isBuffered: Bool { page != nil }

    /// Fills `bytes` (at most ``refillBytes``) with random bytes no other call of this process, or of a child it
    /// forks, is given. Should the kernel fail to give any, they come from `SystemRandomNumberGenerator`.
    func fill(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        guard let page, bytes.count <= Self.refillBytes else { return refill(bytes) }
        let lock = page.assumingMemoryBound(to: pthread_mutex_t.self)
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        var left = Int(page.load(fromByteOffset: Self.countOffset, as: UInt64.self))
        if left < bytes.count || left > Self.refillBytes {
            // A new page, one a fork wiped, or one whose last bytes are too few: refill it whole (the bytes too few
            // are never handed out).
            refill(UnsafeMutableRawBufferPointer(start: page + Self.bytesOffset, count: Self.refillBytes))
            left = Self.refillBytes
        }
        left -= bytes.count
        let taken = page + Self.bytesOffset + left
        base.copyMemory(from: taken, byteCount: bytes.count)
        // Bytes handed out do not stay in the page.
        taken.initializeMemory(as: UInt8.self, repeating: 0, count: bytes.count)
        page.storeBytes(of: UInt64(left), toByteOffset: Self.countOffset, as: UInt64.self)
    }

    /// Reads `bytes` (at most 256) from the kernel in one call, or, should that fail, from
    /// `SystemRandomNumberGenerator`.
    static func read(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        if getentropy(base, bytes.count) == 0 { return }
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
    }
}
#endif
