import Foundation
@testable import GatehouseCore
import GatehouseQueue
@testable import GatehouseSinks
import GatehouseTesting
import Logging
import PostgresNIO
import Testing

/// The table's schema versions: a version 1 table (the gateway's first index set) migrated to
/// version 2 with its rows kept, a version newer than the build refused, and the promise of the
/// issue — site, device, kind, priority, time and subject queryable through an index — read from
/// the server's plans. Part of the serialized PostgreSQL suite (one shared cluster).
extension PostgresSinkTests {
    /// The parent index names version 2 leaves on a table.
    static let version2Indexes: Set<String> = ["site_device_idx", "kind_idx", "alarm_idx", "subject_idx", "occurred_idx"]

    func indexes(of table: String) async throws -> Set<String> {
        Set(try await postgres.column("SELECT indexname FROM pg_indexes WHERE tablename = '\(table)' AND indexname <> '\(table)_pkey'")
            .compactMap { $0?.replacingOccurrences(of: "\(table)_", with: "") })
    }

    /// Creates `table` exactly as a gateway with schema version 1 did, with `rows` events of an
    /// older gateway already in it (in the default partition: version 1 had no month of its own yet).
    func createVersion1Table(_ table: String, rows: Int) async throws -> [String] {
        let schema = PostgresSchema(table: table, partitionsAhead: 2)
        try await postgres.execute(
            """
            CREATE TABLE IF NOT EXISTS gatehouse_schema_version (
                table_name text PRIMARY KEY, version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())
            """)
        for statement in schema.migrations[0] { try await postgres.execute(statement) }
        try await postgres.execute("INSERT INTO gatehouse_schema_version (table_name, version) VALUES ('\(table)', 1)")
        let ids = (0..<rows).map { _ in UUID().uuidString.lowercased() }
        let now = Timestamp.now.description
        let bodies = ids.enumerated().map { index, id in
            let alarm = index % 2 == 0
            return """
                '{"id": "\(id)", "occurredAt": "\(now)", "receivedAt": "\(now)", "site": "old-site", "device": {"id": "door-\(index)"}, \
                "kind": "\(alarm ? "alarm.panic" : "access.granted")", "priority": "\(alarm ? "alarm" : "access")"}'
                """
        }
        try await postgres.execute(schema.insertSQL.replacingOccurrences(of: "$1", with: "ARRAY[\(bodies.joined(separator: ", "))]"))
        return ids
    }

    @Test func aVersion1TableIsMigratedToVersion2WithItsRowsKept() async throws {
        let table = TestPostgres.uniqueTable()
        let oldIDs = try await createVersion1Table(table, rows: 4)
        #expect(try await indexes(of: table).contains("priority_idx"))
        // A DBA already dropped one of the replaced indexes by hand: the migration still runs.
        try await postgres.execute("DROP INDEX \(table)_site_idx")

        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        let events = try await append(store, 3)
        let running = try RunningSink(sinkConfig(table: table), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()

        #expect(Set(try await ids(in: table)) == Set(oldIDs + events.map(\.id.description)))
        #expect(try await postgres.count("SELECT version FROM gatehouse_schema_version WHERE table_name = '\(table)'") == 2)
        #expect(try await indexes(of: table) == Self.version2Indexes)
        // Created on the parent, each index cascades to every partition, old and new.
        let month = "\(table)_\(PostgresSchema.partitionSuffix(PostgresSchema(table: table, partitionsAhead: 2).months(from: Date())[0].start))"
        for partition in ["\(table)_default", month] {
            let definitions = try await postgres.column("SELECT indexdef FROM pg_indexes WHERE tablename = '\(partition)'").compactMap { $0 }
            #expect(definitions.contains { $0.contains("(site, device, occurred_at)") }, "\(definitions)")
            #expect(definitions.contains { $0.contains("USING hash (subject) WHERE (subject IS NOT NULL)") }, "\(definitions)")
            #expect(definitions.contains { $0.contains("(site, occurred_at) WHERE (priority = 'alarm'::text)") }, "\(definitions)")
            for replaced in ["(priority, occurred_at)", "(device, occurred_at)"] {
                #expect(!definitions.contains { $0.contains(replaced) }, "\(definitions)")
            }
        }
    }

    @Test func aTableAtANewerSchemaVersionIsRefusedAndItsEventsWait() async throws {
        let table = TestPostgres.uniqueTable()
        _ = try await createVersion1Table(table, rows: 1)
        try await postgres.execute("UPDATE gatehouse_schema_version SET version = \(PostgresSchema.currentVersion + 1) WHERE table_name = '\(table)'")
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        try await append(store, 2)
        let running = try RunningSink(sinkConfig(table: table), queue: store.queue)
        #expect(await eventually { running.runner.status.lastError != nil })
        await running.finish()
        #expect(
            running.runner.status.lastError
                == "postgres: table \(table) is at schema version \(PostgresSchema.currentVersion + 1), newer than this gateway's \(PostgresSchema.currentVersion); upgrade the gateway")
        #expect(try await store.queue.lag(sink: "warehouse") == 2)
        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == 1)
        #expect(try await indexes(of: table).contains("priority_idx"), "a newer table is left as it is")
    }

    /// The issue's "indexed columns for site, device, kind, priority, occurredAt, subject": a query
    /// by each, planned by the server with sequential scans disabled (a table this small would
    /// otherwise be read whole), goes through that column's index on this month's partition.
    @Test func aQueryByEachIndexedColumnUsesItsIndex() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        try await append(store, 30)
        let now = Timestamp.now
        let alarm = Event(
            id: store.ids.next(), kind: .alarmPanic, occurredAt: now, receivedAt: now, site: "test-site",
            device: DeviceRef(id: "panic-1", vendor: "acme", type: .alarmPanel), source: Source(driver: "test"))
        _ = try await store.queue.appendNow([alarm])
        let running = try RunningSink(sinkConfig(table: table), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()

        let month = "\(table)_\(PostgresSchema.partitionSuffix(PostgresSchema(table: table, partitionsAhead: 2).months(from: now.date)[0].start))"
        let since = "'\(now.description)'::timestamptz - interval '1 hour'"
        let queries: [(indexes: String, sql: String)] = [
            ("site_device_idx", "SELECT id FROM \(table) WHERE site = 'test-site'"),
            // A device id is unique only within its site: a device's events are asked for with both.
            ("site_device_idx", "SELECT id FROM \(table) WHERE site = 'test-site' AND device = 'door-1' AND occurred_at >= \(since)"),
            ("kind_idx", "SELECT id FROM \(table) WHERE kind = 'access.granted'"),
            ("alarm_idx", "SELECT id FROM \(table) WHERE priority = 'alarm'"),
            ("alarm_idx", "SELECT id FROM \(table) WHERE priority = 'alarm' AND site = 'test-site' AND occurred_at >= \(since)"),
            // Time has the BRIN index, but every B-tree here ends with occurred_at and the key holds
            // it too: on a table this small the planner may walk one of those instead.
            ("occurred_idx site_device_idx kind_idx pkey", "SELECT id FROM \(table) WHERE occurred_at >= \(since)"),
            ("subject_idx", "SELECT id FROM \(table) WHERE subject = 'hmac-sha256:7'"),
        ]
        let plans = try await postgres.withConnection { connection in
            var logger = Logger(label: "test-postgres")
            logger.logLevel = .warning
            try await connection.query("SET enable_seqscan = off", logger: logger)
            var plans: [String] = []
            for (_, sql) in queries {
                var lines: [String] = []
                for try await line in try await connection.query(PostgresQuery(unsafeSQL: "EXPLAIN \(sql)"), logger: logger).decode(String.self) {
                    lines.append(line)
                }
                plans.append(lines.joined(separator: "\n"))
            }
            return plans
        }
        for ((accepted, _), plan) in zip(queries, plans) {
            // The partition's own index, as PostgreSQL named it when the parent's cascaded to it.
            var children: [String] = []
            for index in accepted.split(separator: " ") {
                children += try await postgres.column(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '\(table)_\(index)'::regclass"
                ).compactMap { $0 }.filter { $0.hasPrefix(month) }
            }
            #expect(children.count == accepted.split(separator: " ").count)
            #expect(children.contains { plan.contains(" \($0)") }, "\(accepted): \(plan)")
            #expect(!plan.contains("Seq Scan"), "\(accepted): \(plan)")
        }
        #expect(try await postgres.count("SELECT count(*) FROM \(table) WHERE priority = 'alarm'") == 1)
        #expect(try await postgres.count("SELECT count(*) FROM \(table) WHERE site = 'test-site' AND device = 'door-1'") == 10)
    }
}
