import Foundation
import GRDB
import OutpostCRDT
import OutpostProtocol

/// The SQLite store's schema migrations: never edited once shipped; a change of schema is a new migration.
extension ServerStore {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE practice (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        createdAt INTEGER NOT NULL
                    );
                    CREATE TABLE token (
                        id TEXT PRIMARY KEY NOT NULL,
                        hash TEXT NOT NULL UNIQUE,
                        practice TEXT NOT NULL REFERENCES practice(id),
                        role TEXT NOT NULL,
                        scopeSites TEXT NOT NULL,
                        scopeTeams TEXT NOT NULL,
                        label TEXT NOT NULL,
                        createdAt INTEGER NOT NULL,
                        expiresAt INTEGER,
                        revokedAt INTEGER
                    );
                    CREATE TABLE device (
                        replica TEXT PRIMARY KEY NOT NULL,
                        practice TEXT NOT NULL REFERENCES practice(id),
                        token TEXT NOT NULL REFERENCES token(id),
                        acknowledged INTEGER NOT NULL,
                        firstSeen INTEGER NOT NULL,
                        lastSeen INTEGER NOT NULL
                    );
                    CREATE TABLE change (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        practice TEXT NOT NULL,
                        replica TEXT NOT NULL,
                        counter INTEGER NOT NULL,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        owner TEXT,
                        payload BLOB NOT NULL,
                        UNIQUE (replica, counter)
                    );
                    CREATE INDEX change_by_practice ON change (practice, seq);
                    CREATE TABLE record (
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        practice TEXT NOT NULL,
                        owner TEXT,
                        state BLOB NOT NULL,
                        PRIMARY KEY (type, id)
                    ) WITHOUT ROWID;
                    CREATE INDEX record_by_practice ON record (practice, type, id);
                    CREATE TABLE conflict (
                        practice TEXT NOT NULL,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        field TEXT NOT NULL,
                        detectedAt INTEGER NOT NULL,
                        PRIMARY KEY (type, id, field)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("v2-scopes") { db in
            // What decides a patient's scope (primary team, sites), kept current on every push, and which
            // patients each scoped device has been sent: `state` 'in' (its records were sent) or 'out' (told
            // to purge), `at` the checkpoint of that answer and `atSince` the checkpoint it answered; the
            // device has applied it once it pulls from at or past `at` (and past `atSince`).
            try db.execute(
                sql: """
                    CREATE TABLE patient_scope (
                        patient TEXT PRIMARY KEY NOT NULL,
                        practice TEXT NOT NULL,
                        team TEXT
                    ) WITHOUT ROWID;
                    CREATE INDEX patient_scope_by_team ON patient_scope (practice, team);
                    CREATE TABLE patient_site (
                        patient TEXT NOT NULL,
                        site TEXT NOT NULL,
                        PRIMARY KEY (patient, site)
                    ) WITHOUT ROWID;
                    CREATE INDEX patient_site_by_site ON patient_site (site);
                    CREATE TABLE device_patient (
                        replica TEXT NOT NULL,
                        patient TEXT NOT NULL,
                        state TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        atSince INTEGER NOT NULL,
                        PRIMARY KEY (replica, patient)
                    ) WITHOUT ROWID;
                    CREATE INDEX record_by_owner ON record (owner) WHERE owner IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v3-purges") { db in
            // Legal purges: which patient, when, why, and the feed position every device must pass to learn
            // of it. The patient's data is gone; this row (an id, not patient data) remains as the audit entry.
            try db.execute(
                sql: """
                    CREATE TABLE purge (
                        practice TEXT NOT NULL,
                        patient TEXT NOT NULL,
                        position INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        records INTEGER NOT NULL,
                        at INTEGER NOT NULL,
                        PRIMARY KEY (practice, patient)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("v4-per-practice") { db in
            // Ids are per practice: the same record, replica or patient id in two practices is two things, and no
            // answer to one practice depends on what another holds. Every key starts with the practice. Tokens
            // may be bound to a person (who alone may author its changes) and may succeed another token (taking
            // over its devices' replica ids).
            let sequence = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'change'")
            try db.execute(
                sql: """
                    CREATE TABLE record_v4 (
                        practice TEXT NOT NULL,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        owner TEXT,
                        state BLOB NOT NULL,
                        PRIMARY KEY (practice, type, id)
                    ) WITHOUT ROWID;
                    INSERT INTO record_v4 SELECT practice, type, id, owner, state FROM record;
                    DROP TABLE record;
                    ALTER TABLE record_v4 RENAME TO record;
                    CREATE INDEX record_by_owner ON record (practice, owner) WHERE owner IS NOT NULL;

                    CREATE TABLE conflict_v4 (
                        practice TEXT NOT NULL,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        field TEXT NOT NULL,
                        detectedAt INTEGER NOT NULL,
                        PRIMARY KEY (practice, type, id, field)
                    ) WITHOUT ROWID;
                    INSERT INTO conflict_v4 SELECT practice, type, id, field, detectedAt FROM conflict;
                    DROP TABLE conflict;
                    ALTER TABLE conflict_v4 RENAME TO conflict;

                    CREATE TABLE change_v4 (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        practice TEXT NOT NULL,
                        replica TEXT NOT NULL,
                        counter INTEGER NOT NULL,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        owner TEXT,
                        payload BLOB NOT NULL,
                        UNIQUE (practice, replica, counter)
                    );
                    INSERT INTO change_v4 SELECT seq, practice, replica, counter, type, id, owner, payload FROM change;
                    DROP TABLE change;
                    ALTER TABLE change_v4 RENAME TO change;
                    CREATE INDEX change_by_practice ON change (practice, seq);
                    CREATE INDEX change_by_record ON change (practice, type, id);

                    CREATE TABLE device_v4 (
                        practice TEXT NOT NULL REFERENCES practice(id),
                        replica TEXT NOT NULL,
                        token TEXT NOT NULL REFERENCES token(id),
                        acknowledged INTEGER NOT NULL,
                        firstSeen INTEGER NOT NULL,
                        lastSeen INTEGER NOT NULL,
                        PRIMARY KEY (practice, replica)
                    ) WITHOUT ROWID;
                    INSERT INTO device_v4 SELECT practice, replica, token, acknowledged, firstSeen, lastSeen FROM device;
                    DROP TABLE device;
                    ALTER TABLE device_v4 RENAME TO device;

                    CREATE TABLE patient_scope_v4 (
                        practice TEXT NOT NULL,
                        patient TEXT NOT NULL,
                        team TEXT,
                        PRIMARY KEY (practice, patient)
                    ) WITHOUT ROWID;
                    INSERT INTO patient_scope_v4 SELECT practice, patient, team FROM patient_scope;
                    DROP TABLE patient_scope;
                    ALTER TABLE patient_scope_v4 RENAME TO patient_scope;
                    CREATE INDEX patient_scope_by_team ON patient_scope (practice, team);

                    CREATE TABLE patient_site_v4 (
                        practice TEXT NOT NULL,
                        patient TEXT NOT NULL,
                        site TEXT NOT NULL,
                        PRIMARY KEY (practice, patient, site)
                    ) WITHOUT ROWID;
                    INSERT INTO patient_site_v4
                        SELECT p.practice, s.patient, s.site FROM patient_site s JOIN patient_scope p USING (patient);
                    DROP TABLE patient_site;
                    ALTER TABLE patient_site_v4 RENAME TO patient_site;
                    CREATE INDEX patient_site_by_site ON patient_site (practice, site);

                    CREATE TABLE device_patient_v4 (
                        practice TEXT NOT NULL,
                        replica TEXT NOT NULL,
                        patient TEXT NOT NULL,
                        state TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        atSince INTEGER NOT NULL,
                        PRIMARY KEY (practice, replica, patient)
                    ) WITHOUT ROWID;
                    INSERT INTO device_patient_v4
                        SELECT d.practice, p.replica, p.patient, p.state, p.at, p.atSince
                        FROM device_patient p JOIN device d USING (replica);
                    DROP TABLE device_patient;
                    ALTER TABLE device_patient_v4 RENAME TO device_patient;

                    ALTER TABLE token ADD COLUMN person TEXT;
                    ALTER TABLE token ADD COLUMN successorOf TEXT;
                    """
            )
            // The feed's sequence survives the rebuild, including positions a purge reserved past the last change.
            try ServerStore.reserveFeedPosition(atLeast: sequence ?? 0, db: db)
        }
        // Changes were stored as their wire JSON; they are stored in the CRDT core's binary change encoding
        // (``StoredChange``), about a fifth of the size, read without a JSON decoder on every pull, and compared
        // byte for byte to find a duplicate push.
        migrator.registerMigration("v5-binary-changes") { db in
            let decoder = Wire.makeDecoder()
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, payload FROM change")
            var converted: [(Int64, Data)] = []
            while let row = try rows.next() {
                let change = try decoder.decode(Change.self, from: row["payload"] as Data)
                converted.append((row["seq"], Data(StoredChange.encode(change))))
            }
            for (seq, payload) in converted {
                try db.cachedStatement(sql: "UPDATE change SET payload = ? WHERE seq = ?")
                    .execute(arguments: [payload, seq])
            }
        }
        // Every administrator's act (ServerStore+Audit.swift), written in the act's transaction.
        migrator.registerMigration("v6-audit") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        at INTEGER NOT NULL,
                        actor TEXT NOT NULL,
                        action TEXT NOT NULL,
                        practice TEXT,
                        subject TEXT,
                        detail TEXT NOT NULL
                    );
                    CREATE INDEX audit_by_practice ON audit (practice, seq);
                    """
            )
        }
        // Replication health (ServerStore+Devices.swift): what each device last did and last reported.
        migrator.registerMigration("v7-device-health") { db in
            try db.execute(
                sql: """
                    ALTER TABLE device ADD COLUMN lastPush INTEGER;
                    ALTER TABLE device ADD COLUMN lastPull INTEGER;
                    ALTER TABLE device ADD COLUMN pulledTo INTEGER;
                    ALTER TABLE device ADD COLUMN outbox INTEGER;
                    ALTER TABLE device ADD COLUMN client TEXT;
                    ALTER TABLE device ADD COLUMN retiredAt INTEGER;
                    """
            )
        }
        // Server epochs (ServerStore+Backup.swift): a random id, replaced by every restore from a backup.
        migrator.registerMigration("v8-server-epoch") { db in try ServerStore.createServerMeta(db) }
        // Coordinated compaction's feed floor and the devices' refused counts (ServerStore+Compaction.swift).
        registerCompactionMigrations(&migrator)
        // The changes are no longer indexed by record. Edits to records all over a practice (two sites' offline
        // days) inserted an entry at a random page of that index per change, about a third of the SQL time of
        // such a push. What looked changes up by record walks the practice's feed instead (compaction by feed
        // position, a purge once per patient); only changes without an owner, which a later push may give one,
        // keep a (small) index by record.
        migrator.registerMigration("v10-changes-by-feed") { db in
            try db.execute(
                sql: """
                    DROP INDEX change_by_record;
                    CREATE INDEX change_ownerless ON change (practice, type, id) WHERE owner IS NULL;
                    """
            )
        }
        // A change row holds a run of one record's changes from one push (``ChangeRuns``): `count` changes at the
        // feed positions up to `seq`, `counter` the first's. The existing rows are runs of one; their payloads, one
        // change of one record, are already the encoding of a run.
        migrator.registerMigration("v11-change-runs") { db in
            try db.execute(sql: "ALTER TABLE change ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
        }
        // What a device is known to hold, for compaction (``ServerStore/recordDevice(_:practice:report:now:pushed:
        // pulledTo:pulledFrom:db:)``): `pulledTo` is the checkpoint last sent, which the device may never have
        // written.
        migrator.registerMigration("v12-device-held") { db in
            try db.execute(
                sql: """
                    ALTER TABLE device ADD COLUMN pulledFrom INTEGER;
                    ALTER TABLE device ADD COLUMN heldTo INTEGER;
                    """
            )
        }
        // Changes accepted for a record the practice holds, not yet merged into its state (``TailFolder``): a
        // push appends here instead of rewriting the record's row.
        migrator.registerMigration("v13-record-tails") { db in
            try db.execute(
                sql: """
                    CREATE TABLE record_tail (
                        practice TEXT NOT NULL,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        payload BLOB NOT NULL,
                        PRIMARY KEY (practice, type, id, seq)
                    ) WITHOUT ROWID;
                    """
            )
        }
        // Whether a change row's run begins with the first change of its record (``PushPlan/createsRecord()``):
        // what a layout-3 pull page names in full. Rows stored before it may: 1.
        migrator.registerMigration("v14-change-creates") { db in
            try db.execute(sql: "ALTER TABLE change ADD COLUMN creates INTEGER NOT NULL DEFAULT 1")
        }
        // The ids of the records legal purges erased (ids only): a push's changes to them are acknowledged and not
        // stored (``PushJudge/erasedRecords(of:context:)``). Purges before it kept only the patient's id, which is
        // all they can give: edits to their other records without the `patient` field are not recognised.
        migrator.registerMigration("v15-erased") { db in
            try db.execute(
                sql: """
                    CREATE TABLE erased (
                        practice TEXT NOT NULL,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        PRIMARY KEY (practice, type, id)
                    ) WITHOUT ROWID;
                    INSERT OR IGNORE INTO erased (practice, type, id) SELECT practice, 'patient', patient FROM purge;
                    """
            )
        }
        // The patient a push's erasure gave a record to (``PushPlan/erasing``), for the records devices may hold
        // without an owner: a pull that names the patient's purge in `removed` names them too. `NULL` for the
        // records a purge itself erased (devices remove those with their patient).
        migrator.registerMigration("v16-erased-patient") { db in
            try db.execute(
                sql: """
                    ALTER TABLE erased ADD COLUMN patient TEXT;
                    CREATE INDEX erased_patient ON erased (practice, patient) WHERE patient IS NOT NULL;
                    """
            )
        }
        return migrator
    }
}
