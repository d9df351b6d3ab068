import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Synchronization
import Testing

@testable import GatehouseIngest

/// The registrar through real loopback sockets with the simulated device, the driver's time on
/// a ManualClock: registration, bans, keepalive loss, alarms, catalog, malformed input.
@Suite("gb28181 registrar", .serialized)
struct GB28181RegistrarTests {
    static let ipc = "34020000001320000001"
    static let nvr = "34020000001180000001"

    /// A fixture on a ManualClock with the gb28181 driver running its devices on a free port.
    final class Harness: Sendable {
        let clock = ManualClock()
        let fixture: IngestFixture
        let driver: GB28181Driver
        let port: Int
        let tasks: [Task<Void, any Error>]

        init(options: String = "") throws {
            port = try LoopbackPort.free()
            let common = "listen_host: 127.0.0.1, listen_port: \(port), failures_before_ban: 3, ban_minutes: 10\(options.isEmpty ? "" : ", " + options)"
            fixture = try IngestFixture(
                devices: """
                      - id: gate-ipc
                        driver: gb28181
                        type: camera
                        vendor: generic
                        serial: "\(GB28181RegistrarTests.ipc)"
                        time_zone: Asia/Shanghai
                        auth: {username: "\(GB28181RegistrarTests.ipc)", password: gbPass123, scheme: digest}
                        options: {\(common)}
                      - id: lobby-nvr
                        driver: gb28181
                        type: nvr
                        vendor: generic
                        serial: "\(GB28181RegistrarTests.nvr)"
                        auth: {username: "\(GB28181RegistrarTests.nvr)", password: nvrPass456, scheme: digest}
                        options: {\(common)}
                    """, clock: clock)
            let driver = GB28181Driver()
            self.driver = driver
            let context = fixture.context
            tasks = ["gate-ipc", "lobby-nvr"].compactMap { context.device(id: $0) }.map { device in
                Task { try await driver.run(device: device, context: context) }
            }
        }

        func device(_ id: String = GB28181RegistrarTests.ipc, password: String = "gbPass123", transport: GB28181Device.Transport = .udp, channels: [(id: String, name: String)] = []) async throws -> GB28181Device {
            await listening()
            let device = GB28181Device.loopback(id, password: password, port: port, transport: transport, channels: channels)
            #expect(await eventually { (try? await device.start()) != nil })
            return device
        }

        /// Waits until the listener is bound (a TCP connection to it succeeds), so a first
        /// datagram is never sent into a closed port.
        func listening() async { await Harness.listening(port: port) }

        static func listening(port: Int) async {
            var options = GB28181Device.Options(deviceID: "probe", password: "")
            options.gatewayPort = port
            options.transport = .tcp
            let probe = GB28181Device(options: options, logger: Logger(label: "probe"))
            _ = await eventually { (try? await probe.start()) != nil }
            await probe.stop()
        }

        /// Registers once the listener is up; the final status.
        func register(_ device: GB28181Device) async -> Int? {
            var status: Int?
            _ = await eventually {
                status = await device.register()
                return status != nil
            }
            return status
        }

        func events(_ kind: EventKind? = nil) async throws -> [Event] {
            try await fixture.events().filter { kind == nil || $0.kind == kind }
        }

        func finish() async {
            for task in tasks { task.cancel() }
            for task in tasks { _ = try? await task.value }
            await fixture.finish()
        }
    }

    @Test("REGISTER → 401 → Digest → 200 with the Date header and device.online; a wrong password is 403, banned after 3 until the clock passes 10 min")
    func registerAndBan() async throws {
        let h = try Harness()
        let device = try await h.device()
        #expect(await h.register(device) == 200)
        let date = try #require(device.stats.registeredDate)
        #expect(date.count == 23 && date.contains("T") && !date.contains("Z"))
        #expect(await eventually { try await h.events(.deviceOnline).map(\.device.id) == ["gate-ipc"] })

        let intruder = try await h.device(password: "guess")
        for _ in 0..<3 { #expect(await intruder.register() == 403) }
        #expect(await eventually { try await h.events(.deviceOffline).first?.attributes?["reason"] == .string("auth failure") })
        // Banned now: even the right password is refused, without a challenge.
        #expect(await intruder.register(password: "gbPass123") == 403)
        #expect(h.driver.counters["banned"] == 1)
        #expect(h.driver.counters["auth failure"] == 3)
        h.clock.advance(by: .seconds(601))
        #expect(await intruder.register(password: "gbPass123") == 200)
        await device.stop()
        await intruder.stop()
        await h.finish()
    }

    @Test("keepalives keep it up; silence for interval × misses on the clock → offline (keepalive timeout); a keepalive brings it back; Expires 0 → offline (unregistered)")
    func keepaliveLossAndUnregister() async throws {
        let h = try Harness(options: "keepalive_interval_seconds: 30, keepalive_misses: 2")
        let device = try await h.device(transport: .tcp)
        #expect(await h.register(device) == 200)
        #expect(await device.keepalive() == 200)
        h.clock.advance(by: .seconds(50))
        #expect(await device.keepalive() == 200)
        h.clock.advance(by: .seconds(50))
        // 50 s since the last keepalive, under the 60 s timeout: still online.
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await h.events(.deviceOffline).isEmpty)
        h.clock.advance(by: .seconds(15))
        #expect(await eventually {
            h.clock.advance(by: .seconds(1))
            return try await h.events(.deviceOffline).first?.attributes?["reason"] == .string("keepalive timeout")
        })
        #expect(await device.keepalive() == 200)
        #expect(await eventually { try await h.events(.deviceOnline).count == 2 })
        #expect(await device.register(expires: 0) == 200)
        #expect(await eventually { try await h.events(.deviceOffline).last?.attributes?["reason"] == .string("unregistered") })
        // Not registered any more: a keepalive is refused so the device registers again.
        #expect(await device.keepalive() == 404)
        await device.stop()
        await h.finish()
    }

    @Test("alarms: committed with kind and point, acknowledged with a Response; a re-sent alarm is one event, a re-used SN with other content another")
    func alarms() async throws {
        let h = try Harness()
        let device = try await h.device()
        #expect(await h.register(device) == 200)
        #expect(await device.alarm(channel: "34020000001310000001", sn: 1207, type: 2) == 200)
        #expect(await device.alarm(channel: "34020000001310000001", sn: 1207, type: 2) == 200)
        #expect(await device.alarm(channel: "34020000001310000001", sn: 1207, type: 6, time: "2025-03-14T11:00:00") == 200)
        #expect(await device.alarm(sn: 9, method: 2, type: nil, description: "door contact") == 200)
        #expect(await eventually { device.stats.alarmAcks.count == 4 })
        #expect(device.stats.alarmAcks == ["1207", "1207", "1207", "9"])
        let motion = try await h.events(.cameraMotion)
        #expect(motion.count == 1)
        #expect(motion.first?.point == "34020000001310000001")
        #expect(try await h.events(.cameraIntrusion).count == 1)
        #expect(try await h.events(.alarmInput).first?.attributes?["description"] == .string("door contact"))
        // The last MANSCDP body (not a keepalive) is kept for the console's device page, as unmapped.
        let last = try #require(h.fixture.pipeline.lastPayload(of: "gate-ipc"))
        #expect(!last.mapped && last.text.contains("<CmdType>Alarm</CmdType>"), "\(last.text)")
        await device.stop()
        await h.finish()
    }

    @Test("an NVR over TCP answers the Catalog in pages, GB2312 names; DeviceInfo and DeviceStatus are asked; channel names go on alarms")
    func catalog() async throws {
        let h = try Harness()
        let channels = [("34020000001310000011", "北门入口"), ("34020000001310000012", "南门"), ("34020000001310000013", "车库")].map { (id: $0.0, name: $0.1) }
        let nvr = try await h.device(Self.nvr, password: "nvrPass456", transport: .tcp, channels: channels)
        #expect(await h.register(nvr) == 200)
        #expect(await eventually { Set(nvr.stats.queries) == ["Catalog", "DeviceInfo", "DeviceStatus"] })
        let session = try #require(h.driver.listeners.registrar(port: h.port)?.session(Self.nvr))
        #expect(await eventually { session.snapshot.channels.count == 3 })
        #expect(session.snapshot.channels["34020000001310000011"] == GB28181Channel(name: "北门入口", status: "ON"))
        // `gatehouse status` shows the registration, transport, source and channels under the device.
        func detail() -> [String: String] { h.fixture.pipeline.devices.healthSnapshot.first { $0.id == "lobby-nvr" }?.detail ?? [:] }
        #expect(await eventually { detail()["channels"] != nil })
        let detail = detail()
        #expect(detail["transport"] == "TCP" && detail["registration"] == "registered")
        #expect(detail["source"]?.hasPrefix("127.0.0.1:") == true && detail["lastKeepalive"] != nil)
        #expect(detail["channels"]?.hasPrefix("3: 34020000001310000011 北门入口") == true)
        #expect(await eventually { session.snapshot.deviceInfo["Model"] == "GB-NVR" && session.snapshot.deviceInfo["Online"] == "ONLINE" })
        #expect(await nvr.alarm(channel: "34020000001310000011", sn: 5, type: 2) == 200)
        #expect(await eventually { try await h.events(.cameraMotion).first?.attributes?["pointName"] == .string("北门入口") })
        await nvr.stop()
        await h.finish()
    }

    @Test("unknown devices, messages before REGISTER, malformed SIP and MANSCDP: answered or dropped, counted, quarantined where a body; the device still works after")
    func malformedInput() async throws {
        let h = try Harness()
        let stranger = try await h.device("34020000001329999999", password: "x")
        #expect(await h.register(stranger) == 403)
        #expect(h.driver.counters["unknown device"] == 1)
        let device = try await h.device()
        #expect(await device.keepalive() == 404)
        #expect(await h.register(device) == 200)
        #expect(await device.message(xml: "<Notify><CmdType>Keepalive</CmdType><SN>1</SN>") == 400)
        #expect(await device.message(xml: "<Notify><CmdType>Reboot</CmdType><SN>2</SN><DeviceID>\(Self.ipc)</DeviceID></Notify>") == 400)
        device.sendRaw(Array("MESSAGE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\nFrom: <sip:\(Self.ipc)@3402000000>\r\nTo: <sip:x@y>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 999\r\n\r\n<Notify/>".utf8))
        device.sendRaw(Array("REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1".utf8))
        device.sendRaw([0, 1, 2, 3, 255])
        #expect(await eventually {
            h.driver.counters["malformed XML"] == 1 && h.driver.counters["unknown CmdType"] == 1 && h.driver.counters["bad Content-Length"] == 1
                && h.driver.counters["truncated"] == 2
        })
        #expect(await eventually { try await h.fixture.queue.quarantineEntries().map(\.reason).contains { $0.hasPrefix("malformed MANSCDP") } })
        #expect(await device.keepalive() == 200)
        await stranger.stop()
        await device.stop()
        await h.finish()
    }

    @Test("a registration that runs out without a refresh → offline (register expired); a catalog short of SumNum is kept as it is after 30 s")
    func registrationExpiryAndPartialCatalog() async throws {
        let h = try Harness(options: "max_expires_seconds: 60, keepalive_interval_seconds: 600")
        let channels = [("34020000001310000011", "北门入口"), ("34020000001310000012", "南门")].map { (id: $0.0, name: $0.1) }
        let nvr = try await h.device(Self.nvr, password: "nvrPass456", channels: channels)
        #expect(await h.register(nvr) == 200)
        let session = try #require(h.driver.listeners.registrar(port: h.port)?.session(Self.nvr))
        #expect(await eventually { session.snapshot.channels.count == 2 })
        // One page of a catalog that claims three items: it waits, then keeps the one it got.
        let page = "<Response><CmdType>Catalog</CmdType><SN>4242</SN><DeviceID>\(Self.nvr)</DeviceID><SumNum>3</SumNum><DeviceList Num=\"1\"><Item><DeviceID>34020000001310000019</DeviceID><Name>车库</Name></Item></DeviceList></Response>"
        #expect(await nvr.message(xml: page) == 200)
        #expect(await eventually { session.snapshot.catalogPages.count == 1 })
        #expect(session.snapshot.channels.count == 2)
        #expect(await eventually {
            h.clock.advance(by: .seconds(5))
            return try await h.events(.deviceOffline).first { $0.device.id == "lobby-nvr" }?.attributes?["reason"] == .string("register expired")
        })
        #expect(session.snapshot.catalogPages.isEmpty && session.snapshot.channels == ["34020000001310000019": GB28181Channel(name: "车库", status: nil)])
        await nvr.stop()
        await h.finish()
    }

    @Test("a UDP retransmission (same Via branch, Call-ID, CSeq) is answered from the transaction cache: one event, three identical 200s; the same SN with other content is a second event")
    func retransmissions() async throws {
        let h = try Harness(options: "query_catalog: false, query_device_info: false")
        let device = try await h.device()
        #expect(await h.register(device) == 200)
        #expect(await device.alarm(channel: "34020000001310000001", sn: 1207, type: 2, copies: 3) == 200)
        func answers() -> [String] { device.stats.responses.filter { $0.contains(" MESSAGE\r\n") } }
        #expect(await eventually { answers().count == 3 })
        #expect(Set(answers()).count == 1 && answers().first?.hasPrefix("SIP/2.0 200") == true)
        #expect(h.driver.counters["retransmission"] == 2)
        // Handled once: one event, one Alarm Response.
        #expect(await eventually { device.stats.alarmAcks == ["1207"] })
        #expect(try await h.events(.cameraMotion).count == 1)
        // A vendor's counter is not an identity: SN 1207 again with other content → another event.
        #expect(await device.alarm(channel: "34020000001310000001", sn: 1207, type: 2, time: "2025-03-14T10:20:00") == 200)
        #expect(await eventually { try await h.events(.cameraMotion).count == 2 })
        await device.stop()
        await h.finish()
    }

    @Test("MESSAGEs are checked against the registration: an unconfigured ID 403, a configured unregistered one 404, another IP 404 (counted), another port of the same IP accepted (NAT rebinding)")
    func messagesCheckedAgainstRegistration() async throws {
        let h = try Harness(options: "query_catalog: false, query_device_info: false")
        let stranger = try await h.device("34020000001329999999", password: "x")
        #expect(await stranger.keepalive() == 403)
        let device = try await h.device()
        #expect(await device.keepalive() == 404)
        #expect(await h.register(device) == 200)
        #expect(await device.keepalive() == 200)
        // The same device ID from another host: refused, and counted under the device.
        var options = GB28181Device.Options(deviceID: Self.ipc, password: "gbPass123")
        options.gatewayPort = h.port
        options.localHost = "127.0.0.2"
        options.responseTimeoutSeconds = 20
        let impostor = GB28181Device(options: options, logger: Logger(label: "impostor"))
        try await impostor.start()
        #expect(await impostor.alarm(sn: 1, type: 2) == 404)
        #expect(h.driver.counters["wrong source address"] == 1)
        #expect(try await h.events(.cameraMotion).isEmpty)
        // The same host from a new port (a NAT mapping renewed): accepted.
        let rebound = try await h.device()
        #expect(await rebound.keepalive() == 200)
        func detail() -> [String: String] { h.fixture.pipeline.devices.healthSnapshot.first { $0.id == "gate-ipc" }?.detail ?? [:] }
        #expect(detail()["refused"] == "not registered 1, wrong source address 1")
        #expect(detail()["listenerRefused"] == "unknown device 1")
        await stranger.stop()
        await impostor.stop()
        await rebound.stop()
        await device.stop()
        await h.finish()
    }

    @Test("catalog notifications and DeviceStatus set each channel's status: OFF → device.offline, ON → device.online, VLOST → camera.video-loss for the channel; ADD/DEL; shown under the device")
    func channelStatus() async throws {
        let h = try Harness(options: "query_device_info: false")
        let channels = [("34020000001310000011", "北门入口"), ("34020000001310000012", "南门")].map { (id: $0.0, name: $0.1) }
        let nvr = try await h.device(Self.nvr, password: "nvrPass456", channels: channels)
        #expect(await h.register(nvr) == 200)
        let session = try #require(h.driver.listeners.registrar(port: h.port)?.session(Self.nvr))
        #expect(await eventually { session.snapshot.channels.count == 2 })
        // First seen ON in the catalog: nothing to announce.
        #expect(try await h.events().filter { $0.point != nil }.isEmpty)
        #expect(await nvr.channelEvent("34020000001310000011", event: "OFF") == 200)
        #expect(await nvr.channelEvent("34020000001310000011", event: "OFF") == 200)
        #expect(await nvr.channelEvent("34020000001310000012", event: "VLOST", method: "MESSAGE") == 200)
        #expect(await nvr.channelEvent("34020000001310000011", event: "ON") == 200)
        let offline = try await h.events(.deviceOffline).filter { $0.point != nil }
        #expect(offline.count == 1)
        #expect(offline.first?.point == "34020000001310000011" && offline.first?.device.id == "lobby-nvr")
        #expect(offline.first?.attributes?["pointName"] == .string("北门入口"))
        #expect(try await h.events(.cameraVideoLoss).map(\.point) == ["34020000001310000012"])
        #expect(try await h.events(.deviceOnline).filter { $0.point == "34020000001310000011" }.count == 1)
        // The NVR itself stayed online throughout.
        #expect(try await h.events(.deviceOffline).filter { $0.point == nil }.isEmpty)
        #expect(await nvr.channelEvent("34020000001310000013", event: "ADD", name: "车库") == 200)
        #expect(await nvr.channelEvent("34020000001310000012", event: "DEL") == 200)
        #expect(Set(session.snapshot.channels.keys) == ["34020000001310000011", "34020000001310000013"])
        // A DeviceStatus answer for a channel: OFFLINE is that channel going off.
        let status = "<Response><CmdType>DeviceStatus</CmdType><SN>9</SN><DeviceID>34020000001310000013</DeviceID><Result>OK</Result><Online>OFFLINE</Online><Status>OK</Status></Response>"
        #expect(await nvr.message(xml: status) == 200)
        #expect(await eventually { session.snapshot.channels["34020000001310000013"] == GB28181Channel(name: "车库", status: "OFF") })
        #expect(await eventually { try await h.events(.deviceOffline).filter { $0.point == "34020000001310000013" }.count == 1 })
        func detail() -> [String: String] { h.fixture.pipeline.devices.healthSnapshot.first { $0.id == "lobby-nvr" }?.detail ?? [:] }
        #expect(detail()["channels"] == "2: 34020000001310000011 北门入口 ON, 34020000001310000013 车库 OFF")
        #expect(detail()["channelsDown"] == "1")
        await nvr.stop()
        await h.finish()
    }

    @Test("a registration is saved with the device's cursor and taken back after a restart: the keepalive is accepted without a REGISTER, no second device.online; an expired one is not")
    func registrationSurvivesRestart() async throws {
        let clock = ManualClock()
        let port = try LoopbackPort.free()
        let fixture = try IngestFixture(
            devices: """
                  - id: gate-ipc
                    driver: gb28181
                    type: camera
                    vendor: generic
                    serial: "\(Self.ipc)"
                    auth: {username: "\(Self.ipc)", password: gbPass123, scheme: digest}
                    options: {listen_host: 127.0.0.1, listen_port: \(port), query_catalog: false, query_device_info: false, max_expires_seconds: 600}
                """, clock: clock)
        let context = fixture.context
        let config = try #require(context.device(id: "gate-ipc"))
        func start() -> (GB28181Driver, Task<Void, any Error>) {
            let driver = GB28181Driver()
            return (driver, Task { try await driver.run(device: config, context: context) })
        }
        var (driver, task) = start()
        await Harness.listening(port: port)
        let device = GB28181Device.loopback(Self.ipc, password: "gbPass123", port: port)
        try await device.start()
        #expect(await eventually { await device.register() == 200 })
        #expect(await device.keepalive() == 200)
        #expect(await eventually { (try? await context.device(config).cursor()).flatMap(GB28181SavedRegistration.decode)?.registered == true })
        let saved = try #require(GB28181SavedRegistration.decode(try await context.device(config).cursor()))
        #expect(saved.online && saved.registeredHost == "127.0.0.1" && saved.transport == "UDP")
        #expect(try await fixture.events().filter { $0.kind == .deviceOnline }.count == 1)
        // The gateway restarts: a new driver, and the device directory as a new daemon has it.
        task.cancel()
        _ = try? await task.value
        fixture.pipeline.devices.replace([])
        fixture.pipeline.devices.replace([config], waitingReason: "waiting since restart")
        (driver, task) = start()
        await Harness.listening(port: port)
        #expect(driver.listeners.registrar(port: port)?.session(Self.ipc)?.snapshot.registered == true)
        #expect(fixture.pipeline.devices.healthSnapshot.first?.state == .up)
        #expect(await eventually { await device.keepalive() == 200 })
        #expect(try await fixture.events().filter { $0.kind == .deviceOnline }.count == 1)
        #expect(try await fixture.events().filter { $0.kind == .deviceOffline }.isEmpty)
        // Past its expiry a saved registration is not taken back: the device must register again.
        task.cancel()
        _ = try? await task.value
        clock.advance(by: .seconds(601))
        (driver, task) = start()
        await Harness.listening(port: port)
        #expect(await eventually { await device.keepalive() == 404 })
        task.cancel()
        _ = try? await task.value
        await device.stop()
        await fixture.finish()
    }

    @Test("check-config: a serial that is not a 20-digit ID, no password and a bad platform ID are each named with what would be valid")
    func invalidEntries() async throws {
        let fixture = try IngestFixture(
            devices: """
                  - id: bad-cam
                    driver: gb28181
                    type: camera
                    vendor: generic
                    serial: "1320000001"
                    options: {platform_id: "3402"}
                  - id: no-serial
                    driver: gb28181
                    type: camera
                    vendor: generic
                    auth: {username: x, password: y, scheme: digest}
                """)
        let driver = GB28181Driver()
        let bad = driver.validate(device: try #require(fixture.context.device(id: "bad-cam")))
        #expect(bad.contains { $0.hasPrefix("serial: '1320000001' is not a GB/T 28181 device ID") })
        #expect(bad.contains { $0.hasPrefix("auth: required for driver gb28181") })
        #expect(bad.contains { $0.hasPrefix("options.platform_id: '3402' is not a 20-digit") })
        #expect(driver.validate(device: try #require(fixture.context.device(id: "no-serial"))) == [
            "serial: required for driver gb28181 (the device's 20-digit SIP user ID, e.g. 34020000001320000001)"
        ])
        await fixture.finish()
    }

    @Test("subscribe_alarms: after each new registration the device gets an alarm SUBSCRIBE (Event: presence); without it, none")
    func alarmSubscription() async throws {
        let h = try Harness(options: "subscribe_alarms: true, query_catalog: false, query_device_info: false")
        let device = try await h.device()
        #expect(await h.register(device) == 200)
        #expect(await eventually { device.stats.subscribes == 1 })
        #expect(device.stats.queries.isEmpty)
        await device.stop()
        await h.finish()
    }

    @Test("a nonce older than its lifetime is answered 401 stale=true; an unknown one gets a fresh challenge")
    func staleNonce() async throws {
        let clock = ManualClock()
        let fixture = try IngestFixture(
            devices: """
                  - id: gate-ipc
                    driver: gb28181
                    type: camera
                    vendor: generic
                    serial: "\(Self.ipc)"
                    auth: {username: "\(Self.ipc)", password: gbPass123, scheme: digest}
                """, clock: clock)
        let counters = GB28181Counters()
        let registrar = GB28181Registrar(clock: clock, logger: Logger(label: "t"), counters: counters)
        let settings = try GB28181Settings.parse(try #require(fixture.context.device(id: "gate-ipc"))).get()
        registrar.attach(GB28181Session(settings: settings, context: try fixture.device("gate-ipc")))
        let sent = Mutex<[SIPMessage]>([])
        let peer = SIPPeer(transport: .udp, host: "127.0.0.1", port: 5060, local: "127.0.0.1:5060") { bytes in
            if let m = try? SIPMessage.parse(bytes) { sent.withLock { $0.append(m) } }
        }
        let unauthenticated = GB28181CodecTests.register.replacing(#/Authorization: [^\r]*\r\n/#, with: "")
        await registrar.handle(try SIPMessage.parse(Array(unauthenticated.utf8)), from: peer)
        let challenge = try #require(sent.withLock { $0.last?.header("www-authenticate") })
        #expect(sent.withLock { $0.last?.statusCode } == 401)
        #expect(challenge.contains("qop=\"auth\"") && challenge.contains("realm=\"3402000000\""))
        let nonce = try #require(DigestAuthentication.parse(String(challenge.dropFirst(7)))["nonce"])
        var fields = ["username": Self.ipc, "realm": "3402000000", "nonce": nonce, "uri": "sip:34020000002000000001@3402000000"]
        let response = try #require(DigestAuthentication.expectedResponse(fields: fields, method: "REGISTER", password: "gbPass123"))
        fields["response"] = response
        let authorization = "Authorization: Digest " + fields.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ", ") + "\r\n"
        let authenticated = unauthenticated.replacingOccurrences(of: "Max-Forwards", with: authorization.dropLast(2) + "\r\nMax-Forwards")
        clock.advance(by: .seconds(301))
        await registrar.handle(try SIPMessage.parse(Array(authenticated.utf8)), from: peer)
        #expect(sent.withLock { $0.last?.statusCode } == 401)
        #expect(sent.withLock { $0.last?.header("www-authenticate") }?.contains("stale=true") == true)
        // Within its lifetime the same answer is accepted; the reply goes back with received/rport.
        let fresh = unauthenticated.replacingOccurrences(of: "CSeq: 2", with: "CSeq: 3")
        await registrar.handle(try SIPMessage.parse(Array(fresh.utf8)), from: peer)
        let second = try #require(sent.withLock { $0.last?.header("www-authenticate") })
        fields["nonce"] = DigestAuthentication.parse(String(second.dropFirst(7)))["nonce"]
        fields["response"] = nil
        fields["response"] = try #require(DigestAuthentication.expectedResponse(fields: fields, method: "REGISTER", password: "gbPass123"))
        // A new transaction (a device counts CSeq up): the same one would be answered from the transaction cache.
        let ok = unauthenticated.replacingOccurrences(of: "CSeq: 2", with: "CSeq: 4").replacingOccurrences(of: "Max-Forwards", with: "Authorization: Digest " + fields.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ", ") + "\r\nMax-Forwards")
        await registrar.handle(try SIPMessage.parse(Array(ok.utf8)), from: peer)
        // The 200 comes first; the Catalog and DeviceInfo queries of the new registration follow it.
        let accepted = try #require(sent.withLock { $0.last { $0.statusCode != nil } })
        #expect(sent.withLock { $0.last?.method } == "MESSAGE")
        #expect(accepted.statusCode == 200)
        #expect(accepted.header("expires") == "3600")
        #expect(accepted.header("via")?.contains("received=127.0.0.1") == true)
        #expect(accepted.header("via")?.contains("rport=5060") == true)
        // Our queries over UDP are resent on the clock until answered: answer the Catalog one only.
        let queries = sent.withLock { $0.filter { $0.method == "MESSAGE" } }
        #expect(queries.count == 3)
        let catalog = try #require(queries.first { String(decoding: $0.body, as: UTF8.self).contains("<CmdType>Catalog</CmdType>") })
        await registrar.handle(registrar.response(to: catalog, 200, "OK", peer: peer), from: peer)
        clock.advance(by: .milliseconds(600))
        let resent = sent.withLock { $0.filter { $0.method == "MESSAGE" } }.dropFirst(3)
        #expect(resent.count == 2)
        #expect(!resent.contains { $0.header("call-id") == catalog.header("call-id") })
        // Each advance fires the next resend; after 32 s of them the two unanswered ones give up.
        for _ in 0..<15 { clock.advance(by: .seconds(5)) }
        #expect(counters["unanswered request"] == 2)
        #expect(sent.withLock { $0.filter { $0.method == "MESSAGE" } }.count < 3 + 2 * 12)
        let missing = unauthenticated.replacingOccurrences(of: "Expires: 3600\r\n", with: "")
        await registrar.handle(try SIPMessage.parse(Array(missing.utf8)), from: peer)
        #expect(sent.withLock { $0.last { $0.statusCode != nil }?.statusCode } == 400)
        await fixture.finish()
    }
}
