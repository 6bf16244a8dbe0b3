import Atomics
import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// The open connections, kept to ``ConnectionLimits/maxConnections``: a connection arriving at the cap
/// displaces the one that has waited longest without a request being answered, or is closed at once when
/// every open connection is answering one.
final class ConnectionRegistry: Sendable {
    /// One connection's standing, written by its own event loop and read here when choosing whom to close.
    final class Slot: Sendable {
        /// When (monotonic nanoseconds, from 1) the connection last became idle or began sending a head;
        /// 0 while a request is being read or answered, which makes it ineligible for eviction.
        let waitingSince = ManagedAtomic<UInt64>(0)

        func markWaiting(_ now: NIODeadline) {
            waitingSince.store(max(1, now.uptimeNanoseconds), ordering: .relaxed)
        }

        func markBusy() {
            waitingSince.store(0, ordering: .relaxed)
        }
    }

    private struct Entry {
        let channel: any Channel
        let slot: Slot
    }

    /// What ``admit(_:slot:)`` decided.
    enum Admission {
        case admitted
        case admittedClosing(any Channel)
        case refused
    }

    let maxConnections: Int
    private let open = NIOLockedValueBox<[ObjectIdentifier: Entry]>([:])

    init(maxConnections: Int) {
        self.maxConnections = maxConnections
    }

    /// Adds a new connection, making room for it when the registry is full.
    func admit(_ channel: any Channel, slot: Slot) -> Admission {
        let decision: Admission = open.withLockedValue { open in
            if open.count < maxConnections {
                open[ObjectIdentifier(channel)] = Entry(channel: channel, slot: slot)
                return .admitted
            }
            var victim: (key: ObjectIdentifier, since: UInt64)?
            for (key, entry) in open {
                let since = entry.slot.waitingSince.load(ordering: .relaxed)
                if since != 0 && since < (victim?.since ?? .max) { victim = (key, since) }
            }
            guard let victim, let evicted = open.removeValue(forKey: victim.key) else { return .refused }
            open[ObjectIdentifier(channel)] = Entry(channel: channel, slot: slot)
            return .admittedClosing(evicted.channel)
        }
        switch decision {
        case .admitted:
            break
        case .admittedClosing:
            Counter(label: "outpost_connections_closed_total", dimensions: [("reason", "evicted")]).increment()
        case .refused:
            Counter(label: "outpost_connections_closed_total", dimensions: [("reason", "refused")]).increment()
        }
        return decision
    }

    /// Forgets a closed connection.
    func remove(_ channel: any Channel) {
        open.withLockedValue { open in _ = open.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// How many connections are open.
    var count: Int { open.withLockedValue { $0.count } }
}
