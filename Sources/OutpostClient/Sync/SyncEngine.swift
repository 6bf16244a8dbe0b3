import Foundation
public import Logging
import OutpostCRDT
public import OutpostProtocol

/// What one sync moved; `outpost sync --json` prints it as it is (Encodable: its fields are the output's keys).
public struct SyncReport: Sendable, Hashable, Encodable {
    /// Local changes the server stored for the first time.
    public var pushed = 0
    /// Local changes the server already held (a retried push).
    public var pushedDuplicates = 0
    /// Local changes to patients a legal purge erased on the server (made before this device heard of the purge):
    /// the server acknowledged them and did not store them, and the patient is removed here.
    public var erased = 0
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
    /// Local changes the server refused in this sync (each held aside: ``LocalStore/refusedChanges(includingDiscarded:)``).
    public var refused = 0
    /// Refused changes held aside (or marked for retry) after the sync, from this sync or earlier ones.
    public var heldAside = 0
    /// Patients that left this device's scope, or were purged, and were removed from it (with the records they
    /// own); a patient it did not hold is not counted.
    public var purged = 0
    /// Whether the server was found in a new epoch (restored from a backup): this device bootstrapped again and
    /// put back in its outbox its changes the server lacked (``resent``).
    public var serverRestored = false
    /// Local changes put back in the outbox because the restored server lacked them.
    public var resent = 0
    /// Said once when this device's clock is found (or no longer found) too far from the server's: for
    /// example "this device's clock is 365 days behind the server's; stamping edits with the server's time".
    public var clockNotice: String?

    /// Creates an empty report.
    public init() {}

    mutating func add(_ apply: ApplyReport) {
        newConflicts += apply.newConflicts
        resolvedConflicts += apply.resolvedConflicts
    }

    /// Adds what a pull made beside this report's push (pages pulled, patients purged, conflicts).
    mutating func addPull(_ pull: SyncReport) {
        pulled += pull.pulled
        purged += pull.purged
        newConflicts += pull.newConflicts
        resolvedConflicts += pull.resolvedConflicts
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
        public var pushBatch = 5_000
        /// The most records per snapshot page (the server's own limit applies too). A bootstrap holds three such
        /// pages at once (one written, the two after it asked for, decoded and prepared) and up to two written
        /// ones waiting to be freed, so this bounds a new device's memory.
        public var pageSize = 2_000
        /// The most changes per pull page (the server's own limit applies too). Each page is a transaction and a
        /// round trip; a page of changes is small beside a page of whole records, so pulls take the server's
        /// largest page.
        public var pullPageSize = 5_000
        /// How many times a transient failure is retried before giving up.
        public var retries = 5
        /// The first retry's delay; each further retry doubles it.
        public var backoff: Duration = .milliseconds(200)
        /// How pushes are sent and pull and snapshot pages asked for: binary unless the environment variable
        /// `OUTPOST_SYNC_ENCODING` is `json` (for debugging with a proxy that shows JSON).
        public var encoding: Encoding
        /// Whether pushes of at least ``WireCompression/threshold`` bytes are gzip-compressed and pull and
        /// snapshot pages asked for compressed: yes unless `OUTPOST_SYNC_COMPRESSION` is `off`.
        public var compression: Bool
        /// The largest page or answer accepted once inflated.
        public var maxAnswerBytes = 1 << 30
        /// Whether a sync overlaps its steps (on by default; off only to measure what it saves:
        /// `outpost-bench sync --pipeline off`): the next push of a multi-batch sync is read and encoded while the
        /// server stores the previous one, and the next pull page is asked for while this one is written.
        public var pipelining = true
        /// The smallest outbox a replica of the whole practice pulls beside (with ``pipelining``): a smaller push
        /// is stored in about a round trip, so pulling beside it would save nothing and cost the pull after it.
        public var pullBesidePushFrom = 1_000
        /// The newest binary layout this device writes and asks for (``BinaryWire/layouts``): the newest unless
        /// `OUTPOST_SYNC_BINARY_LAYOUT` names an older one (to measure what a layout saves). Pushes use the
        /// newest the server also reads (``SessionInfo/binaryLayout``); pages come in what the server writes.
        public var binaryLayout = BinaryWire.latestLayout
        /// Whether pushes in layout 3 name by abbreviation the records the server holds (``RecordAbbreviation``):
        /// on, unless the server refused a push so (`unresolved_records`) earlier in the same pass of pushes.
        public var abbreviatesPushes = true
        /// Called, on the engine, after each push the server answered and each snapshot or pull page written, with
        /// how far the sync has come (``SyncProgress``, counted from the start of ``SyncEngine/sync()``, or of
        /// ``SyncEngine/watch(wait:onReport:)``'s first sync): what a terminal or an app shows while a sync on a
        /// slow link runs for minutes. Keep it quick.
        public var progress: (@Sendable (SyncProgress) -> Void)?
        /// Called before each retry of a transient failure (``SyncRetry``), so that a caller can tell its user
        /// why a sync waits: a server that never answers takes ``requestTimeout`` seconds an attempt, and
        /// ``retries`` attempts more. Keep it quick.
        public var retrying: (@Sendable (SyncRetry) -> Void)?
        /// How long a request waits for a whole answer, in seconds (a long poll waits its `wait` more): 30, or
        /// the environment variable `OUTPOST_SYNC_TIMEOUT` (1 to 3,600) for a link slower than a page in 30 s.
        public var requestTimeout: Double = 30

        /// Creates the default options.
        public init() {
            let environment = ProcessInfo.processInfo.environment
            encoding = environment["OUTPOST_SYNC_ENCODING"] == "json" ? .json : .binary
            if let layout = environment["OUTPOST_SYNC_BINARY_LAYOUT"].flatMap(UInt8.init),
                BinaryWire.layouts.contains(layout)
            {
                binaryLayout = layout
            }
            compression = environment["OUTPOST_SYNC_COMPRESSION"] != "off"
            if let seconds = environment["OUTPOST_SYNC_TIMEOUT"].flatMap(Self.requestTimeout(from:)) {
                requestTimeout = seconds
            }
        }

        /// The request timeout `text` names (`OUTPOST_SYNC_TIMEOUT`): a whole number of seconds from 1 to 3,600, or
        /// `nil` for anything else (the default then applies; the CLI refuses it).
        public static func requestTimeout(from text: String) -> Double? {
            guard let seconds = Int(text), (1...3_600).contains(seconds) else { return nil }
            return Double(seconds)
        }
    }

    /// The encoding of the heavy messages (pushes, pull pages, snapshot pages); small ones are always JSON.
    public enum Encoding: String, Sendable, Hashable, CaseIterable {
        /// `application/json`, the protocol's default.
        case json
        /// `application/vnd.outpost.v1+binary` (``BinaryWire``): several times smaller.
        case binary
    }

    let store: LocalStore
    let transport: any SyncTransport
    let options: Options
    let logger: Logger
    private var session: SessionInfo?
    private var clockNotice: String?
    /// The outbox's size as this sync last knew it, reported to the server with pushes and pulls
    /// (``Wire/outboxHeader``) for its replication-health listing.
    private var outbox: Int?
    /// The server epoch this replica syncs in, sent with pulls and snapshot pages (``Wire/epochHeader``).
    private var epoch: String?
    /// The refused changes held aside as this sync last knew them (``Wire/refusedHeader``).
    private var refusedHeld: Int?
    /// Whether a page written since the last push removed patients this device held: their pending edits (made
    /// after the push before the removal, while the page was on its way) are pushed before the next pull, which the
    /// server takes as the removal applied and after which it refuses them as out of scope.
    private var removedSincePush = false
    /// Whether the server's pages say which removed patients left the scope (``PullResponse/leftScope``): the
    /// store then keeps this replica's edits to those and drops everything of the others (purges); otherwise
    /// nothing is kept or dropped besides the records (``namesLeavers(session:options:)``).
    private var namesLeavers = false
    /// How far the running ``sync()`` has come, reported through ``Options/progress``.
    private var progress = SyncProgress(step: .push)
    /// Where pages are written: a page's transaction may wait for SQLite's write lock (another process using the
    /// store), and a thread of Swift's cooperative pool blocked on it would starve the tasks asking for and
    /// preparing the next page.
    private let writer = DispatchQueue(label: "outpost.sync.writer")

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
            transport: HTTPTransport(
                baseURL: remote.url,
                token: remote.token,
                trustedCertificates: try store.trustedCertificates()
            ),
            options: options,
            logger: logger
        )
    }

    /// Asks the server who this token is and what it allows.
    public func fetchSession() async throws(ClientError) -> SessionInfo {
        let wall = store.configuration.wallClock
        let sent = wall.nowMillis()
        let info: SessionInfo = try await exchange(
            TransportRequest(method: "GET", path: Wire.Path.session, timeout: options.requestTimeout)
        )
        let received = wall.nowMillis()
        guard info.protocolVersion == OutpostVersion.wireProtocol else {
            // Read beside the first request no more: the next sync reads the session first, and stops there.
            try? store.setSetting(LocalStore.sessionSetting, to: nil)
            throw ClientError(
                code: .refused,
                message:
                    "the server speaks protocol \(info.protocolVersion), this client \(OutpostVersion.wireProtocol); "
                    + "update the older one"
            )
        }
        session = info
        try learnClock(from: info, sent: sent, received: received)
        try Self.remember(info, in: store)
        return info
    }

    /// Keeps what a session said in `store` (``keptSession(in:)``), for the next sync to read the session beside its
    /// first push or pull, and for the replica to act on between syncs: the token's role (``roleSetting``), and the
    /// person it is issued to, who then signs the replica's edits (``CareStore/SettingKey/person``: the server
    /// refuses another author from such a token). Written only when it changed: a session read beside a sync's first
    /// request writes nothing while the sync's pages are written.
    public static func remember(_ info: SessionInfo, in store: LocalStore) throws(ClientError) {
        if try store.setting(roleSetting) != info.role.rawValue {
            try store.setSetting(roleSetting, to: info.role.rawValue)
        }
        if let person = info.person {
            if try store.setting(CareStore.SettingKey.person) != person {
                try store.setSetting(CareStore.SettingKey.person, to: person)
            }
            if try store.setting(CareStore.SettingKey.tokenPerson) != person {
                try store.setSetting(CareStore.SettingKey.tokenPerson, to: person)
            }
        } else if let adopted = try store.setting(CareStore.SettingKey.tokenPerson) {
            // A token issued to no one: the person an earlier token gave no longer signs (one chosen with `outpost
            // use` since would have cleared the adoption).
            if try store.setting(CareStore.SettingKey.person) == adopted {
                try store.setSetting(CareStore.SettingKey.person, to: nil)
            }
            try store.setSetting(CareStore.SettingKey.tokenPerson, to: nil)
        }
        var kept = info
        kept.serverTimeMillis = 0
        guard kept != (try keptSession(in: store)) else { return }
        do {
            let text = String(decoding: try Wire.makeEncoder().encode(kept), as: UTF8.self)
            try store.setSetting(LocalStore.sessionSetting, to: text)
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError(code: .storage, message: "cannot encode the server's session: \(error)")
        }
    }

    /// ``fetchSession()``'s outcome as a value.
    private func sessionOutcome() async -> Result<SessionInfo, ClientError> {
        do throws(ClientError) {
            return .success(try await fetchSession())
        } catch {
            return .failure(error)
        }
    }

    /// What the last session with this server said (its clock left out), if it is kept and readable.
    private func keptSession() throws(ClientError) -> SessionInfo? {
        try Self.keptSession(in: store)
    }

    /// What the last session of `store`'s replica with its server said (its clock left out: its token's role and
    /// scope), if it is kept and readable; `nil` before a first session, or after the server or token changed.
    public static func keptSession(in store: LocalStore) throws(ClientError) -> SessionInfo? {
        guard let text = try store.setting(LocalStore.sessionSetting) else { return nil }
        return try? Wire.makeDecoder().decode(SessionInfo.self, from: Data(text.utf8))
    }

    /// Offsets below this are taken as agreement: the measurement's own error is about a round trip.
    static let clockTolerance: Int64 = 2_000

    /// Keeps the offset between this device's wall clock and the server's, as measured by one session
    /// exchange (the server read its clock between `sent` and `received`), and notes when it crosses the
    /// server's skew bound or moves by more than it.
    private func learnClock(from info: SessionInfo, sent: UInt64, received: UInt64) throws(ClientError) {
        let middle = Int64(clamping: sent / 2 + received / 2)
        let uncertainty = Int64(clamping: received >= sent ? (received - sent) / 2 : 0)
        let measured = Int64(clamping: info.serverTimeMillis) - middle
        let threshold = UInt64(max(Self.clockTolerance, uncertainty))
        let offset = measured.magnitude <= threshold ? 0 : measured
        let previous = try store.clockOffsetMillis()
        // Within the measurement's error of what is kept: keep it (no write, no jitter in stamps).
        guard (offset - previous).magnitude > threshold else { return }
        try store.setClockOffset(millis: offset)
        let bound = Int64(clamping: info.maxClockSkewMillis)
        let wasSkewed = previous.magnitude > bound.magnitude
        let isSkewed = offset.magnitude > bound.magnitude
        if isSkewed && (!wasSkewed || (offset - previous).magnitude > bound.magnitude) {
            clockNotice =
                "this device's clock is \(Self.describe(offset.magnitude)) \(offset > 0 ? "behind" : "ahead of") "
                + "the server's; stamping edits with the server's time (set the device's clock to fix it)"
        } else if wasSkewed && !isSkewed {
            clockNotice = "this device's clock now agrees with the server's"
        }
        logger.info("clock offset to the server", metadata: ["offsetMillis": "\(offset)"])
    }

    /// A duration in the largest whole unit that fits: "365 days", "3 hours", "7 minutes", "12 seconds".
    static func describe(_ millis: UInt64) -> String {
        let seconds = (millis + 500) / 1000
        let (size, unit): (UInt64, String) =
            seconds >= 86_400
            ? (86_400, "day") : seconds >= 3_600 ? (3_600, "hour") : seconds >= 60 ? (60, "minute") : (1, "second")
        let value = (seconds + size / 2) / size
        return "\(value) \(unit)\(value == 1 ? "" : "s")"
    }

    /// The setting holding the token's role, as the server last said.
    public static let roleSetting = "remote.role"
    /// The setting holding when the last sync started (milliseconds since 1970): conflicts detected since
    /// then are "new since the last sync".
    public static let syncStartedSetting = "sync.startedAt"

    /// Pushes the outbox, bootstraps if needed and pulls until caught up.
    ///
    /// A replica that synced with this server before, in its current epoch, with a checkpoint, reads the session
    /// beside its first push or pull instead of before it, with what the last session said (kept in the store): a
    /// round trip less on a slow link. The server judges every push and pull by the token as it is now, and
    /// refuses a push or a pull of another epoch (`410 checkpoint_expired`, after a restore), which the sync
    /// handles as when it reads the session first; a session that refuses the sync (a token revoked, another
    /// protocol, found once the first requests have gone out) fails it, and so does one that cannot be read.
    public func sync() async throws(ClientError) -> SyncReport {
        var report = SyncReport()
        progress = SyncProgress(step: .push)
        let (knownEpoch, checkpoint) = (try store.serverEpoch(), try store.checkpoint())
        let kept = options.pipelining && checkpoint != nil && knownEpoch != nil ? try keptSession() : nil
        let beside = kept?.epoch == knownEpoch ? kept : nil
        async let reading: Result<SessionInfo, ClientError>? = beside == nil ? nil : sessionOutcome()
        let session: SessionInfo
        var sparingOwn = false
        if let beside {
            session = beside
            epoch = knownEpoch
        } else {
            session = try await fetchSession()
            // This replica's first sync with a server: it holds every change it ever wrote (nothing it wrote was
            // ever purged or lost by a restore), so its bootstrap may leave out the records only it wrote. A new
            // device holding no record has nothing to leave out, and asks for the practice's pages as any device
            // may be sent them (the server keeps those for the next device: docs/sync.md, "Snapshot pages kept").
            if session.epoch != nil, knownEpoch == nil, checkpoint == nil { sparingOwn = !(try store.isEmpty()) }
        }
        // Read through the clock offset the session corrected: this one's, or, beside it, the last one's.
        try store.setSetting(Self.syncStartedSetting, to: String(try store.now()))
        if beside == nil { try await adoptEpoch(of: session, &report) }
        var failure: ClientError?
        do throws(ClientError) {
            try await pushAndPull(&report, session: session, wait: 0, sparingOwn: sparingOwn)
        } catch {
            failure = error
        }
        var current = session
        if let read = await reading {
            if let failure { throw failure }
            current = try read.get()
            // A restore neither the push nor the pull met (both are refused in another epoch, so this is a guard);
            // not when one of them adopted a new epoch meanwhile, after this session was read.
            if current.epoch != knownEpoch, try store.serverEpoch() == knownEpoch {
                try await adoptEpoch(of: current, &report)
            }
        } else if let failure {
            throw failure
        }
        if report.serverRestored, try store.pendingCount() > 0 {
            // What a restore met on the way put back in the outbox (a pull refused in another epoch adopts the new
            // one and bootstraps, but pushes nothing) is pushed in this sync.
            try await pushAndPull(&report, session: current, wait: 0)
        }
        try finish(&report)
        return report
    }

    /// Syncs, then keeps pulling with long polls of `wait` seconds (pushing new local edits between them)
    /// until the task is cancelled; calls `onReport` after every round that moved something.
    public func watch(wait: Int, onReport: @Sendable (SyncReport) -> Void) async throws(ClientError) {
        onReport(try await sync())
        // The session the sync read (beside its first request, or before it).
        let session: SessionInfo
        if let read = self.session { session = read } else { session = try await fetchSession() }
        let wait = min(wait, session.limits.maxWaitSeconds)
        while !Task.isCancelled {
            var report = SyncReport()
            try await pushAndPull(&report, session: session, wait: wait)
            try finish(&report)
            if report.pushed + report.pulled + report.snapshotRecords + report.refused > 0 || report.clockNotice != nil
            {
                onReport(report)
            }
        }
    }

    private func finish(_ report: inout SyncReport) throws(ClientError) {
        try store.markSynced(atMillis: try store.now())
        report.clockNotice = clockNotice
        clockNotice = nil
        let status = try store.status()
        report.openConflicts = status.openConflicts
        report.pending = status.pendingChanges
        report.heldAside = status.refusedChanges
    }

    // MARK: - Steps

    /// Pushes the outbox and pulls until caught up (long-polling `wait` seconds when nothing is new).
    ///
    /// A replica of the whole practice with a checkpoint and an outbox of at least ``Options/pullBesidePushFrom``
    /// changes does both at once (with ``Options/pipelining``): a pull asks only for other replicas' changes (the
    /// server never sends a replica its own), so it need not wait for the push, and the device writes the pulled
    /// pages while the server stores its pushes. Each still writes in its own transactions (pushes acknowledged,
    /// pages applied with their checkpoints), so either may fail or be killed without the other losing anything.
    /// Once both are done it pulls once more, alone: a page that removes patients and an expired checkpoint are
    /// left to that pull (``pullAll(_:session:wait:besidePush:)``).
    ///
    /// A scoped token's push comes first: the server accepts its edits to a patient that just left its scope
    /// until a pull tells the device to remove that patient, so the edits made while the patient was in scope
    /// must reach the server before that pull. Without a checkpoint the push also comes first, and the bootstrap
    /// after it: a first sync's snapshot leaves out what that push stored (`sparingOwn`).
    ///
    /// A push refused because the server was restored from a backup since `session` was read (between the session
    /// and the push, or during ``watch(wait:onReport:)``, which reads the session once) stored nothing: the session
    /// is read again, its new epoch puts back in the outbox what the server lacks, and the push, a bootstrap and
    /// the pull run again. Stored, that push would have hidden what the backup lacks below it (protocol/README.md,
    /// "Epochs").
    private func pushAndPull(
        _ report: inout SyncReport,
        session: SessionInfo,
        wait: Int,
        sparingOwn: Bool = false
    ) async throws(ClientError) {
        namesLeavers = Self.namesLeavers(session: session, options: options)
        do throws(ClientError) {
            try await pushAndPullOnce(&report, session: session, wait: wait, sparingOwn: sparingOwn)
        } catch  where error.cause is PushMetAnotherEpoch {
            logger.warning("the server was restored from a backup since this sync began; reading its session again")
            let current = try await readSessionAdoptingEpoch(&report)
            try await pushAndPullOnce(&report, session: current, wait: wait, sparingOwn: false)
        }
    }

    /// ``pushAndPull(_:session:wait:sparingOwn:)`` in the epoch of `session`.
    private func pushAndPullOnce(
        _ report: inout SyncReport,
        session: SessionInfo,
        wait: Int,
        sparingOwn: Bool
    ) async throws(ClientError) {
        guard options.pipelining, session.scope.isWholePractice, try store.checkpoint() != nil,
            try store.pendingCount() >= options.pullBesidePushFrom
        else {
            try await pushAll(&report, session: session)
            if try store.checkpoint() == nil { try await bootstrap(&report, session: session, sparingOwn: sparingOwn) }
            try await pullAll(&report, session: session, wait: wait)
            return
        }
        async let pulling = pulledBesidePush(session: session)
        var failure: ClientError?
        do throws(ClientError) {
            try await pushAll(&report, session: session)
        } catch {
            failure = error
        }
        let (pulled, pullFailure) = await pulling
        report.addPull(pulled)
        if let failure = failure ?? pullFailure { throw failure }
        // One more pull, usually empty (and the round's long poll in `watch`): it applies what the pull beside the
        // push left to it (a removal, an expired checkpoint), and tells the server where the device stands, as
        // the pull's last request may have gone out before the push was answered (the server would count the
        // device as holding a checkpoint before its own changes, holding compaction back, and its outbox as it
        // was before the push).
        try await pullAll(&report, session: session, wait: wait)
    }

    /// ``pullAll(_:session:wait:besidePush:)`` beside a push, without waiting for new changes: its own report
    /// (pages applied before a failure included) and its failure.
    private func pulledBesidePush(session: SessionInfo) async -> (SyncReport, ClientError?) {
        var pulled = SyncReport()
        do throws(ClientError) {
            try await pullAll(&pulled, session: session, wait: 0, besidePush: true)
            return (pulled, nil)
        } catch {
            return (pulled, error)
        }
    }

    /// One push, read from the store and encoded, ready to send.
    struct PreparedPush: Sendable {
        /// The changes it carries, in counter order.
        var changes: [Change]
        /// How many of them are refused changes sent again (they come first).
        var retries: Int
        /// The encoded (and maybe compressed) body.
        var body: Data
        /// Its `Content-Encoding`, when compressed.
        var coding: String?
        /// Whether outbox changes follow it (then the next push can be read while this one is stored).
        var more: Bool = false
    }

    /// Reads the next push from `store` (the refused changes marked for retry first, then the outbox, or with
    /// `after` only outbox changes numbered above it) and encodes it; `nil` when there is nothing to send.
    static func preparePush(
        store: LocalStore,
        options: Options,
        batch: Int,
        after: UInt64? = nil
    ) throws(ClientError) -> PreparedPush? {
        let retries = after == nil ? Array(try store.retryingChanges().prefix(batch)) : []
        // A batch does not end inside a new record's creation where it can
        // (``LocalStore/pendingBatch(after:limit:wholeRecords:beginsPush:)``). With retries filling the push, `more`
        // is not read: a push that retries is not pipelined.
        let pending =
            retries.count < batch
            ? try store.pendingBatch(
                after: after,
                limit: batch - retries.count,
                wholeRecords: true,
                beginsPush: retries.isEmpty
            )
            : (changes: [], unsent: [], more: true)
        let changes = retries + pending.changes
        if changes.isEmpty { return nil }
        let push = PushRequest(replica: store.replicaID, changes: changes)
        var body: Data
        if options.encoding == .binary {
            // Layout 3: every record but those the server may not hold yet (created by this batch, or named by a
            // change held aside after a refusal) by abbreviation.
            let unsent = pending.unsent.union(retries.map(\.record))
            let abbreviating = options.abbreviatesPushes
            body = Data(push.binaryEncoded(layout: options.binaryLayout) { abbreviating && !unsent.contains($0) })
        } else {
            do {
                body = try Wire.makeEncoder().encode(push)
            } catch {
                throw ClientError(code: .storage, message: "cannot encode a sync message: \(error)")
            }
        }
        var coding: String?
        if options.compression { (body, coding) = WireCompression.compressIfLarge(body) }
        return PreparedPush(changes: changes, retries: retries.count, body: body, coding: coding, more: pending.more)
    }

    private func pushAll(_ report: inout SyncReport, session: SessionInfo) async throws(ClientError) {
        let batch = max(1, min(options.pushBatch, session.limits.maxPushChanges))
        // Pushes in the newest layout both sides know.
        var options = options
        options.binaryLayout = Self.pushLayout(mine: options.binaryLayout, server: session.binaryLayout)
        var restampedThisSync = false
        removedSincePush = false
        outbox = try store.pendingCount()
        refusedHeld = try store.refusedCount()
        progress.toPush = progress.pushed + (outbox ?? 0) + (try store.retryingCount())
        var prepared: PreparedPush?
        // Pipelined: the answer to the push before this one, recorded on the writer's queue while this one is sent
        // and stored. Every path that reads or rewrites the outbox, or leaves, waits for it first.
        var recording: Recording?
        while true {
            let upcoming: PreparedPush?
            if let prepared {
                upcoming = prepared
            } else {
                try await finish(&recording, &report)
                upcoming = try Self.preparePush(store: store, options: options, batch: batch)
            }
            guard let push = upcoming else { return }
            prepared = nil
            let changes = push.changes
            let retries = push.retries
            let binary = options.encoding == .binary
            // Pipelining: while the server stores this push, the next one is read and encoded (outbox changes
            // numbered above this push's; a push that retries refused changes is not overlapped). It is used once
            // this push's answer is checked; if this push fails, it is dropped and read again.
            let next: Task<Result<PreparedPush?, ClientError>, Never>? =
                options.pipelining && retries == 0 && push.more
                ? Task.detached { [store, options] in
                    Result { () throws(ClientError) in
                        try Self.preparePush(
                            store: store,
                            options: options,
                            batch: batch,
                            after: changes.last?.id.counter
                        )
                    }
                } : nil
            do throws(ClientError) {
                var request = TransportRequest(
                    method: "POST",
                    path: Wire.Path.push,
                    body: push.body,
                    contentType: binary ? BinaryWire.contentType : Wire.contentType,
                    contentEncoding: push.coding,
                    timeout: options.requestTimeout
                )
                request.headers = deviceHeaders
                // Per-change refusals: a change the server refuses on its own is held aside, the rest is stored.
                request.headers[Wire.refusalsHeader] = Wire.refusalsPerChange
                let response: PushResponse
                do throws(ClientError) {
                    response = try await exchange(request)
                } catch {
                    try await finish(&recording, &report)
                    throw error
                }
                // The answer before this one had this push's round trip to be recorded; waiting for it before this
                // one is recorded keeps their order on the writer's queue.
                try await finish(&recording, &report)
                let refusedIDs = Set(response.refused.map(\.id))
                let held =
                    changes.lazy.filter { refusedIDs.isEmpty || !refusedIDs.contains($0.id) }.map(\.id.counter).max()
                    ?? 0
                // Written on the writer's queue: a page pulled beside this push may hold the store's write lock.
                guard response.acknowledged >= held else {
                    let upTo = Self.acknowledgedBeforeRefusals(response)
                    try await written { [store] () throws(ClientError) in try store.acknowledge(upTo: upTo) }
                    throw ClientError(
                        code: .refused,
                        message: "the server acknowledged up to \(response.acknowledged) of a push that ended at "
                            + "\(changes.last?.id.counter ?? 0); the outbox is kept, sync again later"
                    )
                }
                // Recorded while the next push is sent: the next one holds only changes numbered above this one's,
                // and a sync killed before the record sends this one again (the server counts what it stored
                // duplicate and judges what it refused again).
                let record: @Sendable () throws(ClientError) -> Int = { [store] () throws(ClientError) in
                    try store.recordPush(changes, response: response)
                }
                recording = Recording(task: Task { await self.outcome(of: record) }, response: response)
                outbox = max(0, (outbox ?? changes.count) - changes.count + retries)
                report.pushed += response.accepted
                report.pushedDuplicates += response.duplicates
                report.erased += response.erased
                moved(.push, by: changes.count)
                // The next push, read while this one was stored; refused changes of this one are numbered below it.
                if let next, case .success(let nextPush) = await next.value { prepared = nextPush }
            } catch let error where error.serverCode == ErrorCode.checkpointExpired.rawValue {
                // The server was restored from a backup since this sync read its session: nothing was stored. The
                // caller reads the session again before anything is pushed.
                var refused = error
                refused.cause = PushMetAnotherEpoch()
                throw refused
            } catch let error
                where error.serverCode == ErrorCode.unresolvedRecords.rawValue && options.abbreviatesPushes
            {
                // The server does not hold a record this push named by abbreviation as the device believed (a
                // server restored from an older backup, a change of the record held aside): nothing was stored.
                // This push and the rest of this pass name every record in full; the next sync abbreviates again.
                logger.info("pushing again with full record ids")
                options.abbreviatesPushes = false
            } catch let error where error.serverCode == ErrorCode.clockSkew.rawValue && !restampedThisSync {
                // This device's clock runs ahead: re-stamp what the server refused from its clock, push again.
                let now = try await fetchSession()
                let (serverMillis, maxSkewMillis) = (now.serverTimeMillis, now.maxClockSkewMillis)
                let count = try await written { [store] () throws(ClientError) in
                    try store.restampPending(serverMillis: serverMillis, maxSkewMillis: maxSkewMillis)
                }
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

    /// Counts `count` changes pushed, records or changes received in ``progress`` and reports it through
    /// ``Options/progress``; nothing when nothing moved (a page that sparing the device's own left empty).
    private func moved(_ step: SyncProgress.Step, by count: Int) {
        guard count > 0 else { return }
        progress.step = step
        switch step {
        case .push:
            progress.pushed += count
            progress.toPush = max(progress.toPush, progress.pushed)
        case .bootstrap: progress.records += count
        case .pull: progress.pulled += count
        }
        options.progress?(progress)
    }

    /// The cause of a push refused because the server was restored from a backup since the session was read
    /// (``pushAndPull(_:session:wait:sparingOwn:)`` reads it again).
    private struct PushMetAnotherEpoch: Error, Sendable {}

    /// How far a push acknowledged short may be acknowledged: up to the server's acknowledgement, but below the
    /// first change it refused (only ``LocalStore/recordPush(_:response:)`` holds refused changes aside; below it
    /// they would leave the outbox unheld). They stay in the outbox and the next push sends them again.
    static func acknowledgedBeforeRefusals(_ response: PushResponse) -> UInt64 {
        guard let first = response.refused.lazy.map(\.id.counter).min() else { return response.acknowledged }
        return min(response.acknowledged, first == 0 ? 0 : first - 1)
    }

    /// A push's answer being recorded (``LocalStore/recordPush(_:response:)``) on ``writer``.
    private struct Recording {
        let task: Task<Result<Int, ClientError>, Never>
        let response: PushResponse
    }

    /// Waits for the push's answer being recorded, if any, and reports the changes it held aside.
    private func finish(_ recording: inout Recording?, _ report: inout SyncReport) async throws(ClientError) {
        guard let current = recording else { return }
        recording = nil
        let refused = try await current.task.value.get()
        refusedHeld = try store.refusedCount()
        report.refused += refused
        if refused > 0 {
            // Notice, not warning: the report says it (`refused`), and the CLI prints it on stdout.
            logger.notice(
                "the server refused changes of this push; they are held aside ('outpost outbox list')",
                metadata: [
                    "refused": "\(refused)", "codes": "\(Set(current.response.refused.map(\.code)).sorted())",
                ]
            )
        }
    }

    /// Pushes the outbox, if it holds anything, before patients are removed (a pull page's `removed`, or a
    /// snapshot's first page after a lost checkpoint): edits made to them while they were held reach the server,
    /// which takes them until the device pulls past their removal (protocol/README.md section 11); pushed, their
    /// change rows go with the patients.
    private func pushBeforeRemoving(_ report: inout SyncReport, session: SessionInfo) async throws(ClientError) {
        if try store.pendingCount() > 0 { try await pushAll(&report, session: session) }
    }

    /// Reads the session again and adopts its epoch (``adoptEpoch(of:_:)``): what a sync does when one of its
    /// requests met a restore after its session was read (a pull, a snapshot page or a push refused as of another
    /// epoch). Returns the session read.
    @discardableResult
    private func readSessionAdoptingEpoch(_ report: inout SyncReport) async throws(ClientError) -> SessionInfo {
        let current = try await fetchSession()
        try await adoptEpoch(of: current, &report)
        return current
    }

    /// Keeps the server's epoch (protocol/README.md, "Epochs"). A new one (the server was restored from a
    /// backup): asks what the server holds of this replica (a push with no changes answers it), and in one
    /// transaction forgets the checkpoint and puts back in the outbox every change of this replica above that; the
    /// next push sends them again and the missing checkpoint makes the sync bootstrap again.
    private func adoptEpoch(of session: SessionInfo, _ report: inout SyncReport) async throws(ClientError) {
        guard let current = session.epoch else { return }
        let known = try store.serverEpoch()
        if known == current {
            epoch = current
            return
        }
        guard known != nil else {
            try store.adoptServerEpoch(current, serverHolds: nil)
            epoch = current
            return
        }
        var request = TransportRequest(
            method: "POST",
            path: Wire.Path.push,
            body: try encode(PushRequest(replica: store.replicaID, changes: [])),
            contentType: Wire.contentType,
            timeout: options.requestTimeout
        )
        request.headers = deviceHeaders
        let held: PushResponse = try await exchange(request)
        let resent = try store.adoptServerEpoch(current, serverHolds: held.acknowledged)
        epoch = current
        report.serverRestored = true
        report.resent += resent
        logger.notice(
            "the server was restored from a backup (a new epoch); bootstrapping again, pushing again what it lacks",
            metadata: ["resent": "\(resent)"]
        )
    }

    /// Applies a snapshot of the replica's scope page by page; with `sparingOwn` (its first sync: it holds every
    /// change it ever wrote), the server leaves out the records only this replica wrote, which a device that
    /// imported a practice and pushed it would otherwise receive back whole.
    private func bootstrap(
        _ report: inout SyncReport,
        session: SessionInfo,
        sparingOwn: Bool = false
    ) async throws(ClientError) {
        // A store with no record yet (a new device) takes the pages without its secondary indexes, built
        // once at the end, also when the bootstrap fails (or when the store is next opened, if it is killed).
        try store.deferIndexes()
        do {
            var sparingOwn = sparingOwn
            var restarts = 0
            while true {
                do throws(ClientError) {
                    try await takeSnapshot(&report, session: session, sparingOwn: sparingOwn)
                    break
                } catch let error where error.serverCode == ErrorCode.checkpointExpired.rawValue && restarts < 3 {
                    // The server can no longer serve the snapshot's checkpoint (a compaction or a restore came
                    // between two pages): the snapshot starts again, as the protocol says. The pages already
                    // written merge again harmlessly. A restore's new epoch also puts back in the outbox what the
                    // server lacks, and the device may then lack some of its own records: none are spared.
                    restarts += 1
                    sparingOwn = false
                    logger.warning("the server can no longer serve this snapshot's checkpoint; starting it again")
                    try await readSessionAdoptingEpoch(&report)
                }
            }
        } catch {
            try? store.restoreIndexes()
            throw error
        }
        try store.restoreIndexes()
        report.bootstrapped = true
    }

    /// The pages of a snapshot, each merged in its own transaction.
    private func takeSnapshot(
        _ report: inout SyncReport,
        session: SessionInfo,
        sparingOwn: Bool
    ) async throws(ClientError) {
        let limit = max(1, min(options.pageSize, session.limits.maxPageSize))
        var checkpoint: String?
        // Pipelined: while page N is written, page N+1 is asked for (and inflated, decoded and prepared for the
        // store), and page N+2 is asked for as soon as page N+1's answer names it, so the writer waits for a page's
        // round trip and its preparing only when they take longer than a page's write. Each page is still applied
        // in its own transaction, in order; the checkpoint is saved with the last page only, so an interrupted
        // bootstrap starts over and merging a page twice is harmless. The engine holds at most three pages at once
        // (the one written and the two after it), besides the written pages waiting to be freed
        // (``BackgroundRelease``, at most two).
        var pending = snapshotPage(after: nil, limit: limit, sparingOwn: sparingOwn)
        var following: FollowingPage?
        defer {
            // However the loop ends, the page asked for after the next one is let go (nothing once the last page
            // is written; a request in flight when a page's fetch or write failed, or the sync was cancelled).
            following?.cancel()
            BackgroundRelease.drop(pending)
        }
        while true {
            let (next, applied) = try await writeSnapshotPage(
                pending,
                following: &following,
                checkpoint: &checkpoint,
                limit: limit,
                sparingOwn: sparingOwn
            )
            report.snapshotRecords += applied.applied
            report.purged += applied.removedPatients
            if applied.removedPatients > 0 { removedSincePush = true }
            report.add(applied)
            moved(.bootstrap, by: applied.applied + applied.duplicates)
            guard let next else { break }
            // A written page (its tasks hold the records and their prepared forms) is freed on another thread:
            // freeing it here delayed the next page's write. Nothing else refers to it once
            // ``writeSnapshotPage(_:following:checkpoint:limit:sparingOwn:)`` has returned.
            BackgroundRelease.drop(consume pending)
            pending = next
        }
    }

    /// Writes the snapshot page `pending` asked for, and returns the page after it (`nil` after the last page),
    /// asked for before this one is prepared and written: `following` if it was asked for already (as soon as
    /// this page's answer came), otherwise now. Before writing, it sets `following` to ask for the page after
    /// that one as soon as the next page's answer names it; when it throws, the caller cancels `following`.
    private func writeSnapshotPage(
        _ pending: PendingPage,
        following: inout FollowingPage?,
        checkpoint: inout String?,
        limit: Int,
        sparingOwn: Bool
    ) async throws(ClientError) -> (next: PendingPage?, applied: ApplyReport) {
        let page = try await Self.value(of: pending.fetch)
        // A cancelled sync asks for no page more: neither the one after this (`following`, which the caller lets
        // go when this throws) nor, on the first page, the next.
        if Task.isCancelled { throw Self.cancelled() }
        checkpoint = checkpoint ?? page.checkpoint
        let asked = following
        following = nil
        var next: PendingPage?
        if let cursor = page.next {
            // The page this page names, as `following` asked for it; asked for now if it was not.
            next = await asked?.value
            if next == nil { next = snapshotPage(after: cursor, limit: limit, sparingOwn: sparingOwn) }
        }
        following = next.map { FollowingPage(after: $0, engine: self, limit: limit, sparingOwn: sparingOwn) }
        do throws(ClientError) {
            // A page asked for ahead has usually arrived, and been prepared, by now: a cancelled sync stops here,
            // before the page is handed to the writer (nothing suspends between this check and the handing).
            let prepared = try await Self.value(of: pending.prepared)
            if Task.isCancelled { throw Self.cancelled() }
            let saved = page.next == nil ? checkpoint : nil
            let applied = try await written {
                [store, removed = page.removed, leftScope = namesLeavers ? page.leftScope : nil] () throws(ClientError)
                in
                try store.applySnapshot(prepared, removed: removed, leftScope: leftScope, checkpoint: saved)
            }
            return (next, applied)
        } catch {
            // `following`, asked for after `next`, is let go by the caller.
            next?.cancel()
            throw error
        }
    }

    /// The snapshot page after `page`, asked for as soon as `page`'s answer names it; `nil` when `page` is the
    /// last, its request failed (the engine meets the failure when it waits for `page`) or it was cancelled.
    private struct FollowingPage {
        let task: Task<PendingPage?, Never>

        init(after page: PendingPage, engine: SyncEngine, limit: Int, sparingOwn: Bool) {
            task = Task.detached {
                guard let cursor = try? await page.fetch.value.next else { return nil }
                return await engine.snapshotPageUnlessCancelled(after: cursor, limit: limit, sparingOwn: sparingOwn)
            }
        }

        /// The page asked for, once the page before it has come.
        var value: PendingPage? {
            get async { await task.value }
        }

        /// Cancels the request, or the page's request if it was made.
        func cancel() {
            task.cancel()
            let task = task
            Task.detached { await task.value?.cancel() }
        }
    }

    /// Runs a page's write on ``writer``, off the cooperative pool; the engine waits for it without holding a thread.
    private func written<T: Sendable>(
        _ write: @escaping @Sendable () throws(ClientError) -> T
    ) async throws(ClientError) -> T {
        try await outcome(of: write).get()
    }

    /// ``written(_:)``'s outcome as a value: what a write waited for later (a push's answer) keeps.
    private func outcome<T: Sendable>(
        of write: @escaping @Sendable () throws(ClientError) -> T
    ) async -> Result<T, ClientError> {
        await withCheckedContinuation { (done: CheckedContinuation<Result<T, ClientError>, Never>) in
            writer.async { done.resume(returning: Result { () throws(ClientError) in try write() }) }
        }
    }

    /// Asks for one snapshot page (without the records only this replica wrote, with `sparingOwn`), off the
    /// engine's actor: the answer arrives, and its records are prepared for the store (``LocalStore/prepare(_:)``),
    /// while the engine writes the page before it.
    private func snapshotPage(after cursor: String?, limit: Int, sparingOwn: Bool) -> PendingPage {
        var query = [("limit", String(limit)), ("replica", store.replicaID.rawValue)]
        if let cursor { query.append(("after", cursor)) }
        if sparingOwn { query.append(("own", "skip")) }
        var request = TransportRequest(
            method: "GET",
            path: Wire.Path.snapshot,
            query: query,
            accept: accept,
            acceptEncoding: acceptEncoding,
            timeout: options.requestTimeout
        )
        request.headers = deviceHeaders
        let fetch = Task.detached { [self] () async throws -> SnapshotPage in try await exchange(request) }
        let prepared = Task.detached { [store] in store.prepare(try await fetch.value.records) }
        return PendingPage(fetch: fetch, prepared: prepared)
    }

    /// ``snapshotPage(after:limit:sparingOwn:)``, unless the task asking is cancelled: checked on the engine's actor,
    /// where ``FollowingPage/cancel()`` is called, so a page is either not asked for or cancelled with the task.
    private func snapshotPageUnlessCancelled(after cursor: String, limit: Int, sparingOwn: Bool) -> PendingPage? {
        Task.isCancelled ? nil : snapshotPage(after: cursor, limit: limit, sparingOwn: sparingOwn)
    }

    /// A snapshot page asked for: the request, and the preparation of its records once it arrives.
    private struct PendingPage {
        let fetch: Task<SnapshotPage, any Error>
        let prepared: Task<PreparedSnapshot, any Error>

        func cancel() {
            fetch.cancel()
            prepared.cancel()
        }
    }

    /// What a task of ``snapshotPage(after:limit:sparingOwn:)`` made; cancelling the sync cancels the request.
    private static func value<T: Sendable>(of task: Task<T, any Error>) async throws(ClientError) -> T {
        do {
            return try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        } catch let error as ClientError {
            throw error
        } catch {
            throw Self.cancelled(cause: error)
        }
    }

    /// Pulls pages from the checkpoint until caught up, each written in its own transaction with its checkpoint.
    ///
    /// Pipelined (``Options/pipelining``): the next page is asked for (and inflated and decoded) while this one
    /// is written, from the checkpoint this one ends at, so the server reads and encodes page N+1 while the
    /// device writes page N. The server still sees one request after another, as without it. If writing fails,
    /// the request asked ahead is cancelled and the next sync asks again from the stored checkpoint.
    ///
    /// A checkpoint the server no longer holds (compacted past, or a server restored from a backup) makes it
    /// bootstrap again. Beside a push (`besidePush`) it stops instead, leaving to the pull after the push both
    /// that and a page that removes patients: a removal deletes the patient's change rows the server has
    /// acknowledged, and the push beside it may not be acknowledged yet (a purged patient's edits would stay on
    /// the device).
    private func pullAll(
        _ report: inout SyncReport,
        session: SessionInfo,
        wait: Int,
        besidePush: Bool = false
    ) async throws(ClientError) {
        let limit = max(1, min(options.pullPageSize, session.limits.maxPageSize))
        var wait = wait
        var ahead: Task<(PullResponse, ReadAhead?), any Error>?
        while true {
            let page: PullResponse
            var readAhead: ReadAhead?
            do throws(ClientError) {
                if let asked = ahead {
                    ahead = nil
                    (page, readAhead) = try await Self.value(of: asked)
                } else {
                    // Edits made to patients a page removed, after the push before the removal (while a snapshot's
                    // first page was on its way, or between a pull page's push and its write), reach the server
                    // before this pull from past the removal makes it refuse them (a page that removes is never
                    // asked ahead of).
                    if removedSincePush && !besidePush {
                        removedSincePush = false
                        try await pushBeforeRemoving(&report, session: session)
                    }
                    page = try await exchange(
                        pullRequest(since: try store.checkpoint() ?? "0", limit: limit, wait: wait)
                    )
                }
            } catch let error where error.serverCode == ErrorCode.checkpointExpired.rawValue {
                if besidePush { return }
                logger.warning("the server cannot serve this replica's checkpoint; bootstrapping again")
                try store.forgetCheckpoint()
                // Restored from a backup? Then its new epoch also puts back in the outbox what it lacks.
                let current = try await readSessionAdoptingEpoch(&report)
                // The snapshot's first page may remove patients (`removed`).
                try await pushBeforeRemoving(&report, session: current)
                try await bootstrap(&report, session: session)
                continue
            }
            if besidePush && !page.removed.isEmpty { return }
            // Edits made since this sync's push (during `--watch`'s long poll) to a patient this page removes.
            if !page.removed.isEmpty { try await pushBeforeRemoving(&report, session: session) }
            // The page after one that removes patients is asked for once that one is written: the server takes a
            // pull from a page's checkpoint as that page applied (it forgets the removal, and takes no more edits
            // to the patient), so a page that failed to be written would leave the patients on the device.
            if options.pipelining && page.hasMore && page.removed.isEmpty {
                let request = pullRequest(since: page.checkpoint, limit: limit, wait: 0)
                // The next page may name by abbreviation records this one brings, written meanwhile.
                let bringing = page.changes.map(\.record) + page.records.map(\.record)
                ahead = Task.detached { [self, store] () async throws -> (PullResponse, ReadAhead?) in
                    let next: PullResponse = try await exchange(request, alsoHeld: bringing)
                    // The records its changes touch, read on a reader while this page is written.
                    let touched = next.changes.map(\.record)
                    try Task.checkCancellation()
                    guard !touched.isEmpty else { return (next, nil) }
                    let unprojected = Projection.unprojected(by: next.changes, carrying: next.records)
                    return (
                        next,
                        ReadAhead(records: store.preload(touched, unprojected: unprojected), unprojected: unprojected)
                    )
                }
            }
            let applied: ApplyReport
            let leavers = namesLeavers ? page.leftScope : nil
            do {
                applied = try await written { [store, page, readAhead] () throws(ClientError) in
                    try store.applyPage(
                        changes: page.changes,
                        records: page.records,
                        forms: nil,
                        removed: page.removed,
                        leftScope: leavers,
                        checkpoint: page.checkpoint,
                        preloaded: readAhead?.records,
                        unprojected: readAhead?.unprojected
                    ).report
                }
            } catch {
                ahead?.cancel()
                throw error
            }
            report.pulled += applied.applied
            report.purged += applied.removedPatients
            if applied.removedPatients > 0 { removedSincePush = true }
            report.add(applied)
            moved(.pull, by: applied.applied + applied.duplicates)
            wait = 0
            if !page.hasMore { return }
        }
    }

    /// What a pipelined pull read for its next page while it wrote the page before: the records the page's
    /// changes touch (``LocalStore/preload(_:unprojected:)``; `nil` when they could not be read) and those whose
    /// projected rows the page leaves as they are, worked out once for both the read and the write.
    private struct ReadAhead: Sendable {
        let records: LocalStore.PreloadedRecords?
        let unprojected: Set<RecordRef>
    }

    /// A pull of at most `limit` changes after `since`, waiting up to `wait` seconds when there are none.
    private func pullRequest(since: String, limit: Int, wait: Int) -> TransportRequest {
        var query = [("since", since), ("limit", String(limit)), ("replica", store.replicaID.rawValue)]
        if wait > 0 { query.append(("wait", String(wait))) }
        var request = TransportRequest(
            method: "GET",
            path: Wire.Path.changes,
            query: query,
            accept: accept,
            acceptEncoding: acceptEncoding,
            timeout: Double(wait) + options.requestTimeout
        )
        request.headers = deviceHeaders
        return request
    }

    // MARK: - HTTP

    /// The `Accept` of pull and snapshot requests: binary in the newest layout this device reads, or the
    /// server's default (JSON).
    private var accept: String? { options.encoding == .binary ? BinaryWire.accept(layout: options.binaryLayout) : nil }

    /// The layout of pushes: the older of the device's and the server's (``SessionInfo/binaryLayout``, 1 when the
    /// server does not say).
    public static func pushLayout(mine: UInt8, server: Int?) -> UInt8 {
        min(mine, UInt8(clamping: max(1, server ?? 1)))
    }

    /// What the device reports of itself with pushes and pulls.
    private var deviceHeaders: [String: String] {
        var headers: [String: String] = [:]
        if let outbox { headers[Wire.outboxHeader] = String(outbox) }
        if let refusedHeld { headers[Wire.refusedHeader] = String(refusedHeld) }
        if let epoch { headers[Wire.epochHeader] = epoch }
        return headers
    }

    /// The `Accept-Encoding` of pull and snapshot requests.
    private var acceptEncoding: String? { options.compression ? WireCompression.gzip : nil }

    private func encode(_ message: some Encodable) throws(ClientError) -> Data {
        do {
            return try Wire.makeEncoder().encode(message)
        } catch {
            throw ClientError(code: .storage, message: "cannot encode a sync message: \(error)")
        }
    }

    /// Whether pages from the server of `session`, asked for with `options`, name the patients that left the scope
    /// (``PullResponse/leftScope``): a server of binary layout 5 or later does, in JSON and in layout 5; a page
    /// asked for in an older layout (`OUTPOST_SYNC_BINARY_LAYOUT`) cannot carry them.
    static func namesLeavers(session: SessionInfo, options: Options) -> Bool {
        (session.binaryLayout ?? 1) >= 5 && (options.encoding == .json || options.binaryLayout >= 5)
    }

    /// Sends a request, retrying transient failures with backoff, and decodes a `2xx` answer.
    ///
    /// A binary answer naming records by abbreviation (layout 3) is read with them looked up in the store and
    /// among `alsoHeld` (the page being written as this one was asked for); one naming a record neither holds is
    /// asked for again in layout 2.
    nonisolated private func exchange<T: Decodable>(
        _ request: TransportRequest,
        alsoHeld: [RecordRef] = []
    ) async throws(ClientError) -> T {
        var request = request
        var attempt = 0
        // What failed last, for ``Options/retrying``.
        var failure = (reason: "", timedOut: false)
        while true {
            let outcome: Result<TransportResponse, any Error>
            do {
                outcome = .success(try await transport.send(request))
            } catch {
                outcome = .failure(error)
            }
            switch outcome {
            case .success(var response) where (200..<300).contains(response.status):
                do {
                    if let coding = response.contentEncoding?.lowercased(), coding != "identity" {
                        guard coding == WireCompression.gzip else {
                            throw WireCompression.Failure.corrupt
                        }
                        response.body = Data(
                            try WireCompression.decompress(response.body, limit: options.maxAnswerBytes)
                        )
                    }
                    if response.isBinary, let type = T.self as? any BinaryWireMessage.Type {
                        // A binary answer of a message that has a binary form; anything else is read as JSON.
                        if let value = try binary(type, [UInt8](response.body), alsoHeld: alsoHeld) as? T {
                            return value
                        }
                    }
                    return try Wire.makeDecoder().decode(T.self, from: response.body)
                } catch let error as ClientError {
                    // The store could not be read to resolve the answer's abbreviations.
                    throw error
                } catch let failure as BinaryWire.Failure
                    where failure.isUnresolved && request.accept != nil
                    && request.accept != BinaryWire.accept(layout: 2) && request.path != Wire.Path.snapshot
                {
                    // A page naming a record this store does not hold (or not as the server meant) by abbreviation:
                    // asked again in layout 2, every record named in full. Never a guess, and not a retry. Not a
                    // snapshot page, which names every record in full (protocol/README.md, "Layout 3"): asked again in
                    // layout 2, a first page would lose its `removed` (layout 4), after the server reset what it
                    // counts the device as holding.
                    logger.info("asking again with full record ids", metadata: ["path": "\(request.path)"])
                    request.accept = BinaryWire.accept(layout: 2)
                    continue
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
                // A gateway's timeout (a proxy before a server that does not answer) took the proxy's whole wait.
                failure = (reason: "the server answered \(response.status)", timedOut: response.status == 504)
            case .failure(let error):
                if Task.isCancelled {
                    throw Self.cancelled(cause: error)
                }
                if attempt >= options.retries {
                    throw ClientError(
                        code: .unreachable,
                        message: "cannot reach the server (\(error.localizedDescription)); your changes are kept "
                            + "and will be sent on the next sync",
                        cause: error
                    )
                }
                let transport = error as? TransportFailure
                failure = (
                    reason: transport?.reason ?? error.localizedDescription, timedOut: transport?.isTimeout ?? false
                )
            }
            attempt += 1
            logger.info("retrying", metadata: ["path": "\(request.path)", "attempt": "\(attempt)"])
            let delay = options.backoff * (1 << min(attempt - 1, 6))
            options.retrying?(
                SyncRetry(
                    attempt: attempt,
                    retries: options.retries,
                    reason: failure.reason,
                    timedOut: failure.timedOut,
                    delay: delay
                )
            )
            try? await Task.sleep(for: delay)
            // A cancelled sync does not retry: a cancelled sleep returns at once, so its retries would follow one
            // another (a server answering 5xx, or a transport that does not stop at cancellation).
            if Task.isCancelled { throw Self.cancelled() }
        }
    }

    /// What a cancelled sync throws: nothing it did not finish is lost (each page and push is its own transaction).
    private static func cancelled(cause: (any Error)? = nil) -> ClientError {
        ClientError(code: .unreachable, message: "sync cancelled; nothing was lost", cause: cause)
    }

    /// A binary answer read, the records it names by abbreviation (layout 3) looked up in the store.
    nonisolated private func binary(
        _ type: any BinaryWireMessage.Type,
        _ bytes: [UInt8],
        alsoHeld: [RecordRef]
    ) throws -> any BinaryWireMessage {
        let abbreviations = try BinaryWire.abbreviations(in: bytes, kind: type.binaryKind)
        return try type.init(binary: bytes, resolved: try store.resolve(abbreviations, alsoHeld: alsoHeld))
    }

    nonisolated private func refusal(_ response: TransportResponse, path: String) -> ClientError {
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
        if body == nil && response.status == 404 {
            // Not an Outpost error body: no such path at this URL (protocol/README.md, section 2).
            return ClientError(
                code: .refused,
                message: "\(path) was not found (HTTP 404); is the URL an Outpost server, and its version 1?",
                serverCode: code
            )
        }
        return ClientError(code: .refused, message: "the server refused \(path): \(message)", serverCode: code)
    }
}
