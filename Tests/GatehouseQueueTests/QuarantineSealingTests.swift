import Foundation
import GRDB
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Logging
import Testing

/// Issue 8 item 5: quarantined payloads are sealed with the site key, so no clear value is in
/// the queue file, and list/show/replay still read them.
@Suite("Quarantine sealing")
struct QuarantineSealingTests {
    static let plate = "川A12345"
    static let card = "8801234567"

    static func record() -> QuarantineRecord {
        QuarantineRecord(
            deviceID: "cam-1", driver: "generic-json", route: "/ingest/generic-json/cam-1", contentType: "application/json",
            remote: "192.168.10.5", reason: "subject.value: '\(plate)' is not valid for card \(card) (line 3)",
            payload: Data(#"{"plate":"\#(plate)","card":"\#(card)"}"#.utf8))
    }

    /// Every byte of the queue's files (database, WAL, shared memory).
    static func fileBytes(_ fixture: QueueFixture) throws -> Data {
        var all = Data()
        for name in try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path) {
            all += (FileManager.default.contents(atPath: fixture.directory.appendingPathComponent(name).path) ?? Data())
        }
        return all
    }

    static func containsClear(_ data: Data) -> Bool {
        [plate, card].contains { data.range(of: Data($0.utf8)) != nil }
    }

    @Test("payload and full reason are sealed on disk; the entry opens them and the listing reason is redacted")
    func sealedOnDisk() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let id = try await fixture.queue.quarantine(Self.record())
        #expect(!Self.containsClear(try Self.fileBytes(fixture)), "a clear plate or card number is in the queue files")

        let entry = try #require(try await fixture.queue.quarantineEntry(id: id))
        #expect(entry.payload == Self.record().payload)
        #expect(entry.reason == Self.record().reason)
        #expect(entry.redactedReason == "subject.value: '…' is not valid for card … (line 3)")
        #expect(entry.keyID != nil && entry.unreadable == nil)

        // The key was generated beside the queue file, readable by its owner only.
        let keyPath = fixture.directory.appendingPathComponent(PayloadSealer.generatedKeyFileName).path
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A restart reads the same key.
        let reopened = try fixture.reopen()
        #expect(try await reopened.quarantineEntry(id: id)?.payload == Self.record().payload)
    }

    @Test("a generated key file that cannot be read or is empty stops start-up with what to do")
    func unreadableKeyFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-key-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + PayloadSealer.generatedKeyFileName
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(throws: PayloadSealer.Failure.self) { try PayloadSealer.resolve(configured: nil, directory: directory) }
        do {
            _ = try PayloadSealer.resolve(configured: nil, directory: directory)
        } catch {
            #expect(error.description.contains("cannot read quarantine key file \(path)"))
        }
        try FileManager.default.removeItem(atPath: path)
        try Data().write(to: URL(fileURLWithPath: path))
        do {
            _ = try PayloadSealer.resolve(configured: nil, directory: directory)
            Issue.record("an empty key file was accepted")
        } catch {
            #expect(error.description.contains("is empty"))
        }
    }

    @Test("a configured key seals; another key cannot open the entry and says which key it needs")
    func rotatedKeyIsDetected() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let siteKey = PayloadSealer(secret: Secret(value: "site-key-one-0123456789", origin: "test"))
        let queue = try EventQueue(
            path: fixture.path, settings: fixture.settings, diskBudgetBytes: fixture.budget, sealer: siteKey, clock: MachineClock(), logger: Logger(label: "t"))
        let id = try await queue.quarantine(Self.record())
        #expect(try await queue.quarantineEntry(id: id)?.payload == Self.record().payload)

        let other = PayloadSealer(secret: Secret(value: "site-key-two-0123456789", origin: "test"))
        #expect(other.keyID != siteKey.keyID)
        let rotated = try EventQueue(
            path: fixture.path, settings: fixture.settings, diskBudgetBytes: fixture.budget, sealer: other, clock: MachineClock(), logger: Logger(label: "t"))
        let entry = try #require(try await rotated.quarantineEntry(id: id))
        #expect(entry.payload.isEmpty)
        #expect(entry.unreadable?.contains("sealed with quarantine key \(siteKey.keyID)") == true, "\(entry.unreadable ?? "")")
        #expect(!entry.truncated)
        #expect(entry.reason == entry.redactedReason, "the full reason is sealed too")
    }

    @Test("entries kept in clear by an earlier version are sealed when the queue opens")
    func legacyEntriesAreSealed() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        // Written the way version 1 wrote it: no key id, payload and reason in clear.
        let record = Self.record()
        let database = try DatabaseQueue(path: fixture.path)
        try await database.write { db in
            try db.execute(
                sql: "INSERT INTO quarantine(received_ms, device_id, driver, reason, payload, payload_bytes) VALUES (1, 'cam-1', 'generic-json', ?, ?, ?)",
                arguments: [record.reason, record.payload, record.payload.count])
        }
        try database.close()
        let reopened = try fixture.reopen()
        let entry = try #require(try await reopened.quarantineEntries().first)
        #expect(entry.keyID != nil)
        #expect(entry.payload == record.payload)
        #expect(entry.reason == record.reason)
        // Checkpoint so that the WAL's new pages reach the main file, then look at every byte.
        _ = try await reopened.quarantineEntries()
        try await reopened.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        #expect(!Self.containsClear(try Self.fileBytes(fixture)), "the clear legacy payload lingers in the file")
    }
}

@Suite("Value redaction")
struct ValueRedactorTests {
    @Test("values in a reason are hidden, the words of the message stay")
    func reasons() {
        #expect(ValueRedactor.redactText("field 'plate': '苏E12345' is not valid") == "field 'plate': '…' is not valid")
        #expect(ValueRedactor.redactText("line 2: card 12345678 unknown; at most 200") == "line 2: card … unknown; at most 200")
        #expect(ValueRedactor.redactText("phone 13800138000, name 张三") == "phone …, name …")
        #expect(ValueRedactor.redactText("empty body") == "empty body")
        #expect(ValueRedactor.redactText("owner 'wei.zhang@example.cn' unknown") == "owner '…' unknown")
    }
}
