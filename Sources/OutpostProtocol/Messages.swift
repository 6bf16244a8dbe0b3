public import OutpostCRDT
public import OutpostModel

/// `GET /v1/session`: who the token belongs to and what the server allows. A client calls it first, to check
/// the token and the protocol version and to learn the limits it must keep to.
public struct SessionInfo: Sendable, Hashable, Codable {
    /// The wire protocol the server speaks (``OutpostVersion/wireProtocol``).
    public var protocolVersion: Int
    /// The server's software version.
    public var serverVersion: String
    /// The practice the token is bound to (a practice id).
    public var practice: String
    /// The token's role.
    public var role: Role
    /// The token's scope within the practice.
    public var scope: Scope
    /// The server's clock when it answered, in milliseconds since the Unix epoch.
    public var serverTimeMillis: UInt64
    /// How far ahead of the server's clock a pushed change may be, in milliseconds.
    public var maxClockSkewMillis: UInt64
    /// The request limits the server enforces.
    public var limits: Limits
    /// The server store's epoch (`epo_…`): a new one after every restore from a backup, when a device bootstraps
    /// again and pushes again its changes the store lacks (protocol/README.md, "Epochs"). Absent from servers
    /// before epochs.
    public var epoch: String?
    /// The newest binary layout the server reads and writes (``BinaryWire/layouts``; it reads every older one).
    /// Absent from servers before layout 2, which read and write layout 1 only.
    public var binaryLayout: Int?
    /// The person the token is issued to (`per_…`), whose id every change it pushes must carry as its author; absent
    /// for a token issued to no person, and from servers before it was said.
    public var person: String?

    /// Creates a session description.
    public init(
        protocolVersion: Int,
        serverVersion: String,
        practice: String,
        role: Role,
        scope: Scope,
        serverTimeMillis: UInt64,
        maxClockSkewMillis: UInt64,
        limits: Limits,
        epoch: String? = nil,
        binaryLayout: Int? = nil,
        person: String? = nil
    ) {
        self.epoch = epoch
        self.binaryLayout = binaryLayout
        self.person = person
        self.protocolVersion = protocolVersion
        self.serverVersion = serverVersion
        self.practice = practice
        self.role = role
        self.scope = scope
        self.serverTimeMillis = serverTimeMillis
        self.maxClockSkewMillis = maxClockSkewMillis
        self.limits = limits
    }
}

/// What a token may do: see `protocol/README.md`, "Roles".
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    /// A clinician's laptop: reads and writes care records in scope, resolves conflicts.
    case clinician
    /// A shared device at a site (a school clinic's laptop): reads and writes care records in scope.
    case siteDevice = "site-device"
    /// A practice administrator: everything, including the practice's structure, tokens and purges.
    case admin
}

/// The part of a practice a token sees: sites and teams. Both empty means the whole practice.
public struct Scope: Sendable, Hashable, Codable {
    /// Site ids; a patient with one of these sites is in scope.
    public var sites: [String]
    /// Team ids; a patient whose primary team is one of these is in scope.
    public var teams: [String]

    /// Creates a scope; the ids are sorted and deduplicated.
    public init(sites: [String] = [], teams: [String] = []) {
        self.sites = Array(Set(sites)).sorted()
        self.teams = Array(Set(teams)).sorted()
    }

    /// The scope of the whole practice.
    public static let practice = Scope()

    /// Whether the scope is the whole practice.
    public var isWholePractice: Bool { sites.isEmpty && teams.isEmpty }

    /// Whether the scope holds a patient with these team and sites: the whole practice holds everyone,
    /// otherwise the primary team is one of ``teams`` or a site one of ``sites``
    /// (``PatientView/ScopeKeys/isIn(sites:teams:)``, the one rule every scope check follows).
    public func contains(_ patient: PatientView.ScopeKeys) -> Bool {
        patient.isIn(sites: sites, teams: teams)
    }

    private enum CodingKeys: String, CodingKey {
        case sites, teams
    }

    /// Decodes a scope, refusing ids that are unsorted or repeated (one scope has one spelling).
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: ["sites", "teams"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let sites = try container.decode([String].self, forKey: .sites)
        let teams = try container.decode([String].self, forKey: .teams)
        self.init(sites: sites, teams: teams)
        guard self.sites == sites, self.teams == teams else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "scope ids must be sorted and unique")
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(sites, forKey: .sites)
        try container.encode(teams, forKey: .teams)
    }
}

/// The limits a server enforces on requests; exceeding one is a `413` or `400` with a JSON error body.
public struct Limits: Sendable, Hashable, Codable {
    /// The largest request body accepted, in bytes.
    public var maxBodyBytes: Int
    /// The most changes one push may carry.
    public var maxPushChanges: Int
    /// The most changes (or snapshot records) one page may carry.
    public var maxPageSize: Int
    /// The longest a live pull may wait, in seconds.
    public var maxWaitSeconds: Int

    /// Creates limits.
    public init(maxBodyBytes: Int, maxPushChanges: Int, maxPageSize: Int, maxWaitSeconds: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxPushChanges = maxPushChanges
        self.maxPageSize = maxPageSize
        self.maxWaitSeconds = maxWaitSeconds
    }

    /// The limits of a default server.
    public static let standard = Limits(
        maxBodyBytes: 8 << 20,
        maxPushChanges: 5_000,
        maxPageSize: 5_000,
        maxWaitSeconds: 30
    )
}

/// `POST /v1/push`: changes from one replica's outbox, oldest first.
///
/// A push is all or nothing: if any change is refused, the response is an error naming its index and the
/// server stores none of them. Changes the server already holds (same id, same content) are counted as
/// duplicates, so a retried push is harmless.
public struct PushRequest: Sendable, Hashable, Codable {
    /// The replica that made every change in the batch.
    public var replica: ReplicaID
    /// The changes, in the replica's counter order.
    public var changes: [Change]

    /// Creates a push.
    public init(replica: ReplicaID, changes: [Change]) {
        self.replica = replica
        self.changes = changes
    }

    private enum CodingKeys: String, CodingKey {
        case replica, changes
    }

    /// Decodes a push, refusing keys it does not define.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: ["replica", "changes"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        replica = try container.decode(ReplicaID.self, forKey: .replica)
        changes = try container.decode([Change].self, forKey: .changes)
        // Oldest first, each change once: the push's own counters strictly increase (other replicas' changes
        // are refused later, as replica_mismatch with their index).
        var previous: UInt64?
        for (index, change) in changes.enumerated() where change.id.replica == replica {
            if let previous, change.id.counter <= previous {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath + [CodingKeys.changes, IndexKey(index), IndexKey("id")],
                        debugDescription:
                            "counter \(change.id.counter) follows counter \(previous); a push carries its replica's "
                            + "changes once each, in strictly increasing counter order"
                    )
                )
            }
            previous = change.id.counter
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(replica, forKey: .replica)
        try container.encode(changes, forKey: .changes)
    }
}

/// A coding key for an error's path: an array index or a key name.
private struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(_ index: Int) {
        stringValue = String(index)
        intValue = index
    }

    init(_ name: String) {
        stringValue = name
        intValue = nil
    }

    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { self.init(intValue) }
}

/// The answer to a successful push.
public struct PushResponse: Sendable, Hashable, Codable {
    /// Changes stored for the first time.
    public var accepted: Int
    /// Changes the server already held.
    public var duplicates: Int
    /// The highest counter of this replica the server now holds: the replica drops every outbox entry up to
    /// it, in the same transaction that records this answer.
    public var acknowledged: UInt64
    /// The server's clock, in milliseconds since the Unix epoch.
    public var serverTimeMillis: UInt64
    /// The changes of the push the server refused one by one, in push order (protocol/README.md, section 5,
    /// "Per-change refusals"): only when the client asked for them (``Wire/refusalsHeader``); empty otherwise,
    /// and omitted from the JSON when empty.
    public var refused: [RefusedChange]
    /// Changes to the records of a patient a legal purge erased (made on a device that had not heard of the
    /// purge): acknowledged and not stored (protocol/README.md, section 5, "Erased patients"). Omitted from the
    /// JSON when 0.
    public var erased: Int

    /// Creates a push response.
    public init(
        accepted: Int,
        duplicates: Int,
        acknowledged: UInt64,
        serverTimeMillis: UInt64,
        refused: [RefusedChange] = [],
        erased: Int = 0
    ) {
        self.accepted = accepted
        self.duplicates = duplicates
        self.acknowledged = acknowledged
        self.serverTimeMillis = serverTimeMillis
        self.refused = refused
        self.erased = erased
    }

    enum CodingKeys: String, CodingKey {
        case accepted, duplicates, acknowledged, serverTimeMillis, refused, erased
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        accepted = try container.decode(Int.self, forKey: .accepted)
        duplicates = try container.decode(Int.self, forKey: .duplicates)
        acknowledged = try container.decode(UInt64.self, forKey: .acknowledged)
        serverTimeMillis = try container.decode(UInt64.self, forKey: .serverTimeMillis)
        refused = try container.decodeIfPresent([RefusedChange].self, forKey: .refused) ?? []
        erased = try container.decodeIfPresent(Int.self, forKey: .erased) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(accepted, forKey: .accepted)
        try container.encode(duplicates, forKey: .duplicates)
        try container.encode(acknowledged, forKey: .acknowledged)
        try container.encode(serverTimeMillis, forKey: .serverTimeMillis)
        if !refused.isEmpty { try container.encode(refused, forKey: .refused) }
        if erased != 0 { try container.encode(erased, forKey: .erased) }
    }
}

/// One change of a push that the server refused and did not store, while it stored the others: its id and why.
///
/// The reason is a stable ``code`` (an ``ErrorCode`` raw value: `out_of_scope`, `forbidden`, `invalid_change`)
/// and a one-line ``message`` for people, with ids only, never patient data; ``field`` names the field at fault
/// when there is one.
public struct RefusedChange: Sendable, Hashable, Codable {
    /// The refused change's id.
    public var id: ChangeID
    /// Why, for programs: an error code (section 12); a client treats an unknown one as a refusal it can print.
    public var code: String
    /// Why, for people: one line.
    public var message: String
    /// The field at fault (`task.status`, `author`, `record`), when there is one.
    public var field: String?

    /// Creates a refusal.
    public init(id: ChangeID, code: String, message: String, field: String? = nil) {
        self.id = id
        self.code = code
        self.message = message
        self.field = field
    }
}

/// `GET /v1/changes?since=CHECKPOINT&limit=N&wait=SECONDS`: one page of the practice's changes feed after a
/// checkpoint, filtered by the token's scope.
///
/// With `wait`, a server that has nothing newer holds the request until a change arrives or the wait ends
/// (a long poll), then answers with what it has, possibly nothing.
public struct PullResponse: Sendable, Hashable, Codable {
    /// Changes after the request's checkpoint, in feed order.
    public var changes: [Change]
    /// The checkpoint to send next time: the position after the last change of this page.
    public var checkpoint: String
    /// Whether more changes follow at once.
    public var hasMore: Bool
    /// For a scoped token: the current records of patients that entered its scope (each patient and the
    /// records it owns), to merge like a snapshot. Absent when empty.
    public var records: [SnapshotRecord]
    /// Ids the device removes (after pushing its pending edits): patients legally purged since the request's
    /// checkpoint and, for a scoped token, patients that left its scope, each with the records it owns; beside a
    /// purged patient, a record of another type a push gave it after its purge, removed alone (protocol/README.md,
    /// "Erased patients"). Absent when empty.
    public var removed: [String]
    /// The ids of `removed` that left the token's scope and were not purged: the device may keep its own
    /// acknowledged edits to them, sealed, to send again to a server restored from a backup (protocol/README.md,
    /// "Epochs"); it keeps nothing of any other id it removes. Absent when empty; in the binary encoding, written
    /// from layout 5 on ("Layout 5").
    public var leftScope: [String]

    /// Creates a pull page.
    public init(
        changes: [Change],
        checkpoint: String,
        hasMore: Bool,
        records: [SnapshotRecord] = [],
        removed: [String] = [],
        leftScope: [String] = []
    ) {
        self.changes = changes
        self.checkpoint = checkpoint
        self.hasMore = hasMore
        self.records = records
        self.removed = removed
        self.leftScope = leftScope
    }

    private enum CodingKeys: String, CodingKey {
        case changes, checkpoint, hasMore, records, removed, leftScope
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        changes = try container.decode([Change].self, forKey: .changes)
        checkpoint = try container.decode(String.self, forKey: .checkpoint)
        hasMore = try container.decode(Bool.self, forKey: .hasMore)
        records = try container.decodeIfPresent([SnapshotRecord].self, forKey: .records) ?? []
        removed = try container.decodeIfPresent([String].self, forKey: .removed) ?? []
        leftScope = try container.decodeIfPresent([String].self, forKey: .leftScope) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(changes, forKey: .changes)
        try container.encode(checkpoint, forKey: .checkpoint)
        try container.encode(hasMore, forKey: .hasMore)
        if !records.isEmpty { try container.encode(records, forKey: .records) }
        if !removed.isEmpty { try container.encode(removed, forKey: .removed) }
        if !leftScope.isEmpty { try container.encode(leftScope, forKey: .leftScope) }
    }
}

/// `GET /v1/snapshot?after=CURSOR&limit=N`: one page of the current state of every record in scope, for a new
/// device or one whose checkpoint the server can no longer serve.
///
/// The `checkpoint` of the first page is a feed position that every page's state already includes; after
/// the last page the device pulls changes from it. Record states merge idempotently, so a change that is
/// both in a page and in the feed after the checkpoint is harmless.
public struct SnapshotPage: Sendable, Hashable, Codable {
    /// The records of this page, sorted by type then id.
    public var records: [SnapshotRecord]
    /// Where to pull changes from once the snapshot is applied (the same on every page of one snapshot).
    public var checkpoint: String
    /// The cursor of the next page, or `nil` on the last page.
    public var next: String?
    /// On a snapshot's first page only: ids the device is to remove (after pushing its pending edits), as a pull
    /// page's `removed`. They are the practice's patients purged at or before the snapshot's checkpoint (each
    /// with the records of other types a push gave it after its purge) and, for a scoped token, the patients the
    /// server had sent the device that are out of its scope now: a device bootstrapping again may hold them, and
    /// no pull from the checkpoint announces them. Absent when empty; in the binary encoding, written from layout
    /// 4 on (protocol/README.md, "Layout 4").
    public var removed: [String]
    /// The ids of `removed` that left the token's scope and were not purged, as a pull page's
    /// (``PullResponse/leftScope``). Absent when empty; in the binary encoding, written from layout 5 on.
    public var leftScope: [String]

    /// Creates a snapshot page.
    public init(
        records: [SnapshotRecord],
        checkpoint: String,
        next: String?,
        removed: [String] = [],
        leftScope: [String] = []
    ) {
        self.records = records
        self.checkpoint = checkpoint
        self.next = next
        self.removed = removed
        self.leftScope = leftScope
    }

    private enum CodingKeys: String, CodingKey {
        case records, checkpoint, next, removed, leftScope
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        records = try container.decode([SnapshotRecord].self, forKey: .records)
        checkpoint = try container.decode(String.self, forKey: .checkpoint)
        next = try container.decodeIfPresent(String.self, forKey: .next)
        removed = try container.decodeIfPresent([String].self, forKey: .removed) ?? []
        leftScope = try container.decodeIfPresent([String].self, forKey: .leftScope) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(records, forKey: .records)
        try container.encode(checkpoint, forKey: .checkpoint)
        try container.encodeIfPresent(next, forKey: .next)
        if !removed.isEmpty { try container.encode(removed, forKey: .removed) }
        if !leftScope.isEmpty { try container.encode(leftScope, forKey: .leftScope) }
    }
}

/// One record of a snapshot: its merged state, field by field.
public struct SnapshotRecord: Sendable, Hashable, Codable {
    /// The record.
    public var record: RecordRef
    /// Its merged state.
    public var state: RecordState

    /// Creates a snapshot record.
    public init(record: RecordRef, state: RecordState) {
        self.record = record
        self.state = state
    }
}
