#if os(Linux)
import Crypto
import Foundation
import OutpostCRDT
import Synchronization
import Testing

@testable import OutpostClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The random bytes of an encrypted store's nonces on Linux (`NonceSource`): read from the kernel 21 nonces at a
/// time, each byte handed out once, in this process and in a child it forks (AES-GCM under one key must never see
/// a nonce twice).
///
/// These tests expect the kernel to wipe the page on `fork` (`MADV_WIPEONFORK`, Linux 4.14 and later, which every
/// machine that builds Outpost has): a source that fell back to a system call per nonce there would be a
/// regression, and they fail then rather than pass without testing the page.
struct NonceSourceTests {
    /// Twelve bytes from `source`, on the stack.
    private static func nonce(from source: NonceSource) -> [UInt8] {
        var bytes: (UInt64, UInt32) = (0, 0)
        withUnsafeMutableBytes(of: &bytes) { source.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<12])) }
        return withUnsafeBytes(of: bytes) { Array($0[0..<12]) }
    }

    /// Refills that write a running count, four bytes per number, so that every byte handed out can be traced to
    /// the refill and place it came from.
    private final class CountingRefills: Sendable {
        let numbers = Mutex<(next: UInt32, refills: Int)>((1, 0))

        func refill(_ bytes: UnsafeMutableRawBufferPointer) {
            numbers.withLock { state in
                state.refills += 1
                precondition(bytes.count % 4 == 0)
                for offset in stride(from: 0, to: bytes.count, by: 4) {
                    bytes.storeBytes(of: state.next.bigEndian, toByteOffset: offset, as: UInt32.self)
                    state.next += 1
                }
            }
        }
    }

    @Test func everyByteReadIsHandedOutOnceAndTheTooFewLeftAreNot() throws {
        let counting = CountingRefills()
        let source = NonceSource(refill: { counting.refill($0) })
        #expect(source.isBuffered)
        // Requests of mixed sizes, each a run of bytes from one refill, read from its end.
        var handedOut: [[UInt8]] = []
        for count in [12, 12, 5, 1, 252, 100, 12, 251, 3] + Array(repeating: 12, count: 40) {
            var buffer = [UInt8](repeating: 0, count: count)
            buffer.withUnsafeMutableBytes { source.fill($0) }
            handedOut.append(buffer)
        }
        // Where each request's bytes must come from: a refill's bytes are numbered on from the last refill's, and
        // a request takes the last bytes its refill still has; a request larger than what is left refills first.
        var left = 0
        var refillStart = 0
        var refills = 0
        for (index, bytes) in handedOut.enumerated() {
            if left < bytes.count {
                refillStart = refills * NonceSource.refillBytes
                refills += 1
                left = NonceSource.refillBytes
            }
            left -= bytes.count
            var expected = [UInt8]()
            for position in (refillStart + left)..<(refillStart + left + bytes.count) {
                let number = UInt32(position / 4 + 1).bigEndian
                expected.append(withUnsafeBytes(of: number) { $0[position % 4] })
            }
            #expect(bytes == expected, "request \(index) of \(bytes.count) bytes")
        }
        #expect(counting.numbers.withLock { $0.refills } == refills)
        // The requests spanned several refills, and one left bytes too few for the next request.
        #expect(refills == 6)
    }

    @Test func noNonceIsHandedOutTwice() throws {
        let source = NonceSource()
        #expect(source.isBuffered)
        // 10,000 nonces: 477 refills of the page from the kernel, each refill's nonces taken one by one.
        var seen = Set<[UInt8]>()
        for _ in 0..<10_000 { seen.insert(Self.nonce(from: source)) }
        #expect(seen.count == 10_000)
        #expect(!seen.contains([UInt8](repeating: 0, count: 12)))
    }

    @Test func theStoresSealsEachHaveANonceOfTheirOwn() throws {
        let cipher = StoreCipher(key: SymmetricKey(size: .bits256))
        let record = RecordRef(type: "task", id: "tsk_01JWMCKG2QYPGM5CV17B38YQ0Z")
        var nonces = Set<Data>()
        for _ in 0..<5_000 {
            let sealed = try cipher.seal([1, 2, 3], .state, of: record)
            nonces.insert(sealed.dropFirst(StoreCipher.marker.count).prefix(12))
        }
        #expect(nonces.count == 5_000)
        #expect(NonceSource.shared.isBuffered)
    }

    /// Two children forked after the parent drew a nonce: neither is handed the bytes the parent hands out next,
    /// nor the other's, nor zeros. With a page the kernel does not wipe on `fork` (`wipedOnFork: false`, which
    /// only tests make), each child is handed the parent's next bytes: the check that this test sees the hazard it
    /// guards against.
    @Test(arguments: [true, false])
    func forkedChildrenAreNotHandedTheBytesTheirParentHandsOutNext(wipedOnFork: Bool) throws {
        let source = NonceSource(wipedOnFork: wipedOnFork)
        #expect(source.isBuffered)
        // The page filled, with bytes left for the next nonces.
        _ = Self.nonce(from: source)
        let first = try Self.nonceOfAForkedChild(from: source)
        let second = try Self.nonceOfAForkedChild(from: source)
        let parents = Self.nonce(from: source)
        let zeros = [UInt8](repeating: 0, count: 12)
        #expect(first != zeros && second != zeros)
        if wipedOnFork {
            #expect(first != parents && second != parents && first != second)
        } else {
            #expect(first == parents && second == parents)
        }
    }

    /// Forks; the child draws a nonce from `source`, writes it to a pipe and exits. In the child only the source,
    /// a system call or two and `_exit` run: the parent's other threads (the other tests) may hold locks, such as
    /// the allocator's, that the child inherits held. The nonce drawn before the fork has set up what the draw
    /// needs, so the child allocates nothing.
    private static func nonceOfAForkedChild(from source: NonceSource) throws -> [UInt8] {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        let (reading, writing) = (ends[0], ends[1])
        defer { close(reading) }
        // Close-on-exec set after `pipe` (`pipe2` is not in Swift's Glibc module): a process spawned in between
        // would only make a child that wrote nothing fail after the poll's minute instead of at once.
        let closedOnExec = [reading, writing].allSatisfy { fcntl($0, F_SETFD, FD_CLOEXEC) == 0 }
        if !closedOnExec { close(writing) }
        try #require(closedOnExec)
        let child = fork()
        if child == 0 {
            var bytes: (UInt64, UInt32) = (0, 0)
            let written = withUnsafeMutableBytes(of: &bytes) { buffer in
                source.fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<12]))
                return write(writing, buffer.baseAddress, 12)
            }
            _exit(written == 12 ? 0 : 1)
        }
        close(writing)
        try #require(child > 0)
        // Waits at most a minute for the child's nonce (or its end): a child that hangs fails the test, not the
        // suite.
        var ready = pollfd(fd: reading, events: Int16(POLLIN), revents: 0)
        var polled: Int32
        repeat { polled = poll(&ready, 1, 60_000) } while polled == -1 && errno == EINTR
        if polled != 1 { kill(child, SIGKILL) }
        var status: Int32 = 0
        while waitpid(child, &status, 0) == -1 && errno == EINTR {}
        try #require(polled == 1, "the forked child wrote no nonce")
        var nonce = [UInt8](repeating: 0, count: 12)
        let count = nonce.withUnsafeMutableBytes { read(reading, $0.baseAddress, 12) }
        try #require(count == 12)
        // The child's exit status: it wrote all 12 bytes and exited normally.
        try #require(status == 0, "the forked child exited with status \(status)")
        return nonce
    }
}
#endif
