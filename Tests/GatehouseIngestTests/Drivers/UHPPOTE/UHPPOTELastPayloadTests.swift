import Foundation
@testable import GatehouseCore
import GatehouseSimulation
import Logging
import NIOCore
import Testing

@testable import GatehouseIngest

/// The console's "last raw payload" for a UHPPOTE controller: the last log record read, as a hex
/// dump without the card's bytes and its decoded fields under the privacy policy.
@Suite("uhppote last payload")
struct UHPPOTELastPayloadTests {
    @Test("a log read keeps the last record's reply for the console; the card appears only as the policy stores it")
    func logReadKeepsTheLastRecord() async throws {
        var logger = Logger(label: "sim")
        logger.logLevel = .warning
        let sim = UHPPOTEController(options: UHPPOTEController.Options(serial: UHPPOTEClientTests.serial), logger: logger)
        let port = try await sim.start()
        let fixture = try UHPPOTEClientTests.fixture(port: port)
        let controller = try fixture.device("controller-1")
        #expect(fixture.pipeline.lastPayload(of: "controller-1") == nil)
        sim.swipe(card: 7_654_321, door: 1)
        let newest = sim.swipe(card: 8_165_538, door: 2, direction: 2)
        let settings = try UHPPOTESettings.parse(controller.config).get()
        try await UHPPOTEClient.with(bindHost: "127.0.0.1", rejections: UHPPOTERejections(), logger: controller.logger) { client in
            let poller = UHPPOTEPoller(
                settings: settings, client: client, target: try SocketAddress(ipAddress: "127.0.0.1", port: port), context: controller)
            try await poller.readLog(upTo: newest)
        }
        let shown = try #require(fixture.pipeline.lastPayload(of: "controller-1"))
        #expect(shown.mapped && shown.contentType == UHPPOTEEventCodes.consoleContentType)
        let lines = shown.text.split(separator: "\n")
        #expect(lines.count == 5, "four rows of 16 bytes and the fields: \(shown.text)")
        // 0x17 0xB0 …, the card's four bytes left out of the dump.
        #expect(lines.first?.hasPrefix("17 b0 ") == true)
        #expect(lines[1].hasPrefix("·· ·· ·· ·· "), "bytes 16–19 are the card: \(lines[1])")
        #expect(shown.text.contains("index \(newest)") && shown.text.contains("door 2") && shown.text.contains("out"))
        // Under `keep` the fields show the card; masked, they show only what the event stores.
        #expect(shown.text.contains("card 8165538"))
        var masked = PrivacyPolicy.default
        masked.modes[.card] = .mask
        let maskedText = try #require(fixture.pipeline.devices.lastPayload("controller-1")).shown(under: masked).text
        let stored = PrivacyPolicy.mask("8165538", type: .card)
        #expect(!maskedText.contains("8165538") && maskedText.contains("card \(stored)"), "\(maskedText)")
        // The hex dump cannot give the card away either (8165538 = 0x7C98A2, little-endian a2 98 7c 00).
        #expect(!maskedText.contains("a2 98 7c"))
        await fixture.finish()
        await sim.stop()
    }
}
