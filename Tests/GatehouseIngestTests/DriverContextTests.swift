import Foundation
@testable import GatehouseCore
import GatehouseQueue
import Logging
import NIOCore
import Testing

@testable import GatehouseIngest

/// What a driver sees of one device: health reports that always become events, and one
/// transaction for drafts, quarantined input and the device's cursor.
@Suite("driver context")
struct DriverContextTests {
    static let door = """
          - id: door-1
            driver: generic-json
            type: door-controller
        """

    @Test("seen and down queue device.online and device.offline on every change of health, once each")
    func healthTransitionsAreEvents() async throws {
        let fixture = try IngestFixture(devices: Self.door)
        let door = try fixture.device("door-1")
        await door.seen()
        await door.seen()
        await door.down(reason: "no reply to 3 requests")
        await door.down(reason: "still no reply")
        await door.seen()
        let events = try await fixture.events()
        #expect(events.map(\.kind) == [.deviceOnline, .deviceOffline, .deviceOnline])
        #expect(events.map(\.device.id) == ["door-1", "door-1", "door-1"])
        #expect(events[1].attributes?["reason"] == .string("no reply to 3 requests"))
        await fixture.finish()
    }

    @Test("submit commits the drafts, the quarantined input and the device's cursor together")
    func submitWithQuarantineAndCursor() async throws {
        let fixture = try IngestFixture(devices: Self.door)
        let door = try fixture.device("door-1")
        #expect(try await door.cursor() == nil)
        let kept = QuarantineRecord(deviceID: "door-1", driver: "generic-json", reason: "record 41: unreadable", payload: Data([0xFF]))
        let outcomes = try await door.submit(
            [EventDraft(kind: .accessGranted, dedupKey: "rec-40")], quarantine: [kept], cursor: "41")
        #expect(outcomes.count == 1 && outcomes.allSatisfy(\.isAccepted))
        #expect(try await door.cursor() == "41")
        let entries = try await fixture.queue.quarantineEntries(deviceID: "door-1")
        #expect(entries.map(\.reason) == ["record 41: unreadable"])
        // The commit is traffic: the waiting device came up in the same transaction.
        #expect(try await fixture.events().map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.accessGranted, .deviceOnline])
        await fixture.finish()
    }

    @Test("a commit the disk budget refuses moves neither the cursor nor keeps the quarantined input")
    func refusedCommitKeepsTheCursor() async throws {
        let fixture = try IngestFixture(devices: Self.door, budget: 1)
        let door = try fixture.device("door-1")
        let kept = QuarantineRecord(deviceID: "door-1", driver: "generic-json", reason: "record 41: unreadable", payload: Data([0xFF]))
        let outcomes = try await door.submit([EventDraft(kind: .accessGranted, dedupKey: "rec-40")], quarantine: [kept], cursor: "41")
        #expect(outcomes.contains { !$0.isAccepted })
        #expect(PushRefusal.refusal(for: outcomes)?.code == "queue-full")
        #expect(try await door.cursor() == nil)
        #expect(try await fixture.queue.quarantineEntries(deviceID: "door-1").isEmpty)
        await fixture.finish()
    }

    @Test("a UHPPOTE controller that answers illegibly is alive: device.online is queued when it comes back")
    func uhppoteBadReplyBringsTheControllerBackOnline() async throws {
        let (responder, address) = try await UHPPOTEClientTests.illegibleResponder()
        defer { responder.close(promise: nil) }
        let fixture = try UHPPOTEClientTests.fixture(port: address.port ?? 0)
        let controller = try fixture.device("controller-1")
        await controller.down(reason: "no reply to 3 requests")
        let settings = try UHPPOTESettings.parse(controller.config).get()
        try await UHPPOTEClient.with(bindHost: "127.0.0.1", rejections: UHPPOTERejections(), logger: controller.logger) { client in
            let poller = UHPPOTEPoller(settings: settings, client: client, target: address, context: controller)
            await #expect(throws: UHPPOTEBadReply.self) { try await poller.ask(.getTime) }
        }
        #expect(try await fixture.events().map(\.kind) == [.deviceOffline, .deviceOnline])
        await fixture.finish()
    }
}
