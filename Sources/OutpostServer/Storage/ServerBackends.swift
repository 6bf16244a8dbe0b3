public import Logging

/// Opens the backend a server or an administration command runs on.
public enum ServerBackends {
    /// PostgreSQL at `databaseURL` when one is given (``PostgresLocation``), else SQLite in `directory`.
    ///
    /// - Parameters:
    ///   - create: whether a missing store is created (the server) or refused (an administration command): a
    ///     SQLite file, or a PostgreSQL database's tables (the database itself must exist).
    ///   - serving: whether the store serves syncs, so that a SQLite store merges record tails in the background
    ///     (``TailFolder``); an administration command beside a running server leaves that to the server.
    /// - Throws: ``ServerError`` when the URL is malformed or the store cannot be opened.
    public static func open(
        databaseURL: String?,
        directory: String,
        create: Bool,
        serving: Bool = false,
        logger: Logger
    ) async throws(ServerError) -> any ServerBackend {
        if let databaseURL, !databaseURL.isEmpty {
            return try await PostgresStore.open(try PostgresLocation(url: databaseURL), logger: logger, create: create)
        }
        return try ServerStore(directory: directory, create: create, logger: logger, foldingTails: serving)
    }
}
