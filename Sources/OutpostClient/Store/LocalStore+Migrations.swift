import GRDB

extension LocalStore {
    /// The store's schema migrations. Never edit a migration once shipped: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // The replica's identity, clock, counter and sync position (one row).
            try db.execute(
                sql: """
                    CREATE TABLE replica (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        replicaID TEXT NOT NULL,
                        counter INTEGER NOT NULL DEFAULT 0,
                        clockMillis INTEGER NOT NULL DEFAULT 0,
                        clockCounter INTEGER NOT NULL DEFAULT 0,
                        ackedCounter INTEGER NOT NULL DEFAULT 0,
                        checkpoint TEXT,
                        serverURL TEXT,
                        lastSyncAt INTEGER,
                        createdAt INTEGER NOT NULL
                    );
                    -- Merged state of every record (binary field states).
                    CREATE TABLE record (
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        owner TEXT,
                        state BLOB NOT NULL,
                        PRIMARY KEY (type, id)
                    ) WITHOUT ROWID;
                    CREATE INDEX record_owner ON record (owner) WHERE owner IS NOT NULL;
                    -- The change log: every change seen, one row per record per transaction. Local rows with
                    -- maxCounter above replica.ackedCounter form the outbox.
                    CREATE TABLE change (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        isLocal INTEGER NOT NULL,
                        maxCounter INTEGER,
                        payload BLOB NOT NULL
                    );
                    CREATE INDEX change_record ON change (type, id);
                    CREATE INDEX change_outbox ON change (maxCounter) WHERE isLocal = 1;
                    -- Replica settings (the default author and site, display preferences).
                    CREATE TABLE setting (
                        key TEXT PRIMARY KEY NOT NULL,
                        value TEXT NOT NULL
                    ) WITHOUT ROWID;
                    -- The conflict inbox: fields with concurrent values awaiting review.
                    CREATE TABLE conflict (
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        field TEXT NOT NULL,
                        detectedAt INTEGER NOT NULL,
                        PRIMARY KEY (type, id, field)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("v2-clock-offset") { db in
            // How far the server's clock is from this device's, in milliseconds (server minus device), as
            // learned at the last sync session; local edits are stamped with the device's clock plus this.
            try db.execute(sql: "ALTER TABLE replica ADD COLUMN clockOffsetMillis INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v3-compact-rows") { _ in
            // No table changes: from this version on, record states and change-log rows are written in the
            // store's compact format 2 (StoreCodec), and rows of format 1 are still read. The migration is
            // registered so that an older Outpost, which cannot read format 2, refuses the store as written
            // by a newer version instead of failing on its rows.
        }
        migrator.registerMigration("v4-record-tail") { db in
            // Appends to a record (a log's entries) are written as change-log rows only, without re-encoding
            // the record's state: `tailStart` is the first change-log row (seq) of the record not yet folded
            // into `state` (NULL when the state holds every change), `tailBytes` the size of those rows. The
            // next transaction that loads the record folds them in and writes the state whole; so does an
            // append once the tail outgrows the state. Existing rows hold every change: NULL and 0.
            try db.execute(
                sql: """
                    ALTER TABLE record ADD COLUMN tailStart INTEGER;
                    ALTER TABLE record ADD COLUMN tailBytes INTEGER NOT NULL DEFAULT 0;
                    """
            )
        }
        migrator.registerMigration("v5-store-key") { db in
            // Encryption at rest (docs/store.md): the key row of an encrypted store (none in a plain store). Its
            // presence means every record state and change-log row is sealed (StoreCipher); an older Outpost,
            // which would read them as malformed, refuses the store as written by a newer version.
            try db.execute(
                sql: """
                    CREATE TABLE storeKey (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        method TEXT NOT NULL,
                        salt BLOB NOT NULL,
                        scryptRounds INTEGER,
                        scryptBlockSize INTEGER,
                        scryptParallelism INTEGER,
                        wrappedKey BLOB NOT NULL,
                        keyCheck BLOB NOT NULL
                    )
                    """
            )
        }
        migrator.registerMigration("v6-projection") { db in
            // The projection (LocalStore+Projection.swift): indexed tables of the fields lists filter and sort
            // on, derived from the record states. Created here, filled when the store is opened (the fill
            // decodes the states, which needs the key of an encrypted store): a store that already holds records
            // is marked stale (projection_stale), and LocalStore.open fills it before it is used.
            try db.execute(sql: Projection.schemaSQL)
            try db.execute(
                sql: "INSERT INTO projection_stale (id) SELECT 1 WHERE EXISTS (SELECT 1 FROM record)"
            )
        }
        migrator.registerMigration("v7-refused-changes") { db in
            // Changes the server refused one by one (protocol/README.md, "Per-change refusals"), held aside so
            // the rest of the outbox flows: a copy of the change (the store's format, sealed in an encrypted
            // store), the server's reason, and what the user did. `state` is `refused` (held), `retry` (sent
            // again with the next push) or `discarded` (never sent again; the row stays, with its reason, who
            // discarded it and when, so a discard is never silent). The replica's acknowledged counter moves past
            // a refused change: it is no longer in the outbox proper.
            try db.execute(
                sql: """
                    CREATE TABLE refused_change (
                        counter INTEGER PRIMARY KEY,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        payload BLOB NOT NULL,
                        code TEXT NOT NULL,
                        message TEXT NOT NULL,
                        field TEXT,
                        refusedAt INTEGER NOT NULL,
                        refusals INTEGER NOT NULL DEFAULT 1,
                        state TEXT NOT NULL CHECK (state IN ('refused', 'retry', 'discarded')),
                        discardReason TEXT,
                        discardedBy TEXT,
                        discardedAt INTEGER
                    )
                    """
            )
        }
        migrator.registerMigration("v8-projection-lean") { db in
            // The projection's indexes that no query needs go: nothing reads a task's gap keys, a patient's
            // gaps, an observation or an encounter through an index (those lists read the whole table); a
            // task's patient is its record's owner, already indexed (record_owner); a task's status is
            // selected with its team or person, or over all tasks (the scorecard's completed tasks, a scan of
            // small rows). The team and assignee indexes lose the due date: lists select on them and order
            // by id (the worklist's order is computed in memory). Every write of a task maintained them all;
            // the rows are unchanged, so nothing is rebuilt.
            try db.execute(
                sql: """
                    DROP INDEX task_gap_key;
                    DROP INDEX patient_gap_gap;
                    DROP INDEX observation_view_patient;
                    DROP INDEX observation_view_code;
                    DROP INDEX encounter_view_patient;
                    DROP INDEX encounter_view_kind;
                    DROP INDEX task_view_patient;
                    DROP INDEX task_view_status;
                    DROP INDEX task_view_team;
                    CREATE INDEX task_view_team ON task_view (team, isOpen);
                    DROP INDEX task_view_assignee;
                    CREATE INDEX task_view_assignee ON task_view (assignee, isOpen);
                    """
            )
        }
        migrator.registerMigration("v9-server-epoch") { db in
            // The server epoch this replica last synced with (LocalStore+Epoch.swift): when the server answers
            // with another one (it was restored from a backup), the replica bootstraps again and puts back in its
            // outbox its changes the server lacks.
            try db.execute(sql: "ALTER TABLE replica ADD COLUMN serverEpoch TEXT")
        }
        migrator.registerMigration("v10-projection-scorecard") { db in
            // The projection gains what the scorecard and gaps read (Projection.scorecardColumnsSQL), so that
            // they decode no patient, observation, encounter or task: the rows change, so a store that holds
            // records is marked stale and LocalStore.open rebuilds the projection (with the key of an encrypted
            // store) before it is used.
            try db.execute(sql: Projection.scorecardColumnsSQL)
            try db.execute(
                sql: "INSERT OR IGNORE INTO projection_stale (id) SELECT 1 WHERE EXISTS (SELECT 1 FROM record)"
            )
        }
        migrator.registerMigration("v11-retried-changes") { db in
            // Refused changes that were retried and then stored by the server (LocalStore+Refusals.swift): a copy
            // of the change (the store's format, sealed in an encrypted store), kept when it leaves
            // `refused_change`. Its counter is below later changes the server acknowledged, so a server restored
            // from a backup taken before it was stored would otherwise never be sent it again
            // (LocalStore+Epoch.swift). `resend` is 1 from such a restore until the server holds it again.
            // Never shown as refused; retries are rare (a person's act), so the table stays small.
            try db.execute(
                sql: """
                    CREATE TABLE retried_change (
                        counter INTEGER PRIMARY KEY,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        payload BLOB NOT NULL,
                        resend INTEGER NOT NULL DEFAULT 0
                    )
                    """
            )
        }
        migrator.registerMigration("v12-well-known-strings") { _ in
            // No table changes: from this version on, rows are written in the store's format 3 (StoreCodec:
            // the care model's field names and code values by index), and rows of formats 1 and 2 are still
            // read. Registered so that an older Outpost, which cannot read format 3, refuses the store as
            // written by a newer version instead of failing on its rows.
        }
        // Whether a local change-log row creates its record (the store did not hold it): its record is new to the
        // server until the row is pushed, so a push names it in full, and every other record by abbreviation
        // (binary layout 3). Rows written before it may: 1.
        migrator.registerMigration("v13-change-creates") { db in
            try db.execute(sql: "ALTER TABLE change ADD COLUMN creates INTEGER NOT NULL DEFAULT 1")
        }
        // How many write transactions the store has committed through ``LocalStore/write(doing:_:)`` (every write of
        // records, tails, projected rows or conflicts): a read made beside the writer names the state it saw by it,
        // so records read ahead of a write are used only when nothing but known writes came in between
        // (``LocalStore/preload(_:unprojected:)``). Registered so that an older Outpost, which would write without
        // counting, refuses the store.
        migrator.registerMigration("v14-write-generation") { db in
            try db.execute(sql: "ALTER TABLE replica ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
        }
        // `retried_change` also keeps this replica's changes to a patient that left its scope, which the device
        // removed (LocalStore+Sync.swift, `remove`): a server restored from a backup taken before it stored them is
        // sent them again. `patient` names the patient whose they are, so that its purge drops them; `NULL` for a
        // retried change kept before.
        migrator.registerMigration("v15-sealed-own-changes") { db in
            try db.execute(sql: "ALTER TABLE retried_change ADD COLUMN patient TEXT")
        }
        // `retried_change.sealed` marks the changes kept of a patient that left the scope (1), apart from the retried
        // changes (0): after a restore only those above what the restored store holds are sent, where every retried
        // change is. `refused_change.patient` names the patient of a refused change once that patient left the scope
        // (or of a kept change refused after a restore), so that the patient's purge drops it too.
        migrator.registerMigration("v16-sealed-and-refused-patient") { db in
            try db.execute(
                sql: """
                    ALTER TABLE retried_change ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX retried_change_patient ON retried_change (patient) WHERE patient IS NOT NULL;
                    ALTER TABLE refused_change ADD COLUMN patient TEXT;
                    CREATE INDEX refused_change_patient ON refused_change (patient) WHERE patient IS NOT NULL;
                    """
            )
        }
        // The scorecard reads an observation's unit (an HbA1c may be in % or mmol/mol): the projection gains it, and
        // a store holding records is marked stale, so LocalStore.open rebuilds the projection as v10 did.
        migrator.registerMigration("v17-observation-unit") { db in
            try db.execute(sql: Projection.observationUnitSQL)
            try db.execute(
                sql: "INSERT OR IGNORE INTO projection_stale (id) SELECT 1 WHERE EXISTS (SELECT 1 FROM record)"
            )
        }
        return migrator
    }
}
