import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// Hikvision access terminals through the built daemon: pushes by HTTP listening, and the
/// AcsEvent log read with Digest, resumed from the stored serialNo after a restart.
@Suite("hikvision-acs end to end", .serialized)
struct HikvisionACSEndToEndTests {
    static let mac = "44:19:b6:10:22:7e"

    static func terminal(password: String = "hik12345") -> HikvisionTerminal {
        var logger = Logger(label: "hik-sim")
        logger.logLevel = .warning
        return HikvisionTerminal(username: "admin", password: password, macAddress: mac, logger: logger)
    }

    /// Device events (not health or clock reports) the centre holds for `device`.
    static func events(_ receiver: CentralReceiver, device: String) throws -> [Event] {
        try receiver.deviceEvents(from: device)
    }

    /// The device entry of a terminal read by polling (`hik-poll`), for `TestSite.extraDevices`.
    static func pollDevice(port: Int) -> String {
        """
          - id: hik-poll
            driver: hikvision-acs
            vendor: hikvision
            type: access-terminal
            address: 127.0.0.1:\(port)
            auth: {username: admin, password: hik12345, scheme: digest}
            options: {mode: poll, poll_interval_seconds: "0.3", max_results: "30"}

        """
    }

    static func serialNo(_ event: Event) -> Int? {
        if case .number(let n)? = event.attributes?["serialNo"] { return Int(n) }
        return nil
    }


    @Test("pushed JSON and multipart alerts arrive with the right kinds, subjects and doors; a retry is not stored twice")
    func push() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extraDevices = """
              - id: hik-push
                driver: hikvision-acs
                vendor: hikvision
                type: access-terminal
                serial: "\(Self.mac.uppercased())"
                options: {mode: push}
            """
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let terminal = Self.terminal()
        let base = "http://127.0.0.1:\(ingest)/v1/hikvision-acs"
        let granted = terminal.record(count: 2, minor: 0x4b)
        let denied = terminal.record(count: 1, minor: 0x09, employee: { _ in nil }, cardNo: "3482219901")
        let opened = terminal.record(count: 1, minor: 0x19, employee: { _ in nil })
        #expect(await terminal.push([granted[0]], to: base + "/hik-push", format: .json) == [200])
        #expect(await terminal.push([granted[1]], to: base + "/hik-push", format: .multipart) == [200])
        // The device-agnostic URL: the device is found by macAddress.
        #expect(await terminal.push(denied + opened, to: base, format: .json) == [200, 200])
        // A listening-mode retry of an already stored alert.
        #expect(await terminal.push([granted[0]], to: base + "/hik-push", format: .json) == [200])
        #expect(await eventually(timeout: .seconds(20), poll: .milliseconds(50)) { try Self.events(receiver, device: "hik-push").count >= 4 }, "\(daemon.log.suffix(1500))")
        try await Task.sleep(for: .milliseconds(700))  // a duplicate would be forwarded by now
        let events = try Self.events(receiver, device: "hik-push")
        let bySerial = Dictionary(grouping: events, by: { Self.serialNo($0) ?? -1 })
        #expect(events.count == 4, "\(events.map(\.kind))")
        #expect(bySerial[1]?.first?.kind == .accessGranted)
        #expect(bySerial[1]?.first?.subject?.type == .person)
        #expect(bySerial[1]?.first?.subject?.value == "E1")
        #expect(bySerial[1]?.first?.point == "door-1")
        #expect(bySerial[1]?.first?.attributes?["verifyMode"] == .string("cardOrFace"))
        #expect(bySerial[2]?.first?.attributes?["pictures"] == .number(1))
        #expect(bySerial[3]?.first?.kind == .accessDenied)
        #expect(bySerial[3]?.first?.result == .denied)
        #expect(bySerial[3]?.first?.subject?.type == .card)
        #expect(bySerial[3]?.first?.attributes?["reason"] == .string("unknown-card"))
        #expect(bySerial[4]?.first?.kind == .doorOpened)

        // Malformed bodies are refused with a reason.
        let (status, body, _) = try await OperationsTests.post(base + "/hik-push", headers: [], body: "{\"eventType\":")
        #expect(status == 422 && body.contains("not valid JSON"), "\(status) \(body)")
        #expect(try await daemon.stop() == 0)
        await terminal.shutdown()
    }

    @Test("polling with Digest reads the log in pages; a restart continues from the stored serialNo, no gap, no duplicate")
    func poll() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let terminal = Self.terminal()
        let server = Task { try await terminal.run() }
        defer { server.cancel() }
        let terminalPort = try await terminal.waitUntilRunning()
        let locked = Self.terminal(password: "other")
        let lockedServer = Task { try await locked.run() }
        defer { lockedServer.cancel() }
        let lockedPort = try await locked.waitUntilRunning()
        locked.record(count: 3)
        terminal.record(count: 70)
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extraDevices = Self.pollDevice(port: terminalPort) + """
              - id: hik-wrong
                driver: hikvision-acs
                vendor: hikvision
                type: access-terminal
                address: 127.0.0.1:\(lockedPort)
                auth: {username: admin, password: hik12345, scheme: digest}
                options: {mode: poll, poll_interval_seconds: "0.3"}
            """
        let config = try site.write()
        let (first, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { try Self.events(receiver, device: "hik-poll").count >= 70 }, "\(first.log.suffix(2000))")
        #expect(try await first.stop() == 0)
        let searchesBefore = terminal.figures.beginSerialNos.count

        terminal.record(count: 25)
        let (second, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { try Self.events(receiver, device: "hik-poll").count >= 95 }, "\(second.log.suffix(2000))")
        try await Task.sleep(for: .seconds(1))  // a re-read would be forwarded by now
        let events = try Self.events(receiver, device: "hik-poll")
        let bySerial = Dictionary(grouping: events, by: { Self.serialNo($0) ?? -1 })
        #expect(Set(bySerial.keys) == Set(1...95), "missing: \(Set(1...95).subtracting(bySerial.keys).sorted().prefix(10))")
        #expect(bySerial.filter { $0.value.count > 1 }.isEmpty)
        #expect(events.allSatisfy { $0.kind == .accessGranted && $0.subject?.type == .person })
        // The first search after the restart asks for the record after the stored cursor.
        let after = terminal.figures.beginSerialNos.dropFirst(searchesBefore)
        #expect(after.first == 71, "\(Array(after.prefix(5)))")
        #expect(second.log.contains("resuming after serialNo 70"), "\(second.log.suffix(1500))")
        #expect(terminal.figures.refusedCredentials == 0)
        // Wrong credentials: the challenge is answered once, never in a loop; nothing stored.
        let wrong = locked.figures
        // One refusal per daemon start: after it the poller pauses 30 s instead of trying again.
        #expect((1...2).contains(wrong.refusedCredentials), "\(wrong)")
        #expect(try Self.events(receiver, device: "hik-wrong").isEmpty)
        #expect(second.log.contains("not retrying"), "\(second.log.suffix(1500))")
        #expect(try await second.stop() == 0)
        await terminal.shutdown()
        await locked.shutdown()
    }

    @Test("polling: an entry that cannot be read is quarantined and read past; a bad time keeps the record")
    func pollPastBadEntries() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let terminal = Self.terminal()
        let server = Task { try await terminal.run() }
        defer { server.cancel() }
        let terminalPort = try await terminal.waitUntilRunning()
        terminal.record(count: 2)
        let broken = terminal.recordMalformed { #""major":"five","minor":75,"serialNo":\#($0),"time":"2025-03-14T08:00:00+08:00""# }
        let badTime = terminal.recordMalformed {
            #""major":5,"minor":75,"serialNo":\#($0),"time":"2025-02-30T08:00:00+08:00","doorNo":1,"employeeNoString":"E9""#
        }
        terminal.record(count: 2)
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extraDevices = Self.pollDevice(port: terminalPort)
        let (daemon, _, admin) = try await DaemonProcess.start(configPath: try site.write())
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { try Self.events(receiver, device: "hik-poll").count == 5 }, "\(daemon.log.suffix(2000))")
        terminal.record(count: 1)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { try Self.events(receiver, device: "hik-poll").count == 6 }, "the log stalled behind a bad entry")
        let events = try Self.events(receiver, device: "hik-poll")
        #expect(Set(events.compactMap(Self.serialNo)) == Set(1...7).subtracting([Int(broken)]))
        let flagged = try #require(events.first { Self.serialNo($0) == Int(badTime) })
        #expect(flagged.timeSource == .gateway && flagged.source.deviceTime == "2025-02-30T08:00:00+08:00", "\(flagged)")
        let status = try await RobustnessTests.status(adminPort: admin)
        let queue = try #require(status["queue"] as? [String: Any])
        #expect(queue["quarantined"] as? Int == 1, "\(queue)")
        #expect(try await daemon.stop() == 0)
        let quarantine = try await DaemonProcess.runTool(["quarantine", "list", "--config", site.configPath])
        #expect(quarantine.stdout.contains("major 'five' is not an integer"), "\(quarantine.stdout)")
        await terminal.shutdown()
    }
}
