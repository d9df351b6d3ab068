import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Testing

@Suite("Dedup by device, dedup key and content fingerprint")
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
        let batch = try queue.nextBatch(sink: "a", maxEvents: 10)
        #expect(try batch.map(storedID) == [first.id])
        try await queue.acknowledge(sink: "a", batch)
        #expect(try await queue.stats().depth == 0)

        let retry = makeEvent(device: "gate-1", dedupKey: "idx-100")
        #expect(try await queue.appendNow([retry]) == [.duplicate(of: first.id)])
        #expect(try await queue.stats().depth == 0)
        #expect(try queue.nextBatch(sink: "a", maxEvents: 10).isEmpty)
        #expect(try await queue.stats().duplicates == 1)
    }

    @Test("a key is recognised from the recent keys, after a restart, and after a group commit folded them into the keyed table")
    func recentKeysFoldAndReload() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let first = makeEvent(device: "gate-1", dedupKey: "idx-1")
        #expect(try await queue.appendNow([first]) == [.stored(first.id)])
        #expect(try await queue.appendNow([makeEvent(device: "gate-1", dedupKey: "idx-1")]) == [.duplicate(of: first.id)])

        // A restart reads the recent keys back from dedup_log.
        let reopened = try fixture.reopen()
        #expect(reopened.recentDedup.count == 1)
        #expect(try await reopened.appendNow([makeEvent(device: "gate-1", dedupKey: "idx-1")]) == [.duplicate(of: first.id)])

        // Enough keys make the next group commit move them all into `dedup`, in the same transaction.
        let runner = Task { await reopened.run() }
        let count = RecentDedupKeys.foldThreshold + 10
        let events = (0..<count).map { makeEvent(device: "gate-\($0 % 5)", dedupKey: "k-\($0)") }
        for chunk in stride(from: 0, to: count, by: 1000) {
            let outcomes = try await reopened.append(Array(events[chunk..<min(chunk + 1000, count)]))
            #expect(outcomes.allSatisfy { $0.isStored })
        }
        let last = makeEvent(device: "gate-9", dedupKey: "after-fold")
        #expect(try await reopened.append([last]) == [.stored(last.id)])
        #expect(reopened.recentDedup.count < RecentDedupKeys.foldThreshold)
        let (keyed, logged) = try await reopened.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dedup") ?? 0, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dedup_log") ?? 0)
        }
        #expect(keyed >= RecentDedupKeys.foldThreshold)
        #expect(keyed + logged == count + 2)  // first, the keyed ones, last
        // Recognised from either place, and a reused key with other content is still a new event.
        #expect(try await reopened.append([makeEvent(device: "gate-1", dedupKey: "idx-1")]) == [.duplicate(of: first.id)])
        #expect(try await reopened.append([makeEvent(device: "gate-0", dedupKey: "k-0")]) == [.duplicate(of: events[0].id)])
        #expect(try await reopened.append([makeEvent(device: "gate-9", dedupKey: "after-fold")]) == [.duplicate(of: last.id)])
        let reused = makeEvent(device: "gate-0", dedupKey: "k-0", fingerprint: "other content")
        #expect(try await reopened.append([reused]) == [.stored(reused.id)])
        reopened.close()
        await runner.value
        #expect(try await reopened.stats().depth == Int64(count + 3))  // first, the keyed ones, last, the reused key
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

    @Test("a reused key with different content is a new event, counted as a collision; each is then recognised")
    func reusedKeyWithOtherContent() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        // A camera's plate counter restarted: key 1 again, another car.
        let before = makeEvent(device: "lpr-1", dedupKey: "cam:1", fingerprint: "aaaa")
        let after = makeEvent(device: "lpr-1", dedupKey: "cam:1", fingerprint: "bbbb")
        #expect(try await queue.appendNow([before]) == [.stored(before.id)])
        #expect(try await queue.appendNow([after]) == [.stored(after.id)])
        var stats = try await queue.stats()
        #expect(stats.depth == 2 && stats.duplicates == 0 && stats.dedupCollisions == 1)
        // Retries of either are duplicates of the right one.
        let retryAfter = makeEvent(device: "lpr-1", dedupKey: "cam:1", fingerprint: "bbbb")
        let retryBefore = makeEvent(device: "lpr-1", dedupKey: "cam:1", fingerprint: "aaaa")
        #expect(try await queue.appendNow([retryAfter, retryBefore]) == [.duplicate(of: after.id), .duplicate(of: before.id)])
        stats = try await queue.stats()
        #expect(stats.depth == 2 && stats.duplicates == 2 && stats.dedupCollisions == 1)
        // The counters survive a restart.
        let reopened = try fixture.reopen()
        #expect(try await reopened.stats().dedupCollisions == 1)
    }

    @Test("a placeholder id on every read: every different read is stored, within one group commit too")
    func placeholderKey() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }
        let reads = (0..<5).map { makeEvent(device: "anpr-1", dedupKey: "x", fingerprint: "f\($0)") }
        let resend = makeEvent(device: "anpr-1", dedupKey: "x", fingerprint: "f3")
        let outcomes = try await queue.append(reads + [resend])
        #expect(outcomes == reads.map { .stored($0.id) } + [.duplicate(of: reads[3].id)])
        let stats = try await queue.stats()
        #expect(stats.depth == 5 && stats.duplicates == 1 && stats.dedupCollisions == 4)
        queue.close()
        await runner.value
    }

    @Test("records quarantined with a cursor are kept in the same transaction; a refused one holds the cursor")
    func quarantineWithCursor() async throws {
        let fixture = try QueueFixture(budget: 200_000)
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }
        let good = makeEvent(device: "ctl-1", dedupKey: "ctl:1", padding: 60_000)
        let bad = QuarantineRecord(deviceID: "ctl-1", driver: "test", reason: "record 2 unreadable", payload: Data([1, 2, 3]))
        let outcomes = try await queue.append([good], quarantine: [bad], cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "2"))
        #expect(outcomes == [.stored(good.id)])
        #expect(try await queue.deviceCursor("ctl-1") == "2")
        let kept = try await queue.quarantineEntries(deviceID: "ctl-1")
        #expect(kept.map(\.reason) == ["record 2 unreadable"] && kept.first?.payload == Data([1, 2, 3]))

        // With the budget full of events, a record that needs more room than older quarantine
        // frees cannot be kept (quarantine never evicts events): the cursor stays where it was.
        let filler = (0..<2).map { makeEvent(device: "ctl-1", dedupKey: "ctl:f\($0)", padding: 60_000) }
        #expect(try await queue.append(filler).allSatisfy { $0.isStored })
        let big = QuarantineRecord(deviceID: "ctl-1", driver: "test", reason: "record 3 unreadable", payload: Data(count: 60_000))
        let refused = try await queue.append([], quarantine: [big], cursor: DeviceCursorUpdate(deviceID: "ctl-1", cursor: "3"))
        #expect(refused.count == 1 && refused.allSatisfy(isRefused))
        #expect(try await queue.deviceCursor("ctl-1") == "2")
        queue.close()
        await runner.value
    }
}
