import Foundation
@testable import GatehouseCore
import GatehouseQueue
@testable import GatehouseSinks
import GatehouseTesting
import Logging
import PostgresNIO
import Testing

/// A batch spread over several connections. Part of the serialized PostgreSQL suite.
extension PostgresSinkTests {
    /// The cursor contract with parts in flight side by side: the later part of a batch commits
    /// while the earlier one is held by a lock and times out. The batch must not count as delivered
    /// (the cursor stays before both parts) until the earlier part committed too; then every event
    /// is in the table exactly once.
    @Test func aLaterPartCommittedNeverMovesTheCursorPastAnEarlierPartThatDidNot() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        let running = try RunningSink(
            sinkConfig(table: table, batch: 100, backoffMax: 0.2, connections: 2, statementTimeout: 10), queue: store.queue)
        // A first event creates the table and this month's partition. Beside a whole loaded suite
        // that took just over a minute once (two connections, the migration, five partitions).
        let warmup = try await append(store, 1)
        #expect(await eventually(timeout: .seconds(180), poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 }, "\(running.runner.status)")

        // The locking session below once failed on a loaded machine while the server logged that
        // the default partition did not exist: say so here if it does not, by name.
        #expect(await eventually(poll: .milliseconds(50)) {
            try await postgres.count("SELECT count(*) FROM pg_class WHERE relname = '\(table)_default'") == 1
        }, "\(table)_default was not created with the table")
        let now = Timestamp.now
        let farPast = Timestamp(milliseconds: 946_684_800_000)  // 2000-01-01: the default partition
        let thisMonth = "\(table)_\(PostgresSchema.partitionSuffix(PostgresSchema(table: table, partitionsAhead: 0).months(from: now.date)[0].start))"
        var events: [Event] = []
        // PSQLError's description hides the server's message; a failure here says what it was
        // (once, beside a loaded suite, one of these statements failed).
        do {
            try await postgres.withConnection { session in
                var logger = Logger(label: "test-lock")
                logger.logLevel = .warning
                try await session.query("BEGIN", logger: logger)
                // The first part (events 0..<10, in 2000) waits for this lock and times out; the second
                // (events 10..<20, now) goes to this month's partition, which nothing holds.
                try await session.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(table)_default IN ACCESS EXCLUSIVE MODE"), logger: logger)
                events = try await append(store, 20, at: Array(repeating: farPast, count: 10) + Array(repeating: now, count: 10))
                #expect(await eventually(poll: .milliseconds(50)) {
                    try await postgres.count("SELECT count(*) FROM \(thisMonth)") == 11
                        && running.runner.status.lastError?.contains("statement timeout") == true
                })
                // The second part committed (at least once) and the first timed out: not delivered.
                #expect(try await store.queue.lag(sink: "warehouse") == 20)
                #expect(running.runner.status.deliveredEvents == 1)
                try await session.query("COMMIT", logger: logger)
            }
        } catch {
            Issue.record("the locking session failed: \(String(reflecting: error))")
            throw error
        }
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()
        #expect(running.runner.status.deliveredEvents == 21)
        let stored = try await ids(in: table)
        #expect(stored.count == 21)
        #expect(Set(stored) == Set((warmup + events).map(\.id.description)))
    }

    @Test func twoConnectionsDeliverEveryBatchExactlyOnce() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        let events = try await append(store, 501)
        let running = try RunningSink(sinkConfig(table: table, batch: 64, connections: 2), queue: store.queue)
        #expect(await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "warehouse") == 0 })
        await running.finish()
        #expect(await eventually(poll: .milliseconds(50)) {
            try await postgres.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatehouse/warehouse'") == 0
        })
        let stored = try await ids(in: table)
        #expect(stored.count == events.count)
        #expect(Set(stored) == Set(events.map(\.id.description)))
    }
}

@Suite struct PostgresBatchSplitTests {
    @Test func partsAreContiguousNearlyEqualAndNeverEmpty() {
        let bodies = (0..<7).map { Data("\($0)".utf8) }
        #expect(PostgresSink.split(bodies, into: 2).map(\.count) == [3, 4])
        #expect(PostgresSink.split(bodies, into: 3).map(\.count) == [2, 2, 3])
        #expect(PostgresSink.split(bodies, into: 2).flatMap { $0 } == bodies)
        #expect(PostgresSink.split(Array(bodies.prefix(1)), into: 4).map(\.count) == [1])
        #expect(PostgresSink.split(bodies, into: 1) == [bodies])
    }
}
