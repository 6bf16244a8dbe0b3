import Logging

@testable import OutpostServer

extension ServerStore {
    /// The SQLite store in `directory` (created with `create`), logging only what is critical: tests read its
    /// results, not its log. With `foldingTails` false, tails are merged only when a test says so.
    static func quiet(_ directory: String, create: Bool = true, foldingTails: Bool = true) throws -> ServerStore {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try ServerStore(directory: directory, create: create, logger: logger, foldingTails: foldingTails)
    }
}
