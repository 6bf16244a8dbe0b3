import Foundation
import HTTPTypes
import OutpostCRDT
import OutpostModel
public import OutpostProtocol

/// The storage the administration commands run on: practices, tokens, conflicts, purges, devices and the audit
/// log.
///
/// Like ``SyncStorage``, a backend only reads and writes: the rules an administrator's act follows (what a
/// practice name may be, what a successor token inherits, what a purge needs, how an act is described in the
/// audit log) are the pure functions of ``AdminRules``, shared by every backend. Every act is written with its
/// audit entry in one transaction.
public protocol AdminStorage: Sendable {
    /// Adds a practice and returns it.
    ///
    /// - Throws: ``ServerError`` `invalid_request` for an empty or overlong name.
    func addPractice(
        name: String,
        now: UInt64,
        generator: inout some RandomNumberGenerator
    ) async throws(ServerError) -> PracticeEntry

    /// Adds a practice only when the store holds none, and returns it; `nil` when one exists. Atomic across
    /// processes: of several servers starting together on an empty database, exactly one adds it.
    func addFirstPractice(
        name: String,
        now: UInt64,
        generator: inout some RandomNumberGenerator
    ) async throws(ServerError) -> PracticeEntry?

    /// Every practice, oldest first.
    func practices() async throws(ServerError) -> [PracticeEntry]

    /// Issues a token and returns its secret, which is shown once and never stored.
    ///
    /// - Throws: ``ServerError`` `not_found` for an unknown practice, `invalid_parameter` for a person who is
    ///   not one of the practice's.
    func issueToken(
        practice: String,
        role: Role,
        scope: Scope,
        label: String,
        expiresAtMillis: UInt64?,
        person: String?,
        now: UInt64
    ) async throws(ServerError) -> (secret: TokenSecret, entry: TokenEntry)

    /// Issues the successor of a token (``AdminRules/successor(of:label:expiresAtMillis:now:)``); the old token is
    /// revoked at once, or keeps working `graceMillis` longer.
    ///
    /// - Throws: ``ServerError`` `not_found` for an unknown token.
    func issueSuccessor(
        of id: String,
        label: String?,
        expiresAtMillis: UInt64?,
        graceMillis: UInt64?,
        now: UInt64
    ) async throws(ServerError) -> (secret: TokenSecret, entry: TokenEntry)

    /// The tokens of one practice, or of all when `practice` is `nil`, oldest first.
    func tokens(practice: String?) async throws(ServerError) -> [TokenEntry]

    /// Revokes a token; revoking twice is harmless.
    ///
    /// - Throws: ``ServerError`` `not_found` for an unknown token id.
    func revokeToken(id: String, now: UInt64) async throws(ServerError) -> TokenEntry

    /// The open conflicts of one practice, sorted by record and field; with `id`, only that one.
    func conflicts(practice: String, id: String?) async throws(ServerError) -> [ServerConflict]

    /// Erases a patient and every record it owns, with their changes and conflicts; every device removes them
    /// on its next pull.
    ///
    /// - Throws: ``ServerError`` `not_found` when the practice holds no such patient.
    func purge(practice: String, patient: String, reason: String, now: UInt64) async throws(ServerError) -> PurgeEntry

    /// The practice's purges, oldest first.
    func purges(practice: String) async throws(ServerError) -> [PurgeEntry]

    /// The devices of one practice or of all, most recently seen first.
    func devices(practice: String?) async throws(ServerError) -> [DeviceEntry]

    /// Retires a device: its replica id may no longer sync.
    ///
    /// - Throws: ``ServerError`` `not_found` for a replica the practice has never seen.
    func retireDevice(practice: String, replica: String, now: UInt64) async throws(ServerError)

    /// Active devices by how long ago they were last seen (``AdminRules/stalenessBuckets``).
    func deviceStaleness(now: UInt64) async throws(ServerError) -> [(bucket: String, count: Int)]

    /// The audit log, oldest first, of one practice or of all.
    func auditLog(practice: String?) async throws(ServerError) -> [AuditEntry]

    /// Closes the store's connections (a command done with it; a restore about to replace its file).
    func close()

    /// Appends `audit`, entries of the store this one replaced by a restore, as they were (their time, actor,
    /// action and detail), and an entry saying so (``RestoreCarryOver``).
    func carryOver(audit: [AuditEntry], now: UInt64) async throws(ServerError)

    /// Makes again, in a store restored from a backup, a purge the store it replaced had made: the patient and its
    /// records erased as ``purge(practice:patient:reason:now:)`` does when the store holds it; otherwise the purge
    /// recorded (its reason, the patient's id kept as erased), so that devices pushing its records again are not
    /// stored and those holding it remove it.
    func purgeAgain(_ purge: PurgeEntry, now: UInt64) async throws(ServerError)
}

extension AdminStorage {
    /// The practice with `id`, if any.
    public func practice(_ id: String) async throws(ServerError) -> PracticeEntry? {
        try await practices().first { $0.id == id }
    }
}

/// A whole backend of the server: the sync endpoints' storage and the administration's.
public typealias ServerBackend = SyncStorage & AdminStorage & CompactionStorage

/// The rules administrators' acts follow, pure, shared by every backend.
public enum AdminRules {
    /// A practice name trimmed, or the refusal of an empty or overlong one.
    static func practiceName(_ name: String) throws(ServerError) -> String {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 200 else {
            throw ServerError.malformed("a practice needs a name of 1 to 200 characters", field: "name")
        }
        return trimmed
    }

    /// A new practice's entry.
    static func makePractice(
        name: String,
        now: UInt64,
        generator: inout some RandomNumberGenerator
    ) throws(ServerError) -> PracticeEntry {
        PracticeEntry(
            id: RecordType.practice.makeID(millis: now, using: &generator),
            name: try practiceName(name),
            createdAtMillis: now
        )
    }

    /// The draft of a new token (its id and secret are made when it is stored).
    static func draftToken(
        practice: String,
        role: Role,
        scope: Scope,
        label: String,
        expiresAtMillis: UInt64?,
        person: String?,
        now: UInt64
    ) -> TokenEntry {
        TokenEntry(
            id: "",
            practice: practice,
            role: role,
            scope: scope,
            label: label,
            createdAtMillis: now,
            expiresAtMillis: expiresAtMillis,
            revokedAtMillis: nil,
            person: person
        )
    }

    /// Refuses a second successor: a token has one, which takes over its devices' replica ids; another would hold a
    /// secret no device can use (its pushes are refused `replica_mismatch`). A successor revoked or expired since
    /// no longer counts (its secret was lost before a device took it, say).
    static func checkNoSuccessor(
        of previous: TokenEntry,
        among successors: [TokenEntry],
        now: UInt64
    ) throws(ServerError) {
        guard let active = successors.first(where: { $0.isUsable(at: now) }) else { return }
        throw ServerError.parameter(
            "token",
            "\(previous.id) has a successor already, \(active.id), which is active; rotate \(active.id) instead (or "
                + "revoke it first, then issue \(previous.id)'s successor again)"
        )
    }

    /// The draft of a successor token: the same practice, role, scope and person, a new label if given.
    static func successor(
        of previous: TokenEntry,
        label: String?,
        expiresAtMillis: UInt64?,
        now: UInt64
    ) -> TokenEntry {
        var entry = previous
        entry.label = label ?? previous.label
        entry.createdAtMillis = now
        entry.expiresAtMillis = expiresAtMillis
        entry.revokedAtMillis = nil
        entry.successorOf = previous.id
        return entry
    }

    /// When the predecessor of a rotation (`graceMillis`) stops working; refuses a grace for a token already
    /// unusable.
    static func graceEnd(of previous: TokenEntry, graceMillis: UInt64, now: UInt64) throws(ServerError) -> UInt64 {
        guard previous.isUsable(at: now) else {
            throw ServerError.parameter(
                "grace",
                "\(previous.id) is revoked or expired already: issue its successor without a grace period"
            )
        }
        return min(previous.expiresAtMillis ?? UInt64(Int64.max), now + graceMillis)
    }

    /// The audit action and detail of a successor's issue.
    static func successorAudit(_ issued: TokenEntry, previous: String, graceMillis: UInt64?) -> (String, String) {
        (
            graceMillis == nil ? "token.successor" : "token.rotate",
            "successor of \(previous)"
                + (graceMillis.map { ", which keeps working \($0 / 1000) s" } ?? ", which is revoked") + "; "
                + describe(issued)
        )
    }

    /// A purge's reason trimmed, or the refusal of an empty one.
    static func purgeReason(_ reason: String) throws(ServerError) -> String {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw ServerError.malformed("a purge needs --reason: the legal ground, for the audit", field: "reason")
        }
        return trimmed
    }

    /// What a replica's first request with a token does (``SyncStorage/claimReplica(_:token:now:)``).
    enum Binding: Equatable {
        /// The replica is new: bind it to the token.
        case bind
        /// The replica is bound to the token already.
        case keep
        /// The replica moves to the token, a successor of the bound one.
        case rebind
    }

    /// Decides a replica's binding from its current one (`nil` for a new replica) and the presenting token's
    /// predecessors (nearest first); refuses a retired replica or one bound to an unrelated token.
    static func binding(
        _ replica: ReplicaID,
        bound: (token: String, isRetired: Bool)?,
        token: String,
        predecessors: [String]
    ) throws(ServerError) -> Binding {
        guard let bound else { return .bind }
        guard !bound.isRetired else {
            throw ServerError(
                .replicaMismatch,
                .forbidden,
                "replica \(replica) was retired by an administrator and may not sync; make a new replica with "
                    + "'outpost init' (export what it holds first)"
            )
        }
        if bound.token == token { return .keep }
        guard predecessors.contains(bound.token) else {
            throw ServerError(
                .replicaMismatch,
                .forbidden,
                "replica \(replica) belongs to another device; each device uses its own replica id (a device "
                    + "given a new token needs one issued with 'outpost-server token issue --successor-of')"
            )
        }
        return .rebind
    }

    /// The buckets of the `outpost_devices` gauge: seen within a day, a week, a month, or longer.
    static let stalenessBuckets: [(String, UInt64)] = [
        ("1d", 86_400_000), ("7d", 7 * 86_400_000), ("30d", 30 * 86_400_000), ("older", .max),
    ]

    /// Counts devices last seen at `lastSeen` into ``stalenessBuckets``.
    static func staleness(lastSeen: [Int64], now: UInt64) -> [(bucket: String, count: Int)] {
        var counts = Dictionary(uniqueKeysWithValues: stalenessBuckets.map { ($0.0, 0) })
        for seen in lastSeen {
            let age = now > UInt64(max(0, seen)) ? now - UInt64(max(0, seen)) : 0
            if let bucket = stalenessBuckets.first(where: { age < $0.1 }) { counts[bucket.0, default: 0] += 1 }
        }
        return stalenessBuckets.map { ($0.0, counts[$0.0] ?? 0) }
    }

    /// A device's scope in words for the listing: `practice`, or its site and team ids.
    static func scopeText(sites: String, teams: String) -> String {
        let scope = (sites + "," + teams).split(separator: ",").joined(separator: ",")
        return scope.isEmpty ? "practice" : scope
    }

    /// A conflict as listed, from its record's stored state; `nil` when the field holds no conflict (any more).
    static func conflict(
        practice: String,
        record: RecordRef,
        field: String,
        state: [UInt8],
        detectedAt: Int64
    ) throws -> ServerConflict? {
        var reader = BinaryReader(state)
        let state = try reader.readRecordState()
        guard let policy = CareModel.schema.policy(type: record.type, field: field),
            let conflict = FieldConflict(record: record, field: field, state: state[field], policy: policy)
        else { return nil }
        return ServerConflict(
            id: "\(record.id).\(field)",
            practice: practice,
            conflict: conflict,
            detectedAtMillis: UInt64(max(0, detectedAt))
        )
    }

    /// The system user running this process, for the audit log: `SUDO_USER` when run through sudo, else `USER`,
    /// else the numeric user id.
    static var currentActor: String {
        let environment = ProcessInfo.processInfo.environment
        if let user = environment["SUDO_USER"] ?? environment["USER"], !user.isEmpty { return user }
        // No USER (a service, a container): the account's name from the system, else its number.
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "uid \(getuid())"
    }

    /// A token's grants in words, for the audit log.
    static func describe(_ token: TokenEntry) -> String {
        var parts = ["role \(token.role.rawValue)"]
        parts.append(
            token.scope.isWholePractice
                ? "scope practice" : "scope " + (token.scope.sites + token.scope.teams).joined(separator: ",")
        )
        if let person = token.person { parts.append("person \(person)") }
        if let expiry = token.expiresAtMillis { parts.append("expires at \(expiry)") }
        if !token.label.isEmpty { parts.append("label \"\(token.label)\"") }
        return parts.joined(separator: ", ")
    }
}

extension ServerError {
    /// `not_found` for a practice.
    static func noPractice(_ id: String) -> ServerError {
        ServerError(
            .notFound,
            .notFound,
            "no practice \(id); list them with 'outpost-server practice list'",
            field: "practice"
        )
    }

    /// `not_found` for a token.
    static func noToken(_ id: String) -> ServerError {
        ServerError(.notFound, .notFound, "no token \(id); list them with 'outpost-server token list'", field: "token")
    }

    /// `invalid_parameter` for a token's person who is not the practice's.
    static func notAPerson(_ person: String, practice: String) -> ServerError {
        ServerError.parameter(
            "person",
            "\(person) is not a person of practice \(practice); list them with 'outpost person list' on a synced "
                + "replica"
        )
    }

    /// `invalid_parameter` for a token scoped to a team or site that is not the practice's (a typo would scope the
    /// token to nothing, silently).
    static func notInPractice(_ id: String, _ type: RecordType, practice: String) -> ServerError {
        ServerError.parameter(
            type == .team ? "teams" : "sites",
            "\(id) is not a \(type) of practice \(practice); list them with 'outpost \(type) list' on a synced "
                + "replica"
        )
    }

    /// `not_found` for a purge of an unknown patient.
    static func noPatient(_ patient: String, practice: String) -> ServerError {
        ServerError(.notFound, .notFound, "no patient \(patient) in practice \(practice)", field: "patient")
    }

    /// `not_found` for a device.
    static func noDevice(_ replica: String, practice: String) -> ServerError {
        ServerError(
            .notFound,
            .notFound,
            "practice \(practice) has no device \(replica); list them with 'outpost-server devices'",
            field: "replica"
        )
    }
}

extension Scope {
    /// The records a token's scope names, each with its type: looked up before the token is issued.
    var namedRecords: [(id: String, type: RecordType)] {
        teams.map { ($0, RecordType.team) } + sites.map { ($0, RecordType.site) }
    }
}
