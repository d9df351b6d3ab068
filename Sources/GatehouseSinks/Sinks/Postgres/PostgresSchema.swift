import Foundation
import Logging
import PostgresNIO

/// The sink's table, its migrations and its monthly partitions. Every change runs in a
/// transaction holding an advisory lock on the table's name, so a district of gateways
/// starting at once migrates and partitions the shared table once, not in a race.
struct PostgresSchema: Sendable {
    let table: String
    let partitionsAhead: Int

    /// The version this build writes; a table at a higher version was migrated by a newer
    /// gateway, whose columns this build might fill wrongly, so it refuses to insert.
    static var currentVersion: Int { 2 }

    /// One list of statements per version; version N is `migrations[N - 1]`. Add a version,
    /// never edit one: a gateway that applied it will not apply it again.
    var migrations: [[String]] {
        [
            [
                // A partitioned table's unique key must contain the partition column, so the key is
                // (id, occurred_at). An event id is a UUIDv7 assigned once at ingest and a retry
                // resends the same body, so the same id never comes with another occurred_at:
                // id alone is unique in practice.
                """
                CREATE TABLE \(table) (
                    id uuid NOT NULL,
                    occurred_at timestamptz NOT NULL,
                    received_at timestamptz NOT NULL,
                    site text NOT NULL,
                    device text NOT NULL,
                    kind text NOT NULL,
                    priority text NOT NULL,
                    subject_type text,
                    subject text,
                    body jsonb NOT NULL,
                    stored_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (id, occurred_at)
                ) PARTITION BY RANGE (occurred_at)
                """,
                // Catches events outside every monthly partition (a device clock in 1970 or 2099)
                // so no insert is ever refused for its time.
                "CREATE TABLE \(table)_default PARTITION OF \(table) DEFAULT",
                "CREATE INDEX \(table)_site_idx ON \(table) (site, occurred_at)",
                "CREATE INDEX \(table)_device_idx ON \(table) (device, occurred_at)",
                "CREATE INDEX \(table)_kind_idx ON \(table) (kind, occurred_at)",
                "CREATE INDEX \(table)_priority_idx ON \(table) (priority, occurred_at)",
                "CREATE INDEX \(table)_subject_idx ON \(table) (subject) WHERE subject IS NOT NULL",
                // Rows arrive roughly in time order: a BRIN index is tiny and enough for time ranges.
                "CREATE INDEX \(table)_occurred_idx ON \(table) USING brin (occurred_at)",
            ],
            // Version 2: fewer B-trees for an ingest table, each serving a query someone runs
            // (docs/benchmarks.md, "PostgreSQL sink"; the sink's README says what each is for).
            // A device id is unique only within its site's config, so "a device's events" names
            // the site too: one (site, device, occurred_at) index serves that and "a site's
            // events", for the cost of one. Nobody reads "all telemetry" by index: the priority
            // B-tree over every row becomes a partial index over the urgent (alarm) rows. A subject
            // (a keyed hash, a masked plate) is only ever looked up by equality: a hash index keeps
            // 4 bytes per row where the B-tree kept the whole 76-character value.
            // IF EXISTS: a DBA may already have dropped one of them by hand.
            [
                "DROP INDEX IF EXISTS \(table)_site_idx",
                "DROP INDEX IF EXISTS \(table)_device_idx",
                "DROP INDEX IF EXISTS \(table)_priority_idx",
                "DROP INDEX IF EXISTS \(table)_subject_idx",
                "CREATE INDEX \(table)_site_device_idx ON \(table) (site, device, occurred_at)",
                "CREATE INDEX \(table)_alarm_idx ON \(table) (site, occurred_at) WHERE priority = 'alarm'",
                "CREATE INDEX \(table)_subject_idx ON \(table) USING hash (subject) WHERE subject IS NOT NULL",
            ],
        ]
    }

    /// One multi-row insert of the whole batch: the bodies travel as one text[] parameter and the
    /// indexed columns are taken from each body by the server, so a body PostgreSQL refuses fails
    /// the statement and the runner splits the batch to find it.
    ///
    /// The array is cast to jsonb[] as a whole, so each body is parsed once. Casting each element
    /// in a subquery (`SELECT b::jsonb AS e FROM unnest(…) b`) let the planner inline the cast into
    /// every `e->>…` and parse each body ten times: 2.7 times slower (docs/benchmarks.md).
    var insertSQL: String {
        """
        INSERT INTO \(table) (id, occurred_at, received_at, site, device, kind, priority, subject_type, subject, body)
        SELECT (e->>'id')::uuid, (e->>'occurredAt')::timestamptz, (e->>'receivedAt')::timestamptz, e->>'site',
               e#>>'{device,id}', e->>'kind', e->>'priority', e#>>'{subject,type}', e#>>'{subject,value}', e
        FROM unnest($1::text[]::jsonb[]) AS e
        ON CONFLICT (id, occurred_at) DO NOTHING
        """
    }

    private var lockKey: String { "gatehouse:\(table)" }

    /// Creates the table or brings it to `currentVersion`.
    func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lockKey)))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS gatehouse_schema_version (
                    table_name text PRIMARY KEY, version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            var version = 0
            for try await found in try await connection.query(
                "SELECT version FROM gatehouse_schema_version WHERE table_name = \(table)", logger: logger
            ).decode(Int.self) {
                version = found
            }
            guard version <= Self.currentVersion else {
                throw PostgresSchemaError(
                    "table \(table) is at schema version \(version), newer than this gateway's \(Self.currentVersion); upgrade the gateway")
            }
            guard version < Self.currentVersion else { return }
            // Building indexes over a populated table's rows can take longer than the sink's
            // statement_timeout; the advisory lock already keeps other gateways waiting.
            try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
            for statements in migrations[version...] {
                for statement in statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
            try await connection.query(
                """
                INSERT INTO gatehouse_schema_version (table_name, version) VALUES (\(table), \(Self.currentVersion))
                ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, migrated_at = now()
                """, logger: logger)
            logger.notice("postgres: table \(table) migrated from schema version \(version) to \(Self.currentVersion)")
        }
    }

    /// The UTC months from `now`'s through `partitionsAhead` later, as (first day, first day of the next).
    func months(from now: Date) -> [(start: DateComponents, end: DateComponents)] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let current = calendar.dateComponents([.year, .month], from: now)
        return (0...partitionsAhead).map { offset in
            let month = (current.month ?? 1) - 1 + offset
            let start = DateComponents(year: (current.year ?? 1970) + month / 12, month: month % 12 + 1)
            let next = DateComponents(year: (current.year ?? 1970) + (month + 1) / 12, month: (month + 1) % 12 + 1)
            return (start, next)
        }
    }

    static func partitionSuffix(_ month: DateComponents) -> String {
        String(format: "%04d_%02d", month.year ?? 0, month.month ?? 0)
    }

    static func bound(_ month: DateComponents) -> String {
        String(format: "%04d-%02d-01 00:00:00+00", month.year ?? 0, month.month ?? 0)
    }

    /// Creates the monthly partitions from `now`'s month through `partitionsAhead` later that do not
    /// exist yet. Rows already in the default partition for such a month (a device clock running
    /// ahead) are moved into the new partition, which PostgreSQL otherwise refuses to create.
    func ensurePartitions(_ connection: PostgresConnection, now: Date, logger: Logger) async throws {
        for (start, end) in months(from: now) {
            let name = "\(table)_\(Self.partitionSuffix(start))"
            if try await exists(name, connection, logger: logger) { continue }
            let from = Self.bound(start)
            let to = Self.bound(end)
            let movedStrays = try await connection.withTransaction(logger: logger) { connection -> Bool in
                try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lockKey)))", logger: logger)
                if try await exists(name, connection, logger: logger) { return false }
                var strays = false
                for try await found in try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(table)_default WHERE occurred_at >= '\(from)' AND occurred_at < '\(to)')"),
                    logger: logger
                ).decode(Bool.self) {
                    strays = found
                }
                let create = "CREATE TABLE \(name) PARTITION OF \(table) FOR VALUES FROM ('\(from)') TO ('\(to)')"
                if strays {
                    for statement in [
                        "ALTER TABLE \(table) DETACH PARTITION \(table)_default",
                        create,
                        "INSERT INTO \(table) SELECT * FROM \(table)_default WHERE occurred_at >= '\(from)' AND occurred_at < '\(to)'",
                        "DELETE FROM \(table)_default WHERE occurred_at >= '\(from)' AND occurred_at < '\(to)'",
                        "ALTER TABLE \(table) ATTACH PARTITION \(table)_default DEFAULT",
                    ] {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                } else {
                    try await connection.query(PostgresQuery(unsafeSQL: create), logger: logger)
                }
                return strays
            }
            logger.notice("postgres: partition \(name) ready\(movedStrays ? " (events for its month moved out of \(table)_default)" : "")")
        }
    }

    private func exists(_ relation: String, _ connection: PostgresConnection, logger: Logger) async throws -> Bool {
        var found = false
        for try await name in try await connection.query("SELECT to_regclass(\(relation))::text", logger: logger)
            .decode(String?.self) {
            found = name != nil
        }
        return found
    }
}

/// The table cannot be used by this build (e.g. migrated by a newer one).
struct PostgresSchemaError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
