import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Testing

@Suite("Forwarding order and sink cursors")
struct PriorityAndSinkTests {
    /// Appends 3 telemetry, 3 access and 3 alarm events, interleaved in that order per round.
    static func appendMixed(_ queue: EventQueue) async throws -> (telemetry: [Event], access: [Event], alarm: [Event]) {
        var telemetry: [Event] = []
        var access: [Event] = []
        var alarm: [Event] = []
        for _ in 0..<3 {
            let t = makeEvent(.cameraMotion)
            let a = makeEvent(.accessGranted)
            let p = makeEvent(.alarmPanic)
            telemetry.append(t)
            access.append(a)
            alarm.append(p)
            let outcomes = try await queue.appendNow([t, a, p])
            #expect(outcomes.allSatisfy { $0.isStored })
        }
        return (telemetry, access, alarm)
    }

    @Test("alarms come first, then access, then telemetry, each in insertion order")
    func forwardingOrder() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a"])
        let (telemetry, access, alarm) = try await Self.appendMixed(queue)

        let batch = try queue.nextBatch(sink: "a", maxEvents: 100)
        #expect(try batch.map(storedID) == (alarm + access + telemetry).map(\.id))
        #expect(batch.map(\.priority) == [.alarm, .alarm, .alarm, .access, .access, .access, .telemetry, .telemetry, .telemetry])
        // seq is increasing within each priority.
        for priority in Priority.allCases {
            let seqs = batch.filter { $0.priority == priority }.map(\.seq)
            #expect(seqs == seqs.sorted())
        }
        #expect(try await queue.lag(sink: "a") == 9)
    }

    @Test("acknowledging a prefix continues with the rest, and new events are picked up")
    func acknowledgePrefix() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a"])
        let (telemetry, access, alarm) = try await Self.appendMixed(queue)

        let first = try queue.nextBatch(sink: "a", maxEvents: 4)
        #expect(try first.map(storedID) == (alarm + [access[0]]).map(\.id))
        try await queue.acknowledge(sink: "a", Array(first.prefix(2)))
        #expect(try await queue.stats().depth == 7)
        #expect(try await queue.lag(sink: "a") == 7)

        let second = try queue.nextBatch(sink: "a", maxEvents: 100)
        #expect(try second.map(storedID) == ([alarm[2]] + access + telemetry).map(\.id))

        // An alarm arriving now jumps ahead of the older access and telemetry events.
        let late = makeEvent(.alarmFire)
        #expect(try await queue.appendNow([late]) == [.stored(late.id)])
        let third = try queue.nextBatch(sink: "a", maxEvents: 100)
        #expect(try third.map(storedID) == ([alarm[2], late] + access + telemetry).map(\.id))

        try await queue.acknowledge(sink: "a", third)
        #expect(try await queue.stats().depth == 0)
        #expect(try await queue.lag(sink: "a") == 0)
        #expect(try queue.nextBatch(sink: "a", maxEvents: 100).isEmpty)
    }

    @Test("events appended after all earlier ones were delivered are still delivered")
    func deliveredThenNewEvents() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a"])
        let first = (0..<3).map { _ in makeEvent(.cameraMotion) }
        _ = try await queue.appendNow(first)
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 100))
        #expect(try await queue.stats().depth == 0)

        let next = makeEvent(.cameraMotion)
        #expect(try await queue.appendNow([next]) == [.stored(next.id)])
        #expect(try await queue.stats().depth == 1)
        #expect(try await queue.lag(sink: "a") == 1)
        let batch = try queue.nextBatch(sink: "a", maxEvents: 100)
        #expect(try batch.map(storedID) == [next.id])
    }

    @Test("an alarm arriving after a delivered alarm is delivered even while older telemetry waits")
    func alarmAfterDeliveredAlarm() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a"])
        _ = try await queue.appendNow((0..<5).map { _ in makeEvent(.cameraMotion) })
        let alarm = makeEvent(.alarmPanic)
        _ = try await queue.appendNow([alarm])
        // The link delivers only the alarm before going down.
        let batch = try queue.nextBatch(sink: "a", maxEvents: 1)
        #expect(try batch.map(storedID) == [alarm.id])
        try await queue.acknowledge(sink: "a", batch)

        let second = makeEvent(.alarmFire)
        #expect(try await queue.appendNow([second]) == [.stored(second.id)])
        let next = try queue.nextBatch(sink: "a", maxEvents: 1)
        #expect(try next.map(storedID) == [second.id])
        #expect(try await queue.lag(sink: "a") == 6)
    }

    @Test("with two sinks an event is removed only when both acknowledged it")
    func twoSinksSeparateCursors() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a", "b"])
        let events = (0..<4).map { _ in makeEvent(.accessGranted) }
        _ = try await queue.appendNow(events)

        let batchA = try queue.nextBatch(sink: "a", maxEvents: 100)
        try await queue.acknowledge(sink: "a", batchA)
        #expect(try await queue.lag(sink: "a") == 0)
        #expect(try await queue.lag(sink: "b") == 4)
        #expect(try await queue.stats().depth == 4)
        #expect(try queue.nextBatch(sink: "a", maxEvents: 100).isEmpty)

        let batchB = try queue.nextBatch(sink: "b", maxEvents: 2)
        #expect(try batchB.map(storedID) == events.prefix(2).map(\.id))
        try await queue.acknowledge(sink: "b", batchB)
        #expect(try await queue.lag(sink: "b") == 2)
        #expect(try await queue.stats().depth == 2)

        try await queue.acknowledge(sink: "b", try queue.nextBatch(sink: "b", maxEvents: 100))
        #expect(try await queue.stats().depth == 0)
    }

    @Test("dropping a sink from the configuration releases what it held back")
    func droppedSinkReleasesHold() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a", "b"])
        _ = try await queue.appendNow((0..<5).map { _ in makeEvent(.accessGranted) })
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 100))
        #expect(try await queue.stats().depth == 5)  // "b" still holds them

        try await queue.registerSinks(["a"])
        #expect(try await queue.stats().depth == 0)
        #expect(try await queue.lag(sink: "a") == 0)
    }

    @Test("a newly registered sink starts at the oldest queued event")
    func newSinkStartsAtOldest() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a"])
        let events = (0..<3).map { _ in makeEvent(.accessGranted) }
        _ = try await queue.appendNow(events)
        try await queue.registerSinks(["a", "c"])
        #expect(try await queue.lag(sink: "c") == 3)
        #expect(try queue.nextBatch(sink: "c", maxEvents: 100).map(storedID) == events.map(\.id))
    }

    @Test("sink cursors are durable: after reopening, a sink continues where it acknowledged")
    func cursorsSurviveReopen() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        try await fixture.queue.registerSinks(["a", "b"])
        let events = (0..<4).map { _ in makeEvent(.accessGranted) }
        _ = try await fixture.queue.appendNow(events)
        try await fixture.queue.acknowledge(sink: "a", try fixture.queue.nextBatch(sink: "a", maxEvents: 3))

        let reopened = try fixture.reopen()
        try await reopened.registerSinks(["a", "b"])
        #expect(try await reopened.lag(sink: "a") == 1)
        #expect(try await reopened.lag(sink: "b") == 4)
        #expect(try reopened.nextBatch(sink: "a", maxEvents: 100).map(storedID) == [events[3].id])
    }

    @Test("nextBatch respects maxEvents and maxBytes, and always makes progress")
    func batchBounds() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let events = (0..<10).map { _ in makeEvent(.accessGranted, padding: 1000) }
        _ = try await queue.appendNow(events)
        let bodySize = try #require(try queue.nextBatch(sink: "a", maxEvents: 1).first?.body.count)
        #expect(bodySize > 1000)

        #expect(try queue.nextBatch(sink: "a", maxEvents: 4).count == 4)
        #expect(try queue.nextBatch(sink: "a", maxEvents: 100).count == 10)

        let maxBytes = bodySize * 3 - 10
        let bounded = try queue.nextBatch(sink: "a", maxEvents: 100, maxBytes: maxBytes)
        #expect(bounded.count >= 1)
        #expect(bounded.count < 10)
        // Everything but the last event fits under the bound.
        #expect(bounded.dropLast().reduce(0) { $0 + $1.body.count } < maxBytes)
        #expect(bounded.reduce(0) { $0 + $1.body.count } <= maxBytes + bodySize)
        #expect(try bounded.map(storedID) == events.prefix(bounded.count).map(\.id))

        // A bound smaller than one event still returns that event.
        let tiny = try queue.nextBatch(sink: "a", maxEvents: 100, maxBytes: 10)
        #expect(try tiny.map(storedID) == [events[0].id])

        // The byte bound holds across priorities too.
        let alarm = makeEvent(.alarmPanic, padding: 1000)
        _ = try await queue.appendNow([alarm])
        let mixed = try queue.nextBatch(sink: "a", maxEvents: 100, maxBytes: maxBytes)
        #expect(try mixed.first.map(storedID) == alarm.id)
        #expect(mixed.dropLast().reduce(0) { $0 + $1.body.count } < maxBytes)
    }
}

@Suite("Sink lag")
struct SinkLagTests {
    @Test("lag from the per-priority counters equals the events each sink has still to read, at every cursor position")
    func lagMatchesWhatIsLeft() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["fast", "slow"])
        let priorities: [Priority] = [.alarm, .access, .telemetry]
        let events = (0..<90).map { makeEvent(priority: priorities[($0 * 7) % 3 == 0 ? 0 : $0 % 3]) }
        _ = try await queue.appendNow(events)

        func check(_ step: String) async throws {
            for sink in ["fast", "slow"] {
                let left = try await queue.everything(sink: sink).count
                #expect(try await queue.lag(sink: sink) == Int64(left), "\(sink) after \(step)")
            }
        }
        try await check("appending")
        // The fast sink moves ahead in steps; the slow one holds everything back, then follows.
        for round in 0..<12 {
            let batch = try queue.nextBatch(sink: "fast", maxEvents: 8)
            try await queue.acknowledge(sink: "fast", batch)
            try await check("fast round \(round)")
            if round % 3 == 2 {
                let slow = try queue.nextBatch(sink: "slow", maxEvents: 11)
                try await queue.acknowledge(sink: "slow", slow)
                try await check("slow round \(round)")
            }
        }
        let stats = try await queue.stats()
        #expect(stats.depth == Int64(try await queue.everything(sink: "__audit__").count))
    }
}
