import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Testing

@Suite("Polled device cursors")
struct DeviceCursorTests {
    @Test("the cursor is stored with the events of the same append")
    func storedWithEvents() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }
        #expect(try await queue.deviceCursor("ctl-1") == nil)

        let events = (0..<3).map { makeEvent(device: "ctl-1", dedupKey: "idx-\($0)") }
        let outcomes = try await queue.append(events, cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "idx-2"))
        #expect(outcomes.allSatisfy { $0.isStored })
        #expect(try await queue.deviceCursor("ctl-1") == "idx-2")
        #expect(try await queue.deviceCursor("ctl-2") == nil)

        // Re-read records are duplicates, which still lets the cursor move on.
        let reread = makeEvent(device: "ctl-1", dedupKey: "idx-2")
        let fresh = makeEvent(device: "ctl-1", dedupKey: "idx-3")
        let second = try await queue.append([reread, fresh], cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "idx-3"))
        #expect(second == [.duplicate(of: events[2].id), .stored(fresh.id)])
        #expect(try await queue.deviceCursor("ctl-1") == "idx-3")
        queue.close()
        await runner.value

        let reopened = try fixture.reopen()
        #expect(try await reopened.deviceCursor("ctl-1") == "idx-3")
    }

    @Test("a cursor with no events (nothing new on the device) is stored too")
    func cursorWithoutEvents() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        _ = try await fixture.queue.appendNow([], cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "7"))
        #expect(try await fixture.queue.deviceCursor("ctl-1") == "7")
    }

    @Test("when an event of the append is refused, the cursor is not advanced")
    func refusedKeepsCursor() async throws {
        let budget: Int64 = 64 << 10
        let fixture = try QueueFixture(budget: budget)
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }
        let start = makeEvent(device: "ctl-1", dedupKey: "idx-1")
        #expect(try await queue.append([start], cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "idx-1")) == [.stored(start.id)])
        let (_, refused) = try await EvictionTests.fill(queue, .accessGranted, count: 200)
        #expect(refused > 0)

        // An alarm fits (it evicts access), the telemetry after it does not.
        let alarm = makeEvent(.alarmPanic, device: "ctl-1", dedupKey: "idx-2")
        let motion = makeEvent(.cameraMotion, device: "ctl-1", dedupKey: "idx-3", padding: 1000)
        let outcomes = try await queue.append([alarm, motion], cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "idx-3"))
        #expect(outcomes.count == 2)
        #expect(outcomes.first == .stored(alarm.id))
        #expect(outcomes.last.map(isRefused) == true)
        #expect(try await queue.deviceCursor("ctl-1") == "idx-1", "the device must be read again from idx-1")

        // On the re-read, the stored alarm is a duplicate; with room again the cursor moves.
        try await queue.registerSinks(["a"])
        try await queue.acknowledge(sink: "a", try queue.nextBatch(sink: "a", maxEvents: 20))
        let alarmAgain = makeEvent(.alarmPanic, device: "ctl-1", dedupKey: "idx-2")
        let motionAgain = makeEvent(.cameraMotion, device: "ctl-1", dedupKey: "idx-3", padding: 1000)
        let retry = try await queue.append([alarmAgain, motionAgain], cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "idx-3"))
        #expect(retry == [.duplicate(of: alarm.id), .stored(motionAgain.id)])
        #expect(try await queue.deviceCursor("ctl-1") == "idx-3")
        queue.close()
        await runner.value
    }
}
