import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import GRDB
import Testing

/// Fewer pages per commit (issue 13): the sequence and the counters held in memory, written when
/// a commit needs them; what a crash leaves behind is counted back at open.
@Suite("Write path: sequence and counters")
struct WritePathTests {
    static func counter(_ queue: EventQueue, _ name: String) async throws -> Int64? {
        try await queue.pool.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = ?", arguments: [name]) }
    }

    @Test("a queue of the previous schema (AUTOINCREMENT) migrates with its rows; the sequence continues above the deleted newest ones")
    func migratesFromAutoincrement() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let path = fixture.directory.appendingPathComponent("previous.sqlite").path
        let events = (0..<5).map { _ in makeEvent(.accessGranted, padding: 10) }
        let rank = Priority.access.rank
        do {
            let database = try DatabaseQueue(path: path)
            try QueueSchema.migrator.migrate(database, upTo: "v6-quarantine-discard")
            try await database.write { db in
                for event in events {
                    try db.execute(
                        sql: "INSERT INTO events(priority, device_id, received_ms, body) VALUES (?, 'door-1', 1, ?)",
                        arguments: [rank, try EventCoding.encode(event)])
                }
                // The newest two were delivered and deleted: AUTOINCREMENT remembers 5, the rows end at 3.
                try db.execute(sql: "DELETE FROM events WHERE seq > 3")
                try db.execute(
                    sql: """
                        INSERT INTO counters(name, value)
                            SELECT 'queued_events', COUNT(*) FROM events UNION ALL
                            SELECT 'queued_events_p' || ?, COUNT(*) FROM events UNION ALL
                            SELECT 'queued_bytes', SUM(length(body) + ?) FROM events
                        """,
                    arguments: [rank, EventQueue.rowOverhead])
            }
            try database.close()
        }
        let queue = try EventQueue(
            path: path, settings: fixture.settings, diskBudgetBytes: fixture.budget, clock: MachineClock(), logger: testLogger())
        let kept = try await queue.everything(sink: "audit")
        #expect(try kept.map(storedID) == events.prefix(3).map(\.id))
        #expect(try await queue.stats().depth == 3)
        #expect(try await queue.stats().usedBytes == (try await queue.recomputedUsage()))

        let later = makeEvent(.accessGranted)
        #expect(try await queue.appendNow([later]) == [.stored(later.id)])
        let newest = try #require(try await queue.everything(sink: "audit").last)
        #expect(try storedID(newest) == later.id)
        #expect(newest.seq == 6)
        let (schema, sequences, integrity) = try await queue.pool.read { db in
            (
                try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'events'") ?? "",
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_sequence") ?? -1,
                try String.fetchAll(db, sql: "PRAGMA integrity_check")
            )
        }
        #expect(!schema.contains("AUTOINCREMENT"))
        #expect(sequences == 0)
        #expect(integrity == ["ok"])
        try queue.pool.close()
    }

    @Test("insert-only commits leave the stored counters behind; a reopen without shutdown counts them back exactly")
    func countersRebuiltAfterCrash() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let clock = ManualClock()
        let queue = try EventQueue(
            path: fixture.path, settings: fixture.settings, diskBudgetBytes: fixture.budget, clock: clock, logger: testLogger())
        // The first commit after open stores the counters; the ones within `persistInterval` do not.
        _ = try await queue.appendNow([makeEvent(.alarmPanic, padding: 5)])
        let storedFirst = try await Self.counter(queue, Counter.queuedEvents)
        for n in 0..<4 { _ = try await queue.appendNow([makeEvent(n % 2 == 0 ? .cameraMotion : .accessGranted, padding: n)]) }
        #expect(try await Self.counter(queue, Counter.queuedEvents) == storedFirst)
        #expect(try await queue.stats().depth == 5)
        // Kill -9: no shutdown, the pool simply goes away.
        try queue.pool.close()

        let reopened = try fixture.reopen()
        let stats = try await reopened.stats()
        #expect(stats.depth == 5)
        #expect(stats.usedBytes == (try await reopened.recomputedUsage()))
        #expect(try await Self.counter(reopened, Counter.queuedEvents) == 5)
        try await reopened.registerSinks(["a"])
        #expect(try await reopened.lag(sink: "a") == 5)
        try reopened.pool.close()
    }

    @Test("a commit that deletes, or one after the interval, stores the counters at once")
    func countersStoredWhenNeeded() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let clock = ManualClock()
        let queue = try EventQueue(
            path: fixture.path, settings: fixture.settings, diskBudgetBytes: fixture.budget, clock: clock, logger: testLogger())
        // Registering stores the counters (0); the insert-only commits within the interval do not.
        try await queue.registerSinks(["a"])
        _ = try await queue.appendNow([makeEvent()])
        _ = try await queue.appendNow([makeEvent()])
        #expect(try await Self.counter(queue, Counter.queuedEvents) == 0)
        clock.advance(by: .seconds(EventQueue.persistInterval))
        _ = try await queue.appendNow([makeEvent()])
        #expect(try await Self.counter(queue, Counter.queuedEvents) == 3)
        _ = try await queue.appendNow([makeEvent()])
        try await queue.acknowledge(sink: "a", try await queue.nextBatch(sink: "a", maxEvents: 2))
        #expect(try await Self.counter(queue, Counter.queuedEvents) == 2)
        #expect(try await queue.stats().depth == 2)
        try queue.pool.close()
    }

    @Test("the sequence never goes back: after everything was delivered and deleted, a restart continues above it")
    func sequenceNeverGoesBack() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a"])
        for _ in 0..<3 { _ = try await queue.appendNow([makeEvent(.alarmPanic), makeEvent(.cameraMotion)]) }
        let delivered = try await queue.nextBatch(sink: "a", maxEvents: 100)
        try await queue.acknowledge(sink: "a", delivered)
        #expect(try await queue.stats().depth == 0)
        let highest = try #require(delivered.map(\.seq).max())
        try queue.pool.close()

        let reopened = try fixture.reopen()
        try await reopened.registerSinks(["a"])
        let next = makeEvent(.alarmPanic)
        _ = try await reopened.appendNow([next])
        let batch = try await reopened.nextBatch(sink: "a", maxEvents: 100)
        #expect(try batch.map(storedID) == [next.id])
        #expect(try #require(batch.first).seq > highest)
        try reopened.pool.close()
    }

    @Test("run() stores counters an insert-only commit left behind when it returns")
    func countersStoredAtShutdown() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let clock = ManualClock()
        let queue = try EventQueue(
            path: fixture.path, settings: fixture.settings, diskBudgetBytes: fixture.budget, clock: clock, logger: testLogger())
        let runner = Task { await queue.run() }
        _ = try await queue.append([makeEvent()])
        _ = try await queue.append([makeEvent()])
        queue.close()
        await runner.value
        #expect(try await Self.counter(queue, Counter.queuedEvents) == 2)
        #expect(try await Self.counter(queue, Counter.lastSeq) == 2)
        try queue.pool.close()
    }
}
