import Logging
import ServiceLifecycle

/// Wakes this process's long polls when another process sharing the backend grows a practice's feed
/// (``SyncStorage/watchFeeds(_:)``: PostgreSQL's LISTEN/NOTIFY); runs until graceful shutdown.
struct FeedWatcher: Service {
    let store: any SyncStorage
    let notifier: FeedNotifier
    let logger: Logger

    func run() async throws {
        let notifier = notifier
        try await cancelWhenGracefulShutdown {
            try await store.watchFeeds { practice in await notifier.notify(practice) }
        }
        // A backend with nothing to watch returned at once: stay until the server stops.
        try? await gracefulShutdown()
    }
}
