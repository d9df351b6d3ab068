import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import GRDB
import Testing

/// The fixture's file opened on a clock that moves only when told to.
func queueOnManualClock(_ fixture: QueueFixture) throws -> (EventQueue, ManualClock) {
    let clock = ManualClock()
    let queue = try EventQueue(
        path: fixture.path, settings: fixture.settings, diskBudgetBytes: fixture.budget, clock: clock, logger: testLogger())
    return (queue, clock)
}

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
        let (queue, _) = try queueOnManualClock(fixture)
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

    @Test("a second process writing beside the daemon (a quarantine tool) is seen: no sequence number twice, every event counted in both")
    func anotherProcessWritesBeside() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let (daemon, _) = try queueOnManualClock(fixture)
        for n in 0..<3 { _ = try await daemon.appendNow([makeEvent(.accessGranted, padding: n)]) }
        // Another connection to the file, as `gatehouse quarantine replay` opens while the daemon runs.
        let tool = try fixture.reopen()
        for n in 0..<2 { _ = try await tool.appendNow([makeEvent(.alarmPanic, padding: n)]) }
        let outcomes = try await daemon.appendNow([makeEvent(.accessGranted, padding: 9)])
        #expect(outcomes.count == 1 && outcomes[0].isAccepted, "\(outcomes)")
        _ = try await tool.appendNow([makeEvent(.cameraMotion, padding: 1)])
        let last = try await daemon.appendNow([makeEvent(.accessGranted, padding: 8)])
        #expect(last.count == 1 && last[0].isAccepted, "\(last)")
        #expect(try await daemon.stats().depth == 8)
        #expect(try await daemon.stats().usedBytes == (try await daemon.recomputedUsage()))
        let seqs = try await daemon.pool.read { db in try Int64.fetchAll(db, sql: "SELECT seq FROM events ORDER BY seq") }
        #expect(seqs == Array(1...8).map(Int64.init), "\(seqs)")
        try await daemon.registerSinks(["a"])
        #expect(try await daemon.lag(sink: "a") == 8)
        try tool.pool.close()
        try daemon.pool.close()
    }

    @Test("a delivery record that falls due with a batch makes room for that batch before its events are refused")
    func dueRecordMakesRoomForItsBatch() async throws {
        let fixture = try QueueFixture(budget: 64 << 10)
        defer { fixture.remove() }
        let (queue, clock) = try queueOnManualClock(fixture)
        let (_, refused) = try await EvictionTests.fill(queue, .accessGranted, count: 200)
        #expect(refused > 0)
        try await queue.registerSinks(["a"])
        let runner = Task { await queue.run() }
        // Hold the committer in a commit; meanwhile a delivery is owed and falls due, and a
        // telemetry event (which may evict nothing of higher priority) waits: both go in the next commit.
        let gate = Gate()
        queue.beforeCommit.withLock { $0 = { await gate.pass() } }
        let first = Task { try await queue.append([makeEvent(.alarmPanic, padding: 10)]) }
        #expect(await eventually { gate.holding == 1 })
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 20))
        clock.advance(by: .seconds(EventQueue.deliveryRecordSeconds + 1))
        let motion = makeEvent(.cameraMotion, padding: 1000)
        let second = Task { try await queue.append([motion]) }
        #expect(await eventually { queue.waitingAppends == 1 })
        queue.beforeCommit.withLock { $0 = nil }
        gate.open()
        _ = try await first.value
        #expect(try await second.value == [.stored(motion.id)])
        queue.close()
        await runner.value
    }

    @Test("a commit that deletes, or one after the interval, stores the counters at once")
    func countersStoredWhenNeeded() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let (queue, clock) = try queueOnManualClock(fixture)
        // Registering stores the counters (0); the insert-only commits within the interval do not.
        try await queue.registerSinks(["a"])
        _ = try await queue.appendNow([makeEvent()])
        _ = try await queue.appendNow([makeEvent()])
        #expect(try await Self.counter(queue, Counter.queuedEvents) == 0)
        clock.advance(by: .seconds(EventQueue.persistInterval))
        _ = try await queue.appendNow([makeEvent()])
        #expect(try await Self.counter(queue, Counter.queuedEvents) == 3)
        _ = try await queue.appendNow([makeEvent()])
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 2))
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
        let delivered = try queue.nextBatch(sink: "a", maxEvents: 100)
        try await queue.acknowledge(sink: "a", delivered)
        #expect(try await queue.stats().depth == 0)
        let highest = try #require(delivered.map(\.seq).max())
        try queue.pool.close()

        let reopened = try fixture.reopen()
        try await reopened.registerSinks(["a"])
        let next = makeEvent(.alarmPanic)
        _ = try await reopened.appendNow([next])
        let batch = try reopened.nextBatch(sink: "a", maxEvents: 100)
        #expect(try batch.map(storedID) == [next.id])
        #expect(try #require(batch.first).seq > highest)
        try reopened.pool.close()
    }

    @Test("run() stores counters an insert-only commit left behind when it returns")
    func countersStoredAtShutdown() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let (queue, _) = try queueOnManualClock(fixture)
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

/// auto_vacuum NONE: freed pages reused, the file rewritten when much is free and little kept.
@Suite("Write path: space given back")
struct QueueSpaceTests {
    static func pragmas(_ queue: EventQueue) async throws -> (autoVacuum: Int, pages: Int64, free: Int64) {
        try await queue.pool.read { db in
            (
                try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? -1, try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0,
                try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            )
        }
    }

    @Test("a queue kept with auto_vacuum INCREMENTAL (before 0.10) is rewritten without it at open, every event kept")
    func incrementalQueueConverted() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let events = (0..<50).map { n in makeEvent(n % 3 == 0 ? .alarmPanic : .accessGranted, dedupKey: "k\(n)", padding: 200) }
        _ = try await fixture.queue.appendNow(events)
        try fixture.queue.pool.close()
        do {
            let previous = try DatabaseQueue(path: fixture.path)
            try await previous.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL; VACUUM") }
            #expect(try await previous.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 2)
            try previous.close()
        }
        let reopened = try fixture.reopen()
        #expect(try await Self.pragmas(reopened).autoVacuum == 0)
        let kept = try await reopened.everything(sink: "audit")
        #expect(Set(try kept.map(storedID)) == Set(events.map(\.id)))
        #expect(try await reopened.stats().depth == 50)
        #expect(try await reopened.appendNow([events[7]]) == [.duplicate(of: events[7].id)])
        #expect(try await reopened.pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") } == ["ok"])
        try reopened.pool.close()
    }

    @Test("delivered pages are free for new events; maintain() rewrites the file when much is free and little kept, not otherwise")
    func freePagesReusedThenReturned() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        #expect(try await Self.pragmas(queue).autoVacuum == 0)
        try await queue.registerSinks(["a"])
        for _ in 0..<10 { _ = try await queue.appendNow((0..<50).map { _ in makeEvent(padding: 1000) }) }
        try await queue.acknowledge(sink: "a", try await queue.everything(sink: "a"))
        let drained = try await Self.pragmas(queue)
        #expect(drained.free > 100)
        // New events take freed pages before the file grows.
        _ = try await queue.appendNow((0..<50).map { _ in makeEvent(padding: 1000) })
        let refilled = try await Self.pragmas(queue)
        #expect(refilled.pages == drained.pages && refilled.free < drained.free)

        // More kept than a rewrite may copy: nothing happens.
        queue.compactionLimits.withLock { $0 = EventQueue.CompactionLimits(freeBytes: 64 << 10, keptBytes: 16 << 10) }
        try await queue.maintain()
        #expect(try await Self.pragmas(queue) == refilled)
        // Little kept, much free: the file is rewritten, the events stay.
        queue.compactionLimits.withLock { $0 = EventQueue.CompactionLimits(freeBytes: 64 << 10, keptBytes: 1 << 20) }
        try await queue.maintain()
        let compacted = try await Self.pragmas(queue)
        #expect(compacted.free == 0 && compacted.pages < refilled.pages)
        #expect(try await queue.stats().depth == 50)
        #expect(try await queue.pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") } == ["ok"])
        try queue.pool.close()
    }
}

/// Delivery records (cursor and deletes) owed to a later commit while the committer runs.
@Suite("Write path: delivery records")
struct DeliveryRecordTests {
    static func storedCursor(_ queue: EventQueue, sink: String) async throws -> Int64 {
        try await queue.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM sink_cursors WHERE sink = ?", arguments: [sink]) ?? 0
        }
    }

    @Test("a delivery is read past at once, written after deliveryRecordSeconds; until then a restart would send it again")
    func writtenAfterTheInterval() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let (queue, clock) = try queueOnManualClock(fixture)
        try await queue.registerSinks(["a"])
        let runner = Task { await queue.run() }
        let events = (0..<10).map { _ in makeEvent() }
        _ = try await queue.append(events)
        let batch = try queue.nextBatch(sink: "a", maxEvents: 100)
        try await queue.acknowledge(sink: "a", batch)
        #expect(try queue.nextBatch(sink: "a", maxEvents: 100).isEmpty)
        #expect(try await queue.lag(sink: "a") == 0)
        // Not yet on disk: after a crash now, every event would be read again from the old cursor.
        #expect(try await Self.storedCursor(queue, sink: "a") == 0)
        #expect(try await queue.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") } == events.count)

        #expect(await eventually { clock.pendingTimers > 0 })
        clock.advance(by: .milliseconds(Int(EventQueue.deliveryRecordSeconds * 1000)))
        #expect(await eventually { try await queue.stats().depth == 0 })
        #expect(try await Self.storedCursor(queue, sink: "a") == batch.map(\.seq).max())
        queue.close()
        await runner.value
        try queue.pool.close()
    }

    @Test("deliveryRecordEvents owed are written with the next commit, without waiting; shutdown writes the rest")
    func writtenWhenFullAndAtShutdown() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let (queue, _) = try queueOnManualClock(fixture)
        try await queue.registerSinks(["a"])
        let runner = Task { await queue.run() }
        let count = EventQueue.deliveryRecordEvents
        _ = try await queue.append((0..<(count + 5)).map { _ in makeEvent() })
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: count))
        #expect(await eventually { try await queue.stats().depth == 5 })
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 2))
        #expect(try await queue.stats().depth == 5)
        queue.close()
        await runner.value
        #expect(try await queue.stats().depth == 3)
        #expect(try await Self.storedCursor(queue, sink: "a") == Int64(count + 2))
        // After the committer stopped, a delivery is recorded at once.
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 3))
        #expect(try await queue.stats().depth == 0)
        try queue.pool.close()
    }

    @Test("with the budget full, delivered events whose record is owed make room before anything is evicted")
    func owedDeliveriesBeforeEviction() async throws {
        let fixture = try QueueFixture(budget: 64 << 10)
        defer { fixture.remove() }
        let (queue, _) = try queueOnManualClock(fixture)
        try await queue.registerSinks(["a"])
        let runner = Task { await queue.run() }
        let (stored, refused) = try await EvictionTests.fill(queue, .cameraMotion, count: 200)
        #expect(refused > 0)
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 20))
        #expect(try await queue.stats().depth == Int64(stored.count))
        // Telemetry may evict nothing of its own rank: only the owed deletes can make room.
        let next = makeEvent(.cameraMotion, padding: 1000)
        #expect(try await queue.append([next]) == [.stored(next.id)])
        let stats = try await queue.stats()
        #expect(stats.evicted.values.reduce(0, +) == 0)
        #expect(stats.depth == Int64(stored.count - 20 + 1))
        queue.close()
        await runner.value
        try queue.pool.close()
    }
}
