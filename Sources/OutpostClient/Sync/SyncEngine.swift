import Foundation
public import Logging
import OutpostCRDT
public import OutpostProtocol

/// What one sync moved.
public struct SyncReport: Sendable, Hashable {
    /// Local changes the server stored for the first time.
    public var pushed = 0
    /// Local changes the server already held (a retried push).
    public var pushedDuplicates = 0
    /// Changes received that were new here.
    public var pulled = 0
    /// Records merged from a snapshot (a first sync, or after the server lost this replica's checkpoint).
    public var snapshotRecords = 0
    /// Whether this sync bootstrapped from a snapshot.
    public var bootstrapped = false
    /// Pending changes re-stamped from the server's clock because this device's clock ran ahead.
    public var restamped = 0
    /// Conflicts that appeared with this sync.
    public var newConflicts = 0
    /// Conflicts this sync cleared.
    public var resolvedConflicts = 0
    /// Conflicts open after the sync.
    public var openConflicts = 0
    /// Local changes still waiting for the server.
    public var pending = 0
    /// Patients that left this device's scope and were removed from it (with the records they own).
    public var purged = 0

    /// Creates an empty report.
    public init() {}

    mutating func add(_ apply: ApplyReport) {
        newConflicts += apply.newConflicts
        resolvedConflicts += apply.resolvedConflicts
    }
}

/// Syncs one replica with its server: pushes the outbox, bootstraps when it has no checkpoint, pulls pages
/// until caught up, and (in ``watch(wait:onReport:)``) stays connected for live changes.
///
/// Every step is resumable: outbox entries are dropped only in the transaction that records the server's
/// acknowledgement, and each pulled page is applied in one transaction with its checkpoint. Transient
/// failures (no connection, `5xx`) are retried with exponential backoff; a refusal (`4xx`) is not, and is
/// reported with the server's code and message.
public actor SyncEngine {
    /// Tunables.
    public struct Options: Sendable {
        /// The most changes per push (the server's own limit applies too).
        public var pushBatch = 1_000
        /// The most changes or records per page.
        public var pageSize = 2_000
        /// How many times a transient failure is retried before giving up.
        public var retries = 5
        /// The first retry's delay; each further retry doubles it.
        public var backoff: Duration = .milliseconds(200)

        /// Creates the default options.
        public init() {}
    }

    let store: LocalStore
    let transport: any SyncTransport
    let options: Options
    let logger: Logger
    private var session: SessionInfo?

    /// Creates an engine over `store` talking through `transport`.
    public init(store: LocalStore, transport: any SyncTransport, options: Options = Options(), logger: Logger) {
        self.store = store
        self.transport = transport
        self.options = options
        self.logger = logger
    }

    /// Creates an engine for the store's configured server.
    ///
    /// - Throws: ``ClientError`` `noRemote` when the replica has no server.
    public init(store: LocalStore, options: Options = Options(), logger: Logger) throws(ClientError) {
        guard let remote = try store.remote() else {
            throw ClientError(
                code: .noRemote,
                message: "this replica has no server; set one with 'outpost remote set URL --token TOKEN'"
            )
        }
        self.init(
            store: store,
            transport: HTTPTransport(baseURL: remote.url, token: remote.token),
            options: options,
            logger: logger
        )
    }

    /// Asks the server who this token is and what it allows.
    public func fetchSession() async throws(ClientError) -> SessionInfo {
        let info: SessionInfo = try await exchange(TransportRequest(method: "GET", path: Wire.Path.session))
        guard info.protocolVersion == OutpostVersion.wireProtocol else {
            throw ClientError(
                code: .refused,
                message:
                    "the server speaks protocol \(info.protocolVersion), this client \(OutpostVersion.wireProtocol); "
                    + "update the older one"
            )
        }
        session = info
        try store.setSetting(Self.roleSetting, to: info.role.rawValue)
        return info
    }

    /// The setting holding the token's role, as the server last said.
    public static let roleSetting = "remote.role"
    /// The setting holding when the last sync started (milliseconds since 1970): conflicts detected since
    /// then are "new since the last sync".
    public static let syncStartedSetting = "sync.startedAt"

    /// Pushes the outbox, bootstraps if needed and pulls until caught up.
    public func sync() async throws(ClientError) -> SyncReport {
        var report = SyncReport()
        try store.setSetting(Self.syncStartedSetting, to: String(store.configuration.wallClock.nowMillis()))
        let session = try await fetchSession()
        try await pushAll(&report, session: session)
        if try store.checkpoint() == nil { try await bootstrap(&report, session: session) }
        try await pullAll(&report, session: session, wait: 0)
        try finish(&report)
        return report
    }

    /// Syncs, then keeps pulling with long polls of `wait` seconds (pushing new local edits between them)
    /// until the task is cancelled; calls `onReport` after every round that moved something.
    public func watch(wait: Int, onReport: @Sendable (SyncReport) -> Void) async throws(ClientError) {
        onReport(try await sync())
        let session = try await fetchSession()
        let wait = min(wait, session.limits.maxWaitSeconds)
        while !Task.isCancelled {
            var report = SyncReport()
            try await pushAll(&report, session: session)
            if try store.checkpoint() == nil { try await bootstrap(&report, session: session) }
            try await pullAll(&report, session: session, wait: wait)
            try finish(&report)
            if report.pushed + report.pulled + report.snapshotRecords > 0 { onReport(report) }
        }
    }

    private func finish(_ report: inout SyncReport) throws(ClientError) {
        try store.markSynced(atMillis: store.configuration.wallClock.nowMillis())
        let status = try store.status()
        report.openConflicts = status.openConflicts
        report.pending = status.pendingChanges
    }

    // MARK: - Steps

    private func pushAll(_ report: inout SyncReport, session: SessionInfo) async throws(ClientError) {
        let batch = max(1, min(options.pushBatch, session.limits.maxPushChanges))
        var restampedThisSync = false
        while true {
            let changes = try store.pendingChanges(limit: batch)
            if changes.isEmpty { return }
            let body = try encode(PushRequest(replica: store.replicaID, changes: changes))
            do throws(ClientError) {
                let response: PushResponse = try await exchange(
                    TransportRequest(method: "POST", path: Wire.Path.push, body: body)
                )
                try store.acknowledge(upTo: response.acknowledged)
                report.pushed += response.accepted
                report.pushedDuplicates += response.duplicates
                guard response.acknowledged >= changes.last?.id.counter ?? 0 else {
                    throw ClientError(
                        code: .refused,
                        message: "the server acknowledged up to \(response.acknowledged) of a push that ended at "
                            + "\(changes.last?.id.counter ?? 0); the outbox is kept, sync again later"
                    )
                }
            } catch let error where error.serverCode == ErrorCode.clockSkew.rawValue && !restampedThisSync {
                // This device's clock runs ahead: re-stamp what the server refused from its clock, push again.
                let now = try await fetchSession()
                let count = try store.restampPending(
                    serverMillis: now.serverTimeMillis,
                    maxSkewMillis: now.maxClockSkewMillis
                )
                logger.warning(
                    "device clock ahead of the server; re-stamped pending changes",
                    metadata: ["count": "\(count)"]
                )
                report.restamped += count
                restampedThisSync = true
                if count == 0 { throw error }
            }
        }
    }

    private func bootstrap(_ report: inout SyncReport, session: SessionInfo) async throws(ClientError) {
        let limit = max(1, min(options.pageSize, session.limits.maxPageSize))
        var cursor: String?
        var checkpoint: String?
        repeat {
            var query = [("limit", String(limit)), ("replica", store.replicaID.rawValue)]
            if let cursor { query.append(("after", cursor)) }
            let page: SnapshotPage = try await exchange(
                TransportRequest(method: "GET", path: Wire.Path.snapshot, query: query)
            )
            checkpoint = checkpoint ?? page.checkpoint
            // The checkpoint is saved with the last page only: an interrupted bootstrap starts over, and
            // merging a page twice is harmless.
            let applied = try store.applySnapshot(page.records, checkpoint: page.next == nil ? checkpoint : nil)
            report.snapshotRecords += applied.applied
            report.add(applied)
            cursor = page.next
        } while cursor != nil
        report.bootstrapped = true
    }

    private func pullAll(_ report: inout SyncReport, session: SessionInfo, wait: Int) async throws(ClientError) {
        let limit = max(1, min(options.pageSize, session.limits.maxPageSize))
        var wait = wait
        while true {
            let since = try store.checkpoint() ?? "0"
            let page: PullResponse
            do throws(ClientError) {
                var query = [("since", since), ("limit", String(limit)), ("replica", store.replicaID.rawValue)]
                if wait > 0 { query.append(("wait", String(wait))) }
                page = try await exchange(
                    TransportRequest(method: "GET", path: Wire.Path.changes, query: query, timeout: Double(wait + 30))
                )
            } catch let error where error.serverCode == ErrorCode.checkpointExpired.rawValue {
                logger.warning("the server cannot serve this replica's checkpoint; bootstrapping again")
                try store.forgetCheckpoint()
                try await bootstrap(&report, session: session)
                continue
            }
            let applied = try store.applyPage(
                changes: page.changes,
                records: page.records,
                removed: page.removed,
                checkpoint: page.checkpoint
            )
            report.pulled += applied.applied
            report.purged += page.removed.count
            report.add(applied)
            wait = 0
            if !page.hasMore { return }
        }
    }

    // MARK: - HTTP

    private func encode(_ message: some Encodable) throws(ClientError) -> Data {
        do {
            return try Wire.makeEncoder().encode(message)
        } catch {
            throw ClientError(code: .storage, message: "cannot encode a sync message: \(error)")
        }
    }

    /// Sends a request, retrying transient failures with backoff, and decodes a `2xx` answer.
    private func exchange<T: Decodable>(_ request: TransportRequest) async throws(ClientError) -> T {
        var attempt = 0
        while true {
            let outcome: Result<TransportResponse, any Error>
            do {
                outcome = .success(try await transport.send(request))
            } catch {
                outcome = .failure(error)
            }
            switch outcome {
            case .success(let response) where (200..<300).contains(response.status):
                do {
                    return try Wire.makeDecoder().decode(T.self, from: response.body)
                } catch {
                    throw ClientError(
                        code: .refused,
                        message:
                            "the server's answer to \(request.path) could not be read; is the URL an Outpost server?",
                        cause: error
                    )
                }
            case .success(let response) where response.status < 500:
                throw refusal(response, path: request.path)
            case .success(let response):
                if attempt >= options.retries { throw refusal(response, path: request.path) }
            case .failure(let error):
                if Task.isCancelled {
                    throw ClientError(code: .unreachable, message: "sync cancelled; nothing was lost", cause: error)
                }
                if attempt >= options.retries {
                    throw ClientError(
                        code: .unreachable,
                        message: "cannot reach the server (\(error.localizedDescription)); your changes are kept "
                            + "and will be sent on the next sync",
                        cause: error
                    )
                }
            }
            attempt += 1
            logger.info("retrying", metadata: ["path": "\(request.path)", "attempt": "\(attempt)"])
            try? await Task.sleep(for: options.backoff * (1 << min(attempt - 1, 6)))
        }
    }

    private func refusal(_ response: TransportResponse, path: String) -> ClientError {
        let body = try? Wire.makeDecoder().decode(ErrorBody.self, from: response.body)
        let message = body?.error.message ?? "HTTP \(response.status)"
        let code = body?.error.code.rawValue
        if response.status == 401 {
            return ClientError(
                code: .unauthorized,
                message: "the server refused this device's token: \(message); local data and the outbox are kept",
                serverCode: code
            )
        }
        if response.status >= 500 {
            return ClientError(
                code: .unreachable,
                message:
                    "the server kept failing (\(message)); your changes are kept and will be sent on the next sync",
                serverCode: code
            )
        }
        return ClientError(code: .refused, message: "the server refused \(path): \(message)", serverCode: code)
    }
}
