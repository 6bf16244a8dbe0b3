import Foundation
import Logging
import Testing

@testable import OutpostServer

/// Several servers starting together on an empty store create one practice and one bootstrap admin token, not
/// one each: the check for an existing practice and the insert are one atomic step on every backend.
struct FirstStartTests {
    @Test(arguments: Backend.all)
    func serversStartingTogetherOnAnEmptyStoreCreateOnePractice(backend: Backend) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let folder = try TemporaryDirectory("outpost-first-start")
        let database = backend == .postgres ? try TestDatabase() : nil
        // One store per starting server on PostgreSQL (each process has its own pool); SQLite is one process's.
        var stores: [any ServerBackend] = []
        var closers: [@Sendable () -> Void] = []
        for _ in 0..<6 {
            if let database {
                let store = try await PostgresStore.open(try PostgresLocation(url: database.url), logger: logger)
                stores.append(store)
                closers.append { store.close() }
            } else if stores.isEmpty {
                stores.append(try ServerStore(directory: folder.path("data"), create: true, logger: logger))
            } else {
                stores.append(stores[0])
            }
        }
        defer { for close in closers { close() } }

        let directories = stores.indices.map { folder.path("server-\($0)") }
        let created = try await withThrowingTaskGroup(of: SyncServer.Bootstrap?.self) { group in
            for (index, store) in stores.enumerated() {
                group.addTask {
                    try await SyncServer.bootstrapIfNeeded(
                        store: store,
                        directory: directories[index],
                        practiceName: "Practice \(index)",
                        clock: OffsetWallClock(offsetMillis: 0)
                    )
                }
            }
            var created: [SyncServer.Bootstrap] = []
            for try await bootstrap in group { if let bootstrap { created.append(bootstrap) } }
            return created
        }

        #expect(created.count == 1)
        let practices = try await stores[0].practices()
        #expect(practices.map(\.id) == created.map(\.practice.id))
        #expect(try await stores[0].tokens(practice: nil).count == 1)
    }
}
