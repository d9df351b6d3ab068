import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Testing

@Suite("Quarantine")
struct QuarantineTests {
    static func record(_ size: Int, device: String? = "cam-1", reason: String = "no mapping for code 77") -> QuarantineRecord {
        QuarantineRecord(
            deviceID: device, driver: "generic-json", route: "/ingest/generic-json/cam-1",
            contentType: "application/json", remote: "192.168.10.5", reason: reason,
            payload: Data((0..<size).map { UInt8(truncatingIfNeeded: $0 % 251) }))
    }

    @Test("an entry keeps reason, device, driver and payload; long payloads are cut but their size is kept")
    func storesAndTruncates() async throws {
        let fixture = try QueueFixture(quarantineMaxPayloadBytes: 1024)
        defer { fixture.remove() }
        let queue = fixture.queue
        let received = Timestamp(milliseconds: 1_750_000_000_123)

        let short = Self.record(200, reason: "missing plate")
        let shortID = try await queue.quarantine(short, receivedAt: received)
        let long = Self.record(3000, device: nil, reason: "not JSON")
        let longID = try await queue.quarantine(long)
        #expect(longID > shortID)

        let first = try #require(try await queue.quarantineEntry(id: shortID))
        #expect(first.reason == "missing plate")
        #expect(first.deviceID == "cam-1")
        #expect(first.driver == "generic-json")
        #expect(first.route == "/ingest/generic-json/cam-1")
        #expect(first.contentType == "application/json")
        #expect(first.remote == "192.168.10.5")
        #expect(first.payload == short.payload)
        #expect(first.payloadBytes == 200)
        #expect(!first.truncated)
        #expect(first.receivedAt == received)
        #expect(first.replayedAt == nil)

        let second = try #require(try await queue.quarantineEntry(id: longID))
        #expect(second.deviceID == nil)
        #expect(second.payload.count == 1024)
        #expect(second.payload == long.payload.prefix(1024))
        #expect(second.payloadBytes == 3000)
        #expect(second.truncated)

        let stats = try await queue.stats()
        #expect(stats.quarantined == 2)
        #expect(stats.quarantineWaiting == 2)
        #expect(stats.usedBytes == 200 + 1024 + 2 * Int64(PayloadSealer.overhead), "sealed sizes are what the budget holds")
        #expect(stats.depth == 0, "quarantine entries are not events")
        #expect(try await queue.quarantineEntry(id: 9999) == nil)
    }

    @Test("entries are listed newest first; replayed ones are hidden by pendingOnly")
    func listingAndReplay() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        var ids: [Int64] = []
        for index in 0..<4 {
            ids.append(try await queue.quarantine(Self.record(50, device: index == 3 ? "cam-2" : "cam-1", reason: "r\(index)")))
        }
        let all = try await queue.quarantineEntries()
        #expect(all.map(\.id) == ids.reversed())
        #expect(all.map(\.reason) == ["r3", "r2", "r1", "r0"])
        #expect(try await queue.quarantineEntries(limit: 2).map(\.id) == [ids[3], ids[2]])
        #expect(try await queue.quarantineEntries(deviceID: "cam-2").map(\.id) == [ids[3]])

        let replayed = [eventIDs.next(), eventIDs.next()]
        let at = Timestamp(milliseconds: 1_750_000_100_000)
        try await queue.markReplayed(id: ids[1], eventIDs: replayed, at: at)

        let entry = try #require(try await queue.quarantineEntry(id: ids[1]))
        #expect(entry.replayedAt == at)
        #expect(entry.replayedEvents == replayed.map(\.description))
        #expect(try await queue.quarantineEntries(pendingOnly: true).map(\.id) == [ids[3], ids[2], ids[0]])
        #expect(try await queue.quarantineEntries().count == 4, "replayed entries are kept for audit")
        let stats = try await queue.stats()
        #expect(stats.quarantined == 4)
        #expect(stats.quarantineWaiting == 3)
    }

    @Test("quarantine counts against the budget and pushes out older quarantine, never events")
    func quarantineEvictsOnlyQuarantine() async throws {
        let budget: Int64 = 16 << 10
        let fixture = try QueueFixture(budget: budget, quarantineMaxPayloadBytes: 1024)
        defer { fixture.remove() }
        let queue = fixture.queue
        let events = (0..<6).map { _ in makeEvent(.cameraMotion, padding: 1000) }
        #expect(try await queue.appendNow(events).allSatisfy { $0.isStored })
        let eventBytes = try await queue.stats().usedBytes

        var ids: [Int64] = []
        for index in 0..<12 {
            ids.append(try await queue.quarantine(Self.record(1000, reason: "r\(index)")))
            let stats = try await queue.stats()
            #expect(stats.usedBytes <= budget)
            #expect(stats.depth == 6)
        }
        let kept = try await queue.quarantineEntries(limit: 100).map(\.id)
        // Each entry is held sealed: its payload plus the nonce and tag.
        let entryBytes = 1000 + PayloadSealer.overhead
        #expect(kept.count == Int((budget - eventBytes) / Int64(entryBytes)))
        #expect(kept == ids.suffix(kept.count).reversed(), "the oldest entries go first")
        let stats = try await queue.stats()
        #expect(stats.evicted["quarantine"] == Int64(12 - kept.count))
        #expect(stats.evicted["telemetry"] == 0)
        #expect(stats.quarantined == 12)
        #expect(stats.usedBytes == eventBytes + Int64(kept.count * entryBytes))
        #expect(try await queue.everything(sink: "x").map(storedID) == events.map(\.id))
    }

    @Test("events push out quarantine before any event")
    func eventsEvictQuarantineFirst() async throws {
        let budget: Int64 = 16 << 10
        let fixture = try QueueFixture(budget: budget, quarantineMaxPayloadBytes: 1024)
        defer { fixture.remove() }
        let queue = fixture.queue
        let telemetry = (0..<4).map { _ in makeEvent(.cameraMotion, padding: 1000) }
        _ = try await queue.appendNow(telemetry)
        for index in 0..<6 { try await queue.quarantine(Self.record(1000, reason: "r\(index)")) }
        let (more, _) = try await EvictionTests.fill(queue, .cameraMotion, count: 4)
        #expect(more.count == 4, "telemetry may evict quarantine")
        #expect(try await queue.everything(sink: "x").count == 8)
        let stats = try await queue.stats()
        #expect((stats.evicted["quarantine"] ?? 0) > 0)
        #expect(stats.evicted["telemetry"] == 0)
        #expect(stats.usedBytes <= budget)
        #expect(stats.usedBytes == (try await queue.recomputedUsage()))
    }

    @Test("QueueFullError when the budget is full of events")
    func fullOfEvents() async throws {
        let fixture = try QueueFixture(budget: 1 << 30, quarantineMaxPayloadBytes: 1024)
        defer { fixture.remove() }
        let queue = fixture.queue
        _ = try await queue.appendNow((0..<5).map { _ in makeEvent(.cameraMotion, padding: 1000) })
        let used = try await queue.stats().usedBytes
        fixture.queue.update(settings: fixture.settings, diskBudgetBytes: used + 10)

        await #expect(throws: QueueFullError.self) {
            try await queue.quarantine(Self.record(500))
        }
        let stats = try await queue.stats()
        #expect(stats.quarantined == 0)
        #expect(stats.depth == 5)
        #expect(stats.usedBytes == used)
        #expect(try await queue.quarantineEntries().isEmpty)
    }

    @Test(
        "a refused quarantine entry leaves the counters matching what is stored")
    func refusedQuarantineKeepsLedger() async throws {
        let fixture = try QueueFixture(budget: 1 << 30, quarantineMaxPayloadBytes: 1024)
        defer { fixture.remove() }
        let queue = fixture.queue
        _ = try await queue.appendNow((0..<5).map { _ in makeEvent(.cameraMotion, padding: 1000) })
        try await queue.quarantine(Self.record(100))
        let used = try await queue.stats().usedBytes
        fixture.queue.update(settings: fixture.settings, diskBudgetBytes: used)

        // Needs 1000 bytes; evicting the 100-byte entry is not enough.
        await #expect(throws: QueueFullError.self) {
            try await queue.quarantine(Self.record(1000))
        }
        let stats = try await queue.stats()
        let entries = try await queue.quarantineEntries()
        #expect(stats.usedBytes == (try await queue.recomputedUsage()), "quarantine_bytes counter disagrees with the table")
        #expect(stats.evicted["quarantine"] == Int64(1 - entries.count), "an entry was deleted without being counted")
    }
}
