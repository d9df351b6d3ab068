import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSimulation
@testable import GatehouseSinks
import GatehouseTesting
import PostgresNIO
import Testing

/// The postgres sink and its runner against the real PostgreSQL 15 `scripts/test` starts. One
/// serialized suite: `serverCrashMidDelivery` stops that server, which no other test may see.
/// Each test writes its own table, so the shared cluster needs no cleaning.
@Suite(.serialized, .enabled(if: TestPostgres.isAvailable, "needs GATEHOUSE_TEST_POSTGRES_URL (scripts/test sets it)"))
struct PostgresSinkTests {
    var postgres: TestPostgres { TestPostgres.shared! }

    func sinkConfig(
        table: String, name: String = "warehouse", user: String? = nil, password: String? = nil, batch: Int = 100,
        partitionsAhead: Int = 2, backoffMax: Double = 0.5, connections: Int = 1, statementTimeout: Double = 30
    ) -> SinkConfig {
        SinkConfig(
            name: name, batchMaxEvents: batch, backoffInitialSeconds: 0.05, backoffMaxSeconds: backoffMax,
            settings: PostgresSinkConfig(
                host: postgres.host, port: postgres.port, database: postgres.database, user: user ?? postgres.user,
                password: Secret(value: password ?? postgres.password, origin: "test"), table: table,
                partitionsAhead: partitionsAhead, statementTimeoutSeconds: statementTimeout, connectTimeoutSeconds: 5,
                connections: connections))
    }

    /// Events of one kind at the given times (now by default), appended in order.
    func append(
        _ store: TestQueue, _ count: Int, at times: [Timestamp]? = nil, attributes: [String: JSONValue]? = nil
    ) async throws -> [Event] {
        let now = Timestamp.now
        let events = (0..<count).map { index in
            Event(
                id: store.ids.next(), kind: .accessGranted, occurredAt: times?[index] ?? now, receivedAt: now,
                site: "test-site", device: DeviceRef(id: "door-\(index % 3)", vendor: "acme", type: .doorController),
                point: "door-1", subject: Subject(type: .card, value: "hmac-sha256:\(index)"), attributes: attributes,
                source: Source(driver: "test"))
        }
        _ = try await store.queue.appendNow(events)
        return events
    }

    func ids(in table: String) async throws -> [String] {
        try await postgres.column("SELECT id::text FROM \(table)").compactMap { $0 }
    }

    @Test func createsTheTableItsPartitionsAndTheDefaultPartition() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        let now = Timestamp.now
        let farPast = Timestamp(milliseconds: 946_684_800_000)  // 2000-01-01: a reset device clock
        let farFuture = Timestamp(milliseconds: 4_102_444_800_000)  // 2100-01-01
        // This month + 3 is beyond partitions_ahead: 2 at first, so it lands in the default partition.
        let laterMonth = try #require(Calendar.utc.date(byAdding: .month, value: 3, to: now.date))
        let events = try await append(store, 4, at: [now, farPast, farFuture, Timestamp(laterMonth)])

        let running = try RunningSink(sinkConfig(table: table, partitionsAhead: 2), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()

        let months = PostgresSchema(table: table, partitionsAhead: 3).months(from: now.date).map {
            "\(table)_\(PostgresSchema.partitionSuffix($0.start))"
        }
        let partitions = Set(try await postgres.column(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '\(table)'::regclass"
        ).compactMap { $0 })
        #expect(partitions == Set(months.prefix(3) + ["\(table)_default"]))
        #expect(try await postgres.count("SELECT count(*) FROM \(table)_default") == 3)
        #expect(Set(try await ids(in: table)) == Set(events.map(\.id.description)))
        #expect(try await postgres.count("SELECT version FROM gatehouse_schema_version WHERE table_name = '\(table)'") == PostgresSchema.currentVersion)
        let indexes = Set(try await postgres.column("SELECT indexname FROM pg_indexes WHERE tablename = '\(table)'").compactMap { $0 })
        // A fresh table runs every migration: it ends with version 2's index set.
        #expect(indexes == Set(Self.version2Indexes.map { "\(table)_\($0)" } + ["\(table)_pkey"]))
        // The indexed columns come from the body.
        let row = try await postgres.column(
            "SELECT concat_ws('|', site, device, kind, priority, subject_type, subject, occurred_at = '\(now.description)'::timestamptz) FROM \(table) WHERE id = '\(events[0].id)'")
        #expect(row == ["test-site|door-0|access.granted|access|card|hmac-sha256:0|t"])

        // A later gateway keeping three months ahead creates the next month's partition and moves
        // the event already waiting in the default partition into it.
        let later = try RunningSink(sinkConfig(table: table, partitionsAhead: 3), queue: store.queue)
        try await append(store, 1)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await later.finish()
        #expect(try await postgres.column("SELECT tableoid::regclass::text FROM \(table) WHERE id = '\(events[3].id)'") == [months[3]])
        #expect(try await postgres.count("SELECT count(*) FROM \(table)_default") == 2)
        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == 5)
    }

    @Test func poisonedRowIsQuarantinedWhileItsBatchMatesLand() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        var events = try await append(store, 120)
        // jsonb refuses \u0000 in a string (SQLSTATE 22P05): a vendor string PostgreSQL cannot store.
        let poisoned = try await append(store, 1, attributes: ["note": .string("before\u{0}after")])[0]
        events += try await append(store, 79)

        let running = try RunningSink(sinkConfig(table: table, batch: 64), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()
        #expect(running.runner.status.rejectedEvents == 1)
        #expect(running.runner.status.deliveredEvents == Int64(events.count))

        let stored = try await ids(in: table)
        #expect(stored.count == events.count)
        #expect(Set(stored) == Set(events.map(\.id.description)))
        let quarantine = try await store.queue.quarantineEntries()
        #expect(quarantine.count == 1)
        #expect(quarantine.first?.driver == "sink:warehouse")
        #expect(quarantine.first?.reason.hasPrefix("rejected by sink warehouse: postgres:") == true)
        #expect(quarantine.first?.reason.contains("22P05") == true)
        #expect(quarantine.first?.payload == (try EventCoding.encode(poisoned)))
    }

    @Test func wrongPasswordGivesOneStatusLineAndOneAttemptPerBackoffCap() async throws {
        let table = TestPostgres.uniqueTable()
        let role = TestPostgres.uniqueTable("writer")
        try await postgres.execute("CREATE ROLE \(role) LOGIN PASSWORD 'right-password'")
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        try await append(store, 10)
        let (logger, lines) = CapturingLogHandler.logger()
        // The runner's backoff runs on this clock: nothing but `advance` can cause another attempt,
        // so the attempt count below cannot depend on the machine's speed.
        let clock = ManualClock()
        let attempts = "password authentication failed for user \"\(role)\""
        let running = try RunningSink(
            sinkConfig(table: table, user: role, password: "wrong-password", backoffMax: 30), queue: store.queue,
            logger: logger, clock: clock)

        #expect(await eventually { running.runner.status.lastError?.contains("authentication failed for user \(role)") == true })
        #expect(await eventually(poll: .milliseconds(100)) { postgres.logLines(containing: attempts) == 1 })
        #expect(running.runner.status.consecutiveFailures == 1)
        // A fatal error waits the whole cap, without jitter: 29 s on is still the first attempt.
        clock.advance(by: .seconds(29))
        #expect(running.runner.status.consecutiveFailures == 1)
        clock.advance(by: .seconds(1))
        #expect(await eventually(poll: .milliseconds(100)) { postgres.logLines(containing: attempts) == 2 })
        #expect(await eventually { running.runner.status.consecutiveFailures == 2 })
        await running.finish()
        #expect(postgres.logLines(containing: attempts) == 2)

        let statusLines = lines.all.filter { $0.message.contains("postgres: authentication failed for user \(role)") }
        // One line at error level for the first failure; the identical repeat is not logged again.
        #expect(statusLines.filter { $0.level == .error }.count == 1)
        #expect(try await store.queue.lag(sink: "warehouse") == 10)
        #expect(try await store.queue.quarantineEntries().isEmpty)
        try await postgres.execute("DROP ROLE \(role)")
    }

    @Test func serverCrashMidDeliveryLosesAndDuplicatesNothing() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        var events = try await append(store, 1000)
        let running = try RunningSink(sinkConfig(table: table, batch: 50), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })

        // Hold the sink's next INSERT on a table lock, so the crash falls while a batch is in
        // flight on the server: a state reached by waiting for it, not for a time.
        let locker = Task {
            try await postgres.withConnection { connection in
                try await connection.query("BEGIN", logger: testLogger())
                try await connection.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(table) IN SHARE MODE"), logger: testLogger())
                // Held until the server dies under it.
                for try await _ in try await connection.query("SELECT pg_sleep(600)", logger: testLogger()) {}
            }
        }
        #expect(await eventually(poll: .milliseconds(200)) {
            try await postgres.count("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '\(table)' AND l.mode = 'ShareLock' AND l.granted") == 1
        })
        events += try await append(store, 2000)
        #expect(await eventually(poll: .milliseconds(200)) {
            try await postgres.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatehouse/warehouse' AND wait_event_type = 'Lock'") == 1
        })
        try postgres.halt()
        _ = await locker.result
        #expect(await eventually { running.runner.status.consecutiveFailures >= 1 })
        #expect(try await store.queue.lag(sink: "warehouse") == 2000)
        try postgres.resume()
        #expect(await eventually(timeout: .seconds(120)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()
        #expect(running.runner.status.lastError == nil)

        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == events.count)
        #expect(try await postgres.count("SELECT count(DISTINCT id) FROM \(table)") == events.count)
        #expect(Set(try await ids(in: table)) == Set(events.map(\.id.description)))
    }

    @Test func replaysAndResentBatchesDoNotDuplicate() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse", "replay"])
        defer { store.remove() }
        let events = try await append(store, 300)
        let first = try RunningSink(sinkConfig(table: table), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await first.finish()
        // A second cursor over the same queue replays everything into the same table.
        let replay = try RunningSink(sinkConfig(table: table, name: "replay"), queue: store.queue)
        #expect(await eventually { try await store.queue.lag(sink: "replay") == 0 })
        await replay.finish()
        #expect(replay.runner.status.deliveredEvents == 300)

        // The same batch sent again after its answer was lost: acknowledged, stored once.
        let sink = try SinkRegistry.make(sinkConfig(table: table), logger: testLogger())
        let stored = try events.prefix(10).enumerated().map {
            StoredEvent(seq: Int64($0.offset + 1), priority: $0.element.priority, body: try EventCoding.encode($0.element))
        }
        let batch = SinkBatch(sink: "warehouse", events: stored)
        #expect(await sink.send(batch) == .delivered)
        #expect(await sink.send(batch) == .delivered)
        await sink.shutdown()

        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == events.count)
        #expect(try await postgres.count("SELECT count(DISTINCT id) FROM \(table)") == events.count)
    }

    @Test func theInsertParsesEachBodyOnce() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        try await append(store, 1)
        let running = try RunningSink(sinkConfig(table: table), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()

        // The server's plan for the sink's own statement: every column is read from the jsonb
        // value the array cast produced once per body. A cast repeated in each column
        // (`(b)::jsonb ->> 'id'`) parsed every body ten times and made the drain 2.7 times slower.
        let sql = PostgresSchema(table: table, partitionsAhead: 2).insertSQL
            .replacingOccurrences(of: "$1", with: "ARRAY['{\"id\": \"x\"}']")
        let plan = try await postgres.column("EXPLAIN (VERBOSE) \(sql)").compactMap { $0 }.joined(separator: "\n")
        #expect(plan.contains("jsonb[]"))
        #expect(plan.contains("->> 'id'"))
        #expect(!plan.contains("::jsonb ->>"), "\(plan)")
        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == 1)
    }

    @Test func statusNamesAnUnreachableServerAndEventsWait() async throws {
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        try await append(store, 5)
        var config = sinkConfig(table: TestPostgres.uniqueTable())
        if var settings = config.settings as? PostgresSinkConfig {
            // A port a receiver listened on and released: nothing answers there now.
            settings.port = try await withReceiver(CentralReceiver(logger: testLogger())) { $0 }
            config.settings = settings
        }
        let running = try RunningSink(config, queue: store.queue)
        #expect(await eventually { running.runner.status.consecutiveFailures >= 2 })
        await running.finish()
        #expect(running.runner.status.lastError?.hasPrefix("postgres: 127.0.0.1:") == true)
        #expect(try await store.queue.lag(sink: "warehouse") == 5)
    }
}

extension Calendar {
    static var utc: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        return calendar
    }
}
