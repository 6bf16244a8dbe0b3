/// How far a sync has come (``SyncEngine/Options/progress``): reported after each push the server answered and
/// each snapshot or pull page written, so an app can show a sync that runs for minutes on a slow link (a first
/// push of a whole practice, a new laptop's bootstrap, a backlog after days offline) as moving, not hung.
public struct SyncProgress: Sendable, Hashable {
    /// What moved.
    public enum Step: String, Sendable, Hashable {
        /// A push was answered.
        case push
        /// A snapshot page was written.
        case bootstrap
        /// A pull page was written.
        case pull
    }

    /// The step that moved last.
    public var step: Step
    /// Changes of this sync's pushes the server has answered for (stored, found duplicate, erased or refused).
    public var pushed = 0
    /// The changes this sync is to push: the outbox when a push began, and the refused changes the user retries
    /// (sent first); at least ``pushed``.
    public var toPush = 0
    /// Records of a snapshot received and written, those the device held already included (a bootstrap; the
    /// server does not say ahead how many there are).
    public var records = 0
    /// Changes pulled and written, those the device held already included (the feed says only whether more
    /// follow).
    public var pulled = 0

    /// Creates a progress report.
    public init(step: Step, pushed: Int = 0, toPush: Int = 0, records: Int = 0, pulled: Int = 0) {
        self.step = step
        self.pushed = pushed
        self.toPush = toPush
        self.records = records
        self.pulled = pulled
    }

    /// "pushed 300000/659244 changes (45%), received 20000 records, pulled 5000 changes": the parts that moved.
    public var summary: String {
        var parts: [String] = []
        if toPush > 0 { parts.append("pushed \(pushed)/\(toPush) changes (\(pushed * 100 / toPush)%)") }
        if records > 0 { parts.append("received \(records) records") }
        if pulled > 0 { parts.append("pulled \(pulled) changes") }
        return parts.isEmpty ? "started" : parts.joined(separator: ", ")
    }
}

/// A transient failure the engine is about to retry (``SyncEngine/Options/retrying``): a server that does not
/// answer, a connection lost, a `5xx` or `429`. What an app tells its user while a sync waits on a link that
/// stalls, instead of nothing for minutes.
public struct SyncRetry: Sendable, Hashable {
    /// The retry about to be made, from 1.
    public var attempt: Int
    /// How many retries the engine makes at most (``SyncEngine/Options/retries``) before it gives up.
    public var retries: Int
    /// What failed, in words (no request or answer contents): the transport's reason, or the status answered.
    public var reason: String
    /// Whether the failed attempt ended because no whole answer came in time (a server that accepts the
    /// connection and never answers, a link that stalls): such an attempt took the request's whole timeout.
    public var timedOut: Bool
    /// How long the engine waits before it tries again.
    public var delay: Duration

    /// Creates a retry report.
    public init(attempt: Int, retries: Int, reason: String, timedOut: Bool, delay: Duration) {
        self.attempt = attempt
        self.retries = retries
        self.reason = reason
        self.timedOut = timedOut
        self.delay = delay
    }
}
