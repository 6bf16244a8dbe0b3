import Foundation
import GRDB
import HTTPTypes
import OutpostCRDT
import OutpostModel
public import OutpostProtocol

/// The SQLite backend of the administration commands.
extension ServerStore: AdminStorage {
    /// Adds a practice and returns it.
    public func addPractice(
        name: String,
        now: UInt64,
        generator: inout some RandomNumberGenerator
    ) throws(ServerError)
        -> PracticeEntry
    {
        let entry = try AdminRules.makePractice(name: name, now: now, generator: &generator)
        try write { db in try Self.insertPractice(entry, now: now, db: db) }
        return entry
    }

    public func addFirstPractice(
        name: String,
        now: UInt64,
        generator: inout some RandomNumberGenerator
    ) throws(ServerError) -> PracticeEntry? {
        let entry = try AdminRules.makePractice(name: name, now: now, generator: &generator)
        return try write { db in
            // One writer at a time: the check and the insert see the same store.
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM practice)") == false else { return nil }
            try Self.insertPractice(entry, now: now, db: db)
            return entry
        }
    }

    /// Inserts `entry` with its audit entry.
    static func insertPractice(_ entry: PracticeEntry, now: UInt64, db: Database) throws {
        try db.execute(
            sql: "INSERT INTO practice (id, name, createdAt) VALUES (?, ?, ?)",
            arguments: [entry.id, entry.name, Int64(now)]
        )
        try audit("practice.add", practice: entry.id, subject: nil, detail: "name \"\(entry.name)\"", now: now, db: db)
    }

    /// Every practice, oldest first.
    public func practices() throws(ServerError) -> [PracticeEntry] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT id, name, createdAt FROM practice ORDER BY createdAt, id").map {
                PracticeEntry(id: $0["id"], name: $0["name"], createdAtMillis: UInt64($0["createdAt"] as Int64))
            }
        }
    }

    /// The practice with `id`, if any.
    public func practice(_ id: String) throws(ServerError) -> PracticeEntry? {
        try practices().first { $0.id == id }
    }

    /// Issues a token and returns its secret, which is shown once and never stored.
    ///
    /// - Parameters:
    ///   - person: the person (`per_…`, a person of the practice) the token is issued to; its changes must be
    ///     signed by that person. `nil` for a shared device.
    /// - Throws: ``ServerError`` `not_found` for an unknown practice, `invalid_parameter` for a person who is
    ///   not one of the practice's.
    public func issueToken(
        practice: String,
        role: Role,
        scope: Scope,
        label: String,
        expiresAtMillis: UInt64?,
        person: String? = nil,
        now: UInt64
    ) throws(ServerError) -> (secret: TokenSecret, entry: TokenEntry) {
        let entry = AdminRules.draftToken(
            practice: practice,
            role: role,
            scope: scope,
            label: label,
            expiresAtMillis: expiresAtMillis,
            person: person,
            now: now
        )
        return try write { db in
            let issued = try Self.insertToken(entry, db: db)
            try Self.audit(
                "token.issue",
                practice: practice,
                subject: issued.entry.id,
                detail: AdminRules.describe(issued.entry),
                now: now,
                db: db
            )
            return issued
        }
    }

    /// Issues the successor of a token: a new secret with the same practice, role, scope and person, which takes
    /// over the replica ids of the devices that used the old one (their local data and outboxes continue under
    /// it). The old token is revoked at once, if it was not already.
    ///
    /// - Throws: ``ServerError`` `not_found` for an unknown token.
    ///
    /// - Parameter graceMillis: how long the old token keeps working (a rotation: the device switches to the new
    ///   secret with `outpost remote set --token`, keeping its binding and outbox); `nil` revokes it at once (a
    ///   lost or leaked token).
    public func issueSuccessor(
        of id: String,
        label: String?,
        expiresAtMillis: UInt64?,
        graceMillis: UInt64? = nil,
        now: UInt64
    ) throws(ServerError) -> (secret: TokenSecret, entry: TokenEntry) {
        try write { db in
            let row = try Self.tokenRow(id, db: db)
            let previous = Self.tokenEntry(row)
            let successors = try Row.fetchAll(db, sql: "SELECT * FROM token WHERE successorOf = ?", arguments: [id])
            try AdminRules.checkNoSuccessor(of: previous, among: successors.map(Self.tokenEntry), now: now)
            let entry = AdminRules.successor(of: previous, label: label, expiresAtMillis: expiresAtMillis, now: now)
            if let graceMillis {
                let until = try AdminRules.graceEnd(of: previous, graceMillis: graceMillis, now: now)
                try db.execute(
                    sql: "UPDATE token SET expiresAt = ? WHERE id = ?",
                    arguments: [Int64(until), previous.id]
                )
            } else {
                try db.execute(
                    sql: "UPDATE token SET revokedAt = COALESCE(revokedAt, ?) WHERE id = ?",
                    arguments: [Int64(now), previous.id]
                )
            }
            let issued = try Self.insertToken(entry, db: db)
            let (action, detail) = AdminRules.successorAudit(
                issued.entry,
                previous: previous.id,
                graceMillis: graceMillis
            )
            try Self.audit(
                action,
                practice: entry.practice,
                subject: issued.entry.id,
                detail: detail,
                now: now,
                db: db
            )
            return issued
        }
    }

    private static func insertToken(
        _ draft: TokenEntry,
        db: Database
    ) throws -> (secret: TokenSecret, entry: TokenEntry) {
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM practice WHERE id = ?", arguments: [draft.practice]) == true
        else {
            throw ServerError.noPractice(draft.practice)
        }
        if let person = draft.person {
            guard
                RecordType.person.isValidID(person),
                try Bool.fetchOne(
                    db,
                    sql: "SELECT 1 FROM record WHERE practice = ? AND type = 'person' AND id = ?",
                    arguments: [draft.practice, person]
                ) == true
            else {
                throw ServerError.notAPerson(person, practice: draft.practice)
            }
        }
        for (id, type) in draft.scope.namedRecords {
            guard
                try Bool.fetchOne(
                    db,
                    sql: "SELECT 1 FROM record WHERE practice = ? AND type = ? AND id = ?",
                    arguments: [draft.practice, type.rawValue, id]
                ) == true
            else { throw ServerError.notInPractice(id, type, practice: draft.practice) }
        }
        let secret = TokenSecret.make()
        var entry = draft
        entry.id = secret.id
        try db.execute(
            sql: """
                INSERT INTO token (id, hash, practice, role, scopeSites, scopeTeams, label, createdAt, expiresAt,
                                   person, successorOf)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                entry.id, secret.hash, entry.practice, entry.role.rawValue, entry.scope.sites.joined(separator: ","),
                entry.scope.teams.joined(separator: ","), entry.label, Int64(entry.createdAtMillis),
                entry.expiresAtMillis.map { Int64($0) }, entry.person, entry.successorOf,
            ]
        )
        return (secret, entry)
    }

    /// The tokens of one practice, or of all when `practice` is `nil`, oldest first.
    public func tokens(practice: String? = nil) throws(ServerError) -> [TokenEntry] {
        try read { db in
            let rows =
                if let practice {
                    try Row.fetchAll(
                        db,
                        sql: "SELECT * FROM token WHERE practice = ? ORDER BY createdAt",
                        arguments: [practice]
                    )
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM token ORDER BY createdAt")
                }
            return rows.map(Self.tokenEntry)
        }
    }

    /// The token whose secret hashes to `hash`, if any (revoked and expired ones included).
    public func token(hash: String) async throws(ServerError) -> TokenEntry? {
        try await readAsync { db in
            try Row.fetchOne(db, sql: "SELECT * FROM token WHERE hash = ?", arguments: [hash]).map(Self.tokenEntry)
        }
    }

    /// Revokes a token; the next request made with it is refused. Revoking twice is harmless.
    ///
    /// - Throws: ``ServerError`` `not_found` for an unknown token id.
    public func revokeToken(id: String, now: UInt64) throws(ServerError) -> TokenEntry {
        try write { db in
            // Revoked already: nothing changes, and nothing more is audited.
            let previous = Self.tokenEntry(try Self.tokenRow(id, db: db))
            guard previous.revokedAtMillis == nil else { return previous }
            try db.execute(sql: "UPDATE token SET revokedAt = ? WHERE id = ?", arguments: [Int64(now), id])
            let entry = Self.tokenEntry(try Self.tokenRow(id, db: db))
            try Self.audit("token.revoke", practice: entry.practice, subject: id, detail: "", now: now, db: db)
            return entry
        }
    }

    /// The stored row of token `id`; `not_found` when there is none.
    static func tokenRow(_ id: String, db: Database) throws -> Row {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM token WHERE id = ?", arguments: [id]) else {
            throw ServerError.noToken(id)
        }
        return row
    }

    static func tokenEntry(_ row: Row) -> TokenEntry {
        func ids(_ text: String) -> [String] { text.split(separator: ",").map(String.init) }
        return TokenEntry(
            id: row["id"],
            practice: row["practice"],
            role: Role(rawValue: row["role"]) ?? .clinician,
            scope: Scope(sites: ids(row["scopeSites"]), teams: ids(row["scopeTeams"])),
            label: row["label"],
            createdAtMillis: UInt64(row["createdAt"] as Int64),
            expiresAtMillis: (row["expiresAt"] as Int64?).map { UInt64($0) },
            revokedAtMillis: (row["revokedAt"] as Int64?).map { UInt64($0) },
            person: row["person"],
            successorOf: row["successorOf"]
        )
    }
}
