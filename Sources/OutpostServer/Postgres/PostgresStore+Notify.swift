import Logging
import PostgresNIO

extension PostgresStore {
    /// Listens on ``feedChannel`` on one connection of the pool and calls `onGrowth` with each notification's
    /// practice id, until cancelled. A lost connection is reopened after a second; long polls that a notification
    /// missed in that gap end at their wait's end, and the device pulls again.
    public func watchFeeds(_ onGrowth: @escaping @Sendable (String) async -> Void) async throws {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.feedChannel) { notifications in
                        for try await notification in notifications { await onGrowth(notification.payload) }
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning(
                    "feed notifications lost; listening again",
                    metadata: ["error": "\(Self.describe(error))"]
                )
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
