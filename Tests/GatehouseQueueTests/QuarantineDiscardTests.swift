import Foundation
import GRDB
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Logging
import Testing

/// Issue 14 item 1: an operator discards a quarantined entry with a reason; the payload is
/// erased, who/when/why, size, source and the payload's SHA-256 stay on the row.
@Suite("Quarantine discard")
struct QuarantineDiscardTests {
    @Test("a discarded entry leaves the waiting list and the budget, keeps who/when/why and the SHA-256, and loses its payload")
    func discard() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let record = QuarantineSealingTests.record()
        let id = try await fixture.queue.quarantine(record)
        let kept = try await fixture.queue.quarantineEntries(pendingOnly: true)
        #expect(kept.map(\.id) == [id])
        #expect(try await fixture.queue.stats().usedBytes > 0)

        await #expect(throws: EventQueue.DiscardRefused.self) { try await fixture.queue.discardQuarantine(id: id, by: "installer", reason: "  ") }
        let at = Timestamp(milliseconds: 1_700_000_000_000)
        let entry = try await fixture.queue.discardQuarantine(id: id, by: "installer", reason: "test payload from the installer", at: at)
        #expect(entry.discarded == QuarantineEntry.Discard(at: at, by: "installer", reason: "test payload from the installer"))
        #expect(entry.payloadSHA256 == PayloadSealer.digest(record.payload))
        #expect(entry.payload.isEmpty)
        #expect(entry.payloadBytes == record.payload.count)
        #expect(entry.deviceID == "cam-1" && entry.driver == "generic-json" && entry.remote == "192.168.10.5")
        #expect(entry.reason == entry.redactedReason, "the sealed full reason went with the payload")
        #expect(!entry.isWaiting)

        #expect(try await fixture.queue.quarantineEntries(pendingOnly: true).isEmpty)
        #expect(try await fixture.queue.quarantineEntries().map(\.id) == [id], "listed with --all, as discarded")
        let stats = try await fixture.queue.stats()
        #expect(stats.quarantineWaiting == 0)
        #expect(stats.usedBytes == 0, "the erased payload's bytes left the disk budget")
        let stored = try await fixture.queue.pool.read { db in try Int.fetchOne(db, sql: "SELECT length(payload) FROM quarantine WHERE id = ?", arguments: [id]) }
        #expect(stored == 0)
        await #expect(throws: EventQueue.DiscardRefused.self) { try await fixture.queue.discardQuarantine(id: id, by: "installer", reason: "again") }
        await #expect(throws: EventQueue.DiscardRefused.self) { try await fixture.queue.discardQuarantine(id: id + 100, by: "installer", reason: "none") }
    }

    @Test("a replayed entry cannot be discarded")
    func replayedStays() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let id = try await fixture.queue.quarantine(QuarantineSealingTests.record())
        try await fixture.queue.markReplayed(id: id, eventIDs: [])
        await #expect(throws: EventQueue.DiscardRefused.self) { try await fixture.queue.discardQuarantine(id: id, by: "installer", reason: "late") }
        #expect(try await fixture.queue.quarantineEntry(id: id)?.payload == QuarantineSealingTests.record().payload)
    }

    @Test("a queue of the version before discard migrates with its quarantine intact, and its entries can be discarded")
    func migratesFromPreviousVersion() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let path = fixture.directory.appendingPathComponent("previous.sqlite").path
        let record = QuarantineSealingTests.record()
        let sealer = PayloadSealer(secret: Secret(value: "previous-version-site-key", origin: "test"))
        do {
            let database = try DatabaseQueue(path: path)
            try QueueSchema.migrator.migrate(database, upTo: "v4-queued-per-priority")
            let sealedPayload = try sealer.seal(record.payload)
            try await database.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO quarantine(received_ms, device_id, driver, reason, payload, payload_bytes, key_id, reason_sealed)
                        VALUES (1, 'cam-1', 'generic-json', ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        ValueRedactor.redactText(record.reason), sealedPayload, record.payload.count, sealer.keyID,
                        try sealer.seal(Data(record.reason.utf8)),
                    ])
                try db.execute(
                    sql: "INSERT INTO counters(name, value) VALUES ('quarantine_bytes', ?), ('quarantined_total', 1)", arguments: [sealedPayload.count])
            }
            try database.close()
        }
        let queue = try EventQueue(
            path: path, settings: fixture.settings, diskBudgetBytes: fixture.budget, sealer: sealer, clock: MachineClock(), logger: testLogger())
        let applied = try await queue.pool.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(applied.contains("v6-quarantine-discard"))
        let entry = try #require(try await queue.quarantineEntries(pendingOnly: true).first)
        #expect(entry.payload == record.payload)
        #expect(entry.reason == record.reason)
        #expect(entry.discarded == nil && entry.payloadSHA256 == nil)
        #expect(try await queue.stats().quarantineWaiting == 1)
        let discarded = try await queue.discardQuarantine(id: entry.id, by: "installer", reason: "old capture")
        #expect(discarded.payloadSHA256 == PayloadSealer.digest(record.payload))
        let stats = try await queue.stats()
        #expect(stats.quarantineWaiting == 0)
        #expect(stats.usedBytes == 0)
    }
}
