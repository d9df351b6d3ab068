import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Testing

@Suite("Disk budget and eviction")
struct EvictionTests {
    static let budget: Int64 = 1 << 20

    /// Appends `count` events of `kind` in one transaction; returns the stored ones and how many were refused.
    static func fill(
        _ queue: EventQueue, _ kind: EventKind, count: Int, padding: Int = 1000, dedupPrefix: String? = nil
    ) async throws -> (stored: [Event], refused: Int) {
        let events = (0..<count).map { index in
            makeEvent(kind, dedupKey: dedupPrefix.map { "\($0)-\(index)" }, padding: padding)
        }
        let outcomes = try await queue.appendNow(events)
        var stored: [Event] = []
        var refused = 0
        for (event, outcome) in zip(events, outcomes) {
            switch outcome {
            case .stored(let id):
                #expect(id == event.id)
                stored.append(event)
            case .refused: refused += 1
            case .duplicate: Issue.record("unexpected duplicate")
            }
        }
        return (stored, refused)
    }

    static func checkBudget(_ queue: EventQueue, _ budget: Int64 = budget, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let stats = try await queue.stats()
        #expect(stats.usedBytes <= budget, "usedBytes \(stats.usedBytes) exceeds budget \(budget)", sourceLocation: sourceLocation)
        #expect(stats.usedBytes == (try await queue.recomputedUsage()), "usedBytes disagrees with what is stored", sourceLocation: sourceLocation)
        #expect(stats.depth == Int64(try await queue.everything(sink: "__audit__").count), sourceLocation: sourceLocation)
    }

    static func ids(_ queue: EventQueue, _ priority: Priority) async throws -> [EventID] {
        try await queue.everything(sink: "__audit__").filter { $0.priority == priority }.map(storedID)
    }

    @Test("access events evict the oldest telemetry, counted per priority")
    func accessEvictsOldestTelemetry() async throws {
        let fixture = try QueueFixture(budget: Self.budget)
        defer { fixture.remove() }
        let queue = fixture.queue

        let (telemetry, refusedTelemetry) = try await Self.fill(queue, .cameraMotion, count: 1200)
        #expect(telemetry.count > 500)
        #expect(refusedTelemetry > 0, "1200 events of ~1 KB cannot fit in 1 MiB")
        #expect(try await queue.stats().evicted["telemetry"] == 0, "telemetry never evicts telemetry")
        try await Self.checkBudget(queue)

        let (access, refusedAccess) = try await Self.fill(queue, .accessGranted, count: 100)
        #expect(access.count == 100)
        #expect(refusedAccess == 0)

        let remaining = try await Self.ids(queue, .telemetry)
        let evicted = telemetry.count - remaining.count
        #expect(evicted >= 100)
        #expect(remaining == telemetry.suffix(remaining.count).map(\.id), "the oldest telemetry goes first")
        let stats = try await queue.stats()
        #expect(stats.evicted["telemetry"] == Int64(evicted))
        #expect(stats.evicted["access"] == 0)
        #expect(stats.evicted["alarm"] == 0)
        #expect(try await Self.ids(queue, .access) == access.map(\.id))
        try await Self.checkBudget(queue)
    }

    @Test("with the budget full of access events, telemetry and access are refused but an alarm evicts access")
    func fullOfAccess() async throws {
        let fixture = try QueueFixture(budget: Self.budget)
        defer { fixture.remove() }
        let queue = fixture.queue

        let (access, refused) = try await Self.fill(queue, .accessGranted, count: 1200)
        #expect(refused > 0)
        try await Self.checkBudget(queue)
        let depth = try await queue.stats().depth

        let telemetry = makeEvent(.cameraMotion, padding: 1000)
        let telemetryOutcome = try await queue.appendNow([telemetry])
        #expect(telemetryOutcome.count == 1 && isRefused(telemetryOutcome[0]), "got \(telemetryOutcome)")
        let more = makeEvent(.accessDenied, padding: 1000)
        let accessOutcome = try await queue.appendNow([more])
        #expect(accessOutcome.count == 1 && isRefused(accessOutcome[0]), "got \(accessOutcome)")
        if case .refused(let reason) = accessOutcome.first {
            #expect(reason.contains("access"), "the reason names the priority: \(reason)")
        }
        #expect(try await queue.stats().depth == depth)
        #expect(try await queue.stats().evicted["access"] == 0)

        let alarm = makeEvent(.alarmPanic, padding: 1000)
        #expect(try await queue.appendNow([alarm]) == [.stored(alarm.id)])
        let stats = try await queue.stats()
        let evicted = try #require(stats.evicted["access"])
        #expect(evicted >= 1)
        let remaining = try await Self.ids(queue, .access)
        #expect(remaining == access.suffix(remaining.count).map(\.id), "the oldest access events go first")
        #expect(Int64(access.count - remaining.count) == evicted)
        #expect(try await Self.ids(queue, .alarm) == [alarm.id])
        try await Self.checkBudget(queue)
    }

    @Test("alarms are never evicted: telemetry goes first, and a full budget of alarms refuses new ones")
    func alarmsAreNeverEvicted() async throws {
        let fixture = try QueueFixture(budget: Self.budget)
        defer { fixture.remove() }
        let queue = fixture.queue

        let (firstAlarms, _) = try await Self.fill(queue, .alarmPanic, count: 300)
        #expect(firstAlarms.count == 300)
        let (telemetry, _) = try await Self.fill(queue, .cameraMotion, count: 1200)
        #expect(telemetry.count > 100)
        try await Self.checkBudget(queue)

        // Access events push out telemetry, not alarms.
        let (access, _) = try await Self.fill(queue, .accessGranted, count: 50)
        #expect(access.count == 50)
        #expect(try await Self.ids(queue, .alarm) == firstAlarms.map(\.id))

        // More alarms than there is telemetry: telemetry goes, then access, alarms stay.
        let (moreAlarms, refusedAlarms) = try await Self.fill(queue, .alarmFire, count: 1200)
        #expect(refusedAlarms > 0)
        #expect(try await Self.ids(queue, .alarm) == (firstAlarms + moreAlarms).map(\.id))
        #expect(try await Self.ids(queue, .telemetry).isEmpty)
        #expect(try await Self.ids(queue, .access).isEmpty)
        let stats = try await queue.stats()
        #expect(stats.evicted["alarm"] == 0)
        #expect(stats.evicted["telemetry"] == Int64(telemetry.count))
        #expect(stats.evicted["access"] == Int64(access.count))
        try await Self.checkBudget(queue)

        let last = makeEvent(.alarmDuress, padding: 1000)
        let outcome = try await queue.appendNow([last])
        #expect(outcome.count == 1 && isRefused(outcome[0]))
        #expect(try await queue.stats().evicted["alarm"] == 0)
    }

    @Test("evictions and their counters survive a reopen")
    func evictionCountersAreDurable() async throws {
        let fixture = try QueueFixture(budget: Self.budget)
        defer { fixture.remove() }
        _ = try await Self.fill(fixture.queue, .cameraMotion, count: 1200)
        _ = try await Self.fill(fixture.queue, .accessGranted, count: 20)
        let before = try await fixture.queue.stats()
        #expect((before.evicted["telemetry"] ?? 0) > 0)
        let reopened = try fixture.reopen()
        let after = try await reopened.stats()
        #expect(after.evicted == before.evicted)
        #expect(after.depth == before.depth)
        #expect(after.usedBytes == before.usedBytes)
    }

    @Test(
        "an event that is refused anyway evicts nothing")
    func refusedEventEvictsNothing() async throws {
        let budget: Int64 = 64 << 10
        let fixture = try QueueFixture(budget: budget)
        defer { fixture.remove() }
        let queue = fixture.queue
        let small = makeEvent(.cameraMotion)
        #expect(try await queue.appendNow([small]) == [.stored(small.id)])
        let (_, refused) = try await Self.fill(queue, .accessGranted, count: 200)
        #expect(refused > 0)

        // Needs far more room than the one small telemetry event could free.
        let big = makeEvent(.accessGranted, padding: 8000)
        let outcome = try await queue.appendNow([big])
        #expect(outcome.count == 1 && isRefused(outcome[0]))
        #expect(try await Self.ids(queue, .telemetry) == [small.id], "telemetry was evicted for an event that was refused")
        #expect(try await queue.stats().evicted["telemetry"] == 0)
        try await Self.checkBudget(queue, budget)
    }

    @Test(
        "a device retry of a stored event is a duplicate even when the budget is full, and evicts nothing")
    func duplicateWhenFull() async throws {
        let fixture = try QueueFixture(budget: Self.budget)
        defer { fixture.remove() }
        let queue = fixture.queue
        let original = makeEvent(.accessGranted, device: "door-9", dedupKey: "rec-1", padding: 1000)
        #expect(try await queue.appendNow([original]) == [.stored(original.id)])
        _ = try await Self.fill(queue, .cameraMotion, count: 1200)
        let telemetryBefore = try await Self.ids(queue, .telemetry)

        // Full of telemetry: the retry must not push out a telemetry event to store nothing.
        let retry = makeEvent(.accessGranted, device: "door-9", dedupKey: "rec-1", padding: 1000)
        #expect(try await queue.appendNow([retry]) == [.duplicate(of: original.id)])
        #expect(try await Self.ids(queue, .telemetry) == telemetryBefore)
        #expect(try await queue.stats().evicted["telemetry"] == 0)

        // Full of access events: the retry is still recognised rather than refused.
        _ = try await Self.fill(queue, .accessGranted, count: 1200)
        let again = makeEvent(.accessGranted, device: "door-9", dedupKey: "rec-1", padding: 1000)
        #expect(try await queue.appendNow([again]) == [.duplicate(of: original.id)])
    }
}

@Suite("Eviction log")
struct EvictionLogTests {
    @Test("evictions are logged as one line per priority and minute, with everything evicted since the last line")
    func oneSummaryPerClassAndInterval() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-eviction-log-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let (logger, lines) = CapturingLogHandler.logger()
        let queue = try EventQueue(
            path: directory.appendingPathComponent("queue.sqlite").path, settings: QueueSettings(), diskBudgetBytes: 64 << 10,
            clock: clock, logger: logger)
        _ = try await EvictionTests.fill(queue, .cameraMotion, count: 100)
        // Each access event evicts telemetry in its own commit.
        for _ in 0..<20 { _ = try await EvictionTests.fill(queue, .accessGranted, count: 1) }
        var summaries = lines.all.filter { $0.message.hasPrefix("disk budget reached") }
        #expect(summaries.count == 1, "\(summaries.map(\.message))")
        #expect(summaries.first?.message.contains("telemetry events") == true)

        clock.advance(by: .seconds(61))
        _ = try await EvictionTests.fill(queue, .accessGranted, count: 1)
        summaries = lines.all.filter { $0.message.hasPrefix("disk budget reached") }
        #expect(summaries.count == 2)
        let logged = summaries.compactMap { $0.metadata["gatehouse.evicted"].flatMap { Int64($0) } }.reduce(0, +)
        #expect(logged == (try await queue.stats().evicted["telemetry"]), "the lines add up to the counter")
        #expect(logged > 2)
    }
}
