import GRDB

/// Versioned schema migrations: an upgraded binary migrates the file in place and keeps
/// every queued event. Never edit a registered migration; add a new one.
enum QueueSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-events-cursors-quarantine") { db in
            // `seq` is insertion order, the unit sink cursors count in. AUTOINCREMENT because a
            // plain rowid restarts below the cursors once the table drains, and new events would
            // then look delivered.
            try db.execute(sql: """
                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    priority INTEGER NOT NULL,
                    device_id TEXT NOT NULL,
                    received_ms INTEGER NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX events_by_priority ON events(priority, seq);

                -- Remembers (device, dedup key) past delivery, so a device's late retry is still recognised.
                CREATE TABLE dedup (
                    device_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    seen_ms INTEGER NOT NULL,
                    PRIMARY KEY (device_id, key)
                ) WITHOUT ROWID;
                CREATE INDEX dedup_by_age ON dedup(seen_ms);

                -- One cursor per sink and priority: sinks read alarms first, so a single
                -- high-water mark cannot describe what was delivered.
                CREATE TABLE sink_cursors (
                    sink TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    seq INTEGER NOT NULL,
                    PRIMARY KEY (sink, priority)
                ) WITHOUT ROWID;

                -- How far a polled device's own log was read; written with the events it produced.
                CREATE TABLE device_cursors (
                    device_id TEXT PRIMARY KEY,
                    cursor TEXT NOT NULL,
                    updated_ms INTEGER NOT NULL
                ) WITHOUT ROWID;

                CREATE TABLE quarantine (
                    id INTEGER PRIMARY KEY,
                    received_ms INTEGER NOT NULL,
                    device_id TEXT,
                    driver TEXT NOT NULL,
                    route TEXT,
                    content_type TEXT,
                    remote TEXT,
                    reason TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    payload_bytes INTEGER NOT NULL,
                    replayed_ms INTEGER,
                    replayed_events TEXT
                );

                -- Running totals kept in the same transactions that change them.
                CREATE TABLE counters (
                    name TEXT PRIMARY KEY,
                    value INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v2-dedup-fingerprint") { db in
            // A dedup key is a hint, not an identity: a key seen again is a duplicate only with
            // the same content fingerprint, and one key may now stand for several events. Keys
            // remembered from v1 have no fingerprint (''), so a repeat of one of them is stored
            // again and counted as a collision: a possible duplicate, never a lost event.
            try db.execute(sql: """
                CREATE TABLE dedup_v2 (
                    device_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    seen_ms INTEGER NOT NULL,
                    PRIMARY KEY (device_id, key, fingerprint)
                ) WITHOUT ROWID;
                INSERT INTO dedup_v2(device_id, key, fingerprint, event_id, seen_ms)
                    SELECT device_id, key, '', event_id, seen_ms FROM dedup;
                DROP TABLE dedup;
                ALTER TABLE dedup_v2 RENAME TO dedup;
                CREATE INDEX dedup_by_age ON dedup(seen_ms);
                """)
        }
        migrator.registerMigration("v2-sealed-quarantine") { db in
            // Quarantined payloads and their full reasons are sealed with the quarantine key
            // (PayloadSealer); `reason` keeps only a redacted copy for listings. A NULL key_id is
            // a payload written in clear before this migration: EventQueue seals it at open.
            try db.execute(sql: """
                ALTER TABLE quarantine ADD COLUMN key_id TEXT;
                ALTER TABLE quarantine ADD COLUMN reason_sealed BLOB;
                """)
        }
        migrator.registerMigration("v3-application-id") { db in
            // Marks the file as a Gatehouse queue (queues created since 0.9 have it from the start),
            // so that a database that is not ours is recognised and refused before it is written.
            try db.execute(sql: "PRAGMA application_id = \(QueueFile.applicationID)")
        }
        migrator.registerMigration("v4-queued-per-priority") { db in
            // Queued events per priority, kept with the other counters, so a sink's lag is read
            // without counting the backlog. The one count here runs once, at the upgrade.
            try db.execute(sql: """
                INSERT INTO counters(name, value)
                    SELECT 'queued_events_p' || priority, COUNT(*) FROM events WHERE true GROUP BY priority
                    ON CONFLICT(name) DO UPDATE SET value = excluded.value
                """)
        }
        migrator.registerMigration("v5-dedup-log") { db in
            // Keys committed since the last fold, in insertion order (RecentDedupKeys): a commit
            // appends to the right-most page instead of writing one scattered `dedup` page per key.
            try db.execute(sql: """
                CREATE TABLE dedup_log (
                    seq INTEGER PRIMARY KEY,
                    device_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    seen_ms INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v6-quarantine-discard") { db in
            // A quarantined entry an operator discarded: who, when and why stay on the row; its
            // sealed payload and full reason are erased (nothing personal kept without purpose),
            // the payload's SHA-256 is kept so the entry can still be matched to a device's copy.
            try db.execute(sql: """
                ALTER TABLE quarantine ADD COLUMN discarded_ms INTEGER;
                ALTER TABLE quarantine ADD COLUMN discarded_by TEXT;
                ALTER TABLE quarantine ADD COLUMN discard_reason TEXT;
                ALTER TABLE quarantine ADD COLUMN payload_sha256 TEXT;
                """)
        }
        migrator.registerMigration("v7-sequence-in-memory") { db in
            // The sequence is handed out by the queue and stored with the counters as `last_seq`
            // (EventQueue+Totals): AUTOINCREMENT's `sqlite_sequence` row was a page written in every
            // commit. Dropping the keyword changes no byte of the table or its index, so the schema
            // text is edited in place (SQLite's documented procedure for such changes, "ALTER TABLE",
            // section 7) instead of copying a backlog that may hold a million events.
            let version = try Int.fetchOne(db, sql: "PRAGMA schema_version") ?? 0
            try db.execute(sql: """
                INSERT INTO counters(name, value)
                    SELECT 'last_seq', MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                                           COALESCE((SELECT MAX(seq) FROM events), 0))
                    ON CONFLICT(name) DO UPDATE SET value = excluded.value;
                DELETE FROM sqlite_sequence WHERE name = 'events';
                PRAGMA writable_schema = ON;
                UPDATE sqlite_master SET sql = replace(sql, 'seq INTEGER PRIMARY KEY AUTOINCREMENT', 'seq INTEGER PRIMARY KEY')
                    WHERE type = 'table' AND name = 'events';
                PRAGMA writable_schema = OFF;
                PRAGMA schema_version = \(version + 1);
                """)
        }
        return migrator
    }
}

/// Names of the persistent counters.
enum Counter {
    static let queuedEvents = "queued_events"
    static let queuedBytes = "queued_bytes"
    /// The highest event sequence number the stored counters include (EventQueue+Totals).
    static let lastSeq = "last_seq"
    static func queued(_ rank: Int) -> String { "queued_events_p\(rank)" }
    static let quarantineBytes = "quarantine_bytes"
    static let quarantined = "quarantined_total"
    static let duplicates = "duplicates_total"
    static let dedupCollisions = "dedup_collisions_total"
    static func evicted(_ rank: Int) -> String { "evicted_total_p\(rank)" }
    static let evictedQuarantine = "evicted_quarantine_total"
}
