import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import Testing

@Suite("Dedup by device and dedup key")
struct DedupTests {
    @Test("a re-sent event is a duplicate of the first and stored once")
    func resentEventIsDuplicate() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let first = makeEvent(device: "door-1", dedupKey: "rec-1")
        let again = makeEvent(device: "door-1", dedupKey: "rec-1")
        #expect(try await queue.appendNow([first]) == [.stored(first.id)])
        #expect(try await queue.stats().duplicates == 0)
        #expect(try await queue.appendNow([again]) == [.duplicate(of: first.id)])
        let stats = try await queue.stats()
        #expect(stats.depth == 1)
        #expect(stats.duplicates == 1)
        let stored = try await queue.everything(sink: "a")
        #expect(try stored.map(storedID) == [first.id])
    }

    @Test("the same key twice inside one append is stored once")
    func duplicateWithinOneAppend() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }
        let first = makeEvent(device: "door-1", dedupKey: "rec-7")
        let second = makeEvent(device: "door-1", dedupKey: "rec-7")
        let other = makeEvent(device: "door-1", dedupKey: "rec-8")
        let outcomes = try await queue.append([first, second, other])
        #expect(outcomes == [.stored(first.id), .duplicate(of: first.id), .stored(other.id)])
        let stats = try await queue.stats()
        #expect(stats.depth == 2)
        #expect(stats.duplicates == 1)
        queue.close()
        await runner.value
    }

    @Test("the same key from another device is a different event")
    func keysArePerDevice() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let a = makeEvent(device: "door-1", dedupKey: "42")
        let b = makeEvent(device: "door-2", dedupKey: "42")
        #expect(try await queue.appendNow([a, b]) == [.stored(a.id), .stored(b.id)])
        #expect(try await queue.stats().depth == 2)
        #expect(try await queue.stats().duplicates == 0)
    }

    @Test("events without a dedup key are never duplicates")
    func noKeyNoDedup() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let a = makeEvent(device: "door-1", dedupKey: nil)
        let b = makeEvent(device: "door-1", dedupKey: nil)
        #expect(try await fixture.queue.appendNow([a, b]) == [.stored(a.id), .stored(b.id)])
    }

    @Test("a late retry is still recognised after the first event was delivered and pruned")
    func dedupOutlivesDelivery() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        try await queue.registerSinks(["a"])
        let first = makeEvent(device: "gate-1", dedupKey: "idx-100")
        #expect(try await queue.appendNow([first]) == [.stored(first.id)])
        let batch = try await queue.nextBatch(sink: "a", maxEvents: 10)
        #expect(try batch.map(storedID) == [first.id])
        try await queue.acknowledge(sink: "a", batch)
        #expect(try await queue.stats().depth == 0)

        let retry = makeEvent(device: "gate-1", dedupKey: "idx-100")
        #expect(try await queue.appendNow([retry]) == [.duplicate(of: first.id)])
        #expect(try await queue.stats().depth == 0)
        #expect(try await queue.nextBatch(sink: "a", maxEvents: 10).isEmpty)
        #expect(try await queue.stats().duplicates == 1)
    }

    @Test("maintain() forgets keys older than the dedup window, and only those")
    func windowExpires() async throws {
        let fixture = try QueueFixture(dedupWindowHours: 72)
        defer { fixture.remove() }
        let queue = fixture.queue
        let first = makeEvent(device: "gate-1", dedupKey: "old")
        #expect(try await queue.appendNow([first]) == [.stored(first.id)])

        // Inside the window: still remembered.
        try await queue.maintain(now: Timestamp.now.adding(seconds: 71 * 3600))
        let early = makeEvent(device: "gate-1", dedupKey: "old")
        #expect(try await queue.appendNow([early]) == [.duplicate(of: first.id)])

        // Past the window: forgotten, so the same key is a new event.
        try await queue.maintain(now: Timestamp.now.adding(seconds: 73 * 3600))
        let late = makeEvent(device: "gate-1", dedupKey: "old")
        #expect(try await queue.appendNow([late]) == [.stored(late.id)])
        #expect(try await queue.stats().depth == 2)
    }
}
