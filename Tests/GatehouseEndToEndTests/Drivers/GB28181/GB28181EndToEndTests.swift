import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// The gb28181 driver through the built daemon: a simulated IPC and NVR register over UDP or
/// TCP, the central stand-in receives what they caused.
@Suite("gb28181 end to end", .serialized)
struct GB28181EndToEndTests {
    static let ipc = "34020000001320000001"
    static let nvr = "34020000001180000001"

    static func writeConfig(directory: String, receiverPort: Int, sipPort: Int) throws -> String {
        let options = "{listen_host: 127.0.0.1, listen_port: \(sipPort), keepalive_interval_seconds: 1, keepalive_misses: 2}"
        var site = TestSite(directory: directory, receiverPort: receiverPort)
        site.devices = 0
        site.extraDevices = entry("gate-ipc", type: "camera", serial: ipc, password: "gbPass123", options: options)
            + entry("lobby-nvr", type: "nvr", serial: nvr, password: "nvrPass456", options: options)
        return try site.write()
    }

    static func events(_ receiver: CentralReceiver) -> [Event] {
        receiver.snapshot.bodies.values.compactMap { try? EventCoding.decode(Data($0.utf8)) }
    }

    static func device(_ id: String, password: String, port: Int, transport: GB28181Device.Transport, channels: [(id: String, name: String)] = []) -> GB28181Device {
        GB28181Device.loopback(id, password: password, port: port, transport: transport, channels: channels)
    }

    /// One gb28181 device entry, as a YAML list item of `devices:`.
    static func entry(_ id: String, type: String, serial: String, password: String, options: String) -> String {
        """

          - id: \(id)
            driver: gb28181
            type: \(type)
            vendor: generic
            serial: "\(serial)"
            time_zone: Asia/Shanghai
            auth: {username: "\(serial)", password: \(password), scheme: digest}
            options: \(options)
        """
    }

    /// Starts `device` once the daemon listens (TCP connects only then) and registers it.
    static func registered(_ device: GB28181Device) async -> Bool {
        await eventually(timeout: .seconds(60), poll: .milliseconds(100)) {
            if (try? await device.start()) == nil { return false }
            if await device.register() == 200 { return true }
            await device.stop()
            return false
        }
    }

    @Test("register → online → GB2312 alarm committed with kind and point → catalog channels → keepalive loss → offline → restart → registration taken back → unregister → registers again", arguments: [GB28181Device.Transport.udp, .tcp])
    func wholeLife(transport: GB28181Device.Transport) async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let sipPort = try LoopbackPort.free()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-gb28181-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try Self.writeConfig(directory: directory, receiverPort: receiverPort, sipPort: sipPort)
        let (daemon, _, admin) = try await DaemonProcess.start(configPath: config)
        #expect(await daemon.waitForLog("gb28181 SIP listener ready"), "\(daemon.log.suffix(2000))")

        let ipc = Self.device(Self.ipc, password: "gbPass123", port: sipPort, transport: transport)
        let channels = [(id: "34020000001310000011", name: "北门入口"), (id: "34020000001310000012", name: "南门"), (id: "34020000001310000013", name: "车库")]
        let nvr = Self.device(Self.nvr, password: "nvrPass456", port: sipPort, transport: transport, channels: channels)
        #expect(await Self.registered(ipc), "\(daemon.log.suffix(2000))")
        #expect(await Self.registered(nvr), "\(daemon.log.suffix(2000))")
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            Set(Self.events(receiver).filter { $0.kind == .deviceOnline }.map(\.device.id)) == ["gate-ipc", "lobby-nvr"]
        }, "\(daemon.log.suffix(2000))")

        // The NVR answers the Catalog in two pages (GB2312 names); its channels are logged.
        #expect(await daemon.waitForLog("device \(Self.nvr) catalog: 3 channel(s)"), "\(daemon.log.suffix(2000))")
        #expect(nvr.stats.queries.contains("Catalog") && nvr.stats.queries.contains("DeviceInfo"))
        // `gatehouse status` lists the NVR's registration, transport, source address and channels.
        let table = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)"])
        #expect(table.stdout.contains("transport \(transport == .udp ? "UDP" : "TCP")"), "\(table)")
        #expect(table.stdout.contains("channels 3: 34020000001310000011 北门入口"), "\(table)")
        #expect(table.stdout.contains("registration registered"), "\(table)")
        #expect(await nvr.alarm(channel: "34020000001310000011", sn: 77, priority: 1, method: 5, type: 6, description: "越界") == 200)
        #expect(await ipc.alarm(sn: 1207, method: 2, type: nil, description: "门磁") == 200)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            Self.events(receiver).contains { $0.kind == .cameraIntrusion } && Self.events(receiver).contains { $0.kind == .alarmInput }
        }, "\(daemon.log.suffix(2000))")
        let intrusion = try #require(Self.events(receiver).first { $0.kind == .cameraIntrusion })
        #expect(intrusion.device.id == "lobby-nvr" && intrusion.point == "34020000001310000011")
        #expect(intrusion.attributes?["pointName"] == .string("北门入口"))
        #expect(intrusion.attributes?["description"] == .string("越界"))
        #expect(intrusion.priority == .alarm)
        #expect(intrusion.source.driver == "gb28181")
        let input = try #require(Self.events(receiver).first { $0.kind == .alarmInput })
        #expect(input.device.id == "gate-ipc" && input.attributes?["description"] == .string("门磁"))
        #expect(await eventually { nvr.stats.alarmAcks == ["77"] && ipc.stats.alarmAcks == ["1207"] })

        // No keepalives: offline after interval × misses, with the reason.
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            Self.events(receiver).contains { $0.kind == .deviceOffline && $0.device.id == "gate-ipc" && $0.attributes?["reason"] == .string("keepalive timeout") }
        }, "\(daemon.log.suffix(2000))")

        // The registration outlives the restart: the keepalive is accepted without a REGISTER, and
        // the device, announced offline before, is online again.
        #expect(try await daemon.stop() == 0)
        await ipc.stop()
        await nvr.stop()
        let (again, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await again.waitForLog("gb28181 SIP listener ready"), "\(again.log.suffix(2000))")
        let ipc2 = Self.device(Self.ipc, password: "gbPass123", port: sipPort, transport: transport)
        #expect(await eventually(timeout: .seconds(60), poll: .milliseconds(100)) {
            if (try? await ipc2.start()) == nil { return false }
            if await ipc2.keepalive() == 200 { return true }
            await ipc2.stop()
            return false
        }, "\(again.log.suffix(2000))")
        // Unregistered, a keepalive is refused so the device registers again.
        #expect(await ipc2.register(expires: 0) == 200)
        #expect(await ipc2.keepalive() == 404)
        #expect(await ipc2.register() == 200)
        #expect(await ipc2.keepalive() == 200)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            Self.events(receiver).filter { $0.kind == .deviceOnline && $0.device.id == "gate-ipc" }.count >= 2
        }, "\(again.log.suffix(2000))")
        #expect(try await again.stop() == 0)
        await ipc2.stop()
    }

    @Test("a registration survives a gateway restart: the device keeps alive without a new REGISTER, no second device.online, alarms accepted", arguments: [GB28181Device.Transport.udp, .tcp])
    func registrationSurvivesRestart(transport: GB28181Device.Transport) async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let sipPort = try LoopbackPort.free()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-gb28181-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var site = TestSite(directory: directory, receiverPort: receiverPort)
        site.devices = 0
        // A long keepalive timeout: the restart must not be what decides.
        site.extraDevices = Self.entry(
            "gate-ipc", type: "camera", serial: Self.ipc, password: "gbPass123",
            options: "{listen_host: 127.0.0.1, listen_port: \(sipPort), keepalive_interval_seconds: 60, query_catalog: false, query_device_info: false}")
        let config = try site.write()
        let (daemon, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await daemon.waitForLog("gb28181 SIP listener ready"), "\(daemon.log.suffix(2000))")
        let ipc = Self.device(Self.ipc, password: "gbPass123", port: sipPort, transport: transport)
        #expect(await Self.registered(ipc), "\(daemon.log.suffix(2000))")
        #expect(await ipc.keepalive() == 200)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            Self.events(receiver).contains { $0.kind == .deviceOnline && $0.device.id == "gate-ipc" }
        }, "\(daemon.log.suffix(2000))")
        #expect(try await daemon.stop() == 0)

        let (again, _, admin) = try await DaemonProcess.start(configPath: config)
        #expect(await again.waitForLog("registration taken back from before the restart"), "\(again.log.suffix(2000))")
        #expect(await again.waitForLog("gb28181 SIP listener ready"), "\(again.log.suffix(2000))")
        // No REGISTER: the same device (over TCP it connects again, as devices do) keeps alive and raises an alarm.
        #expect(await eventually(timeout: .seconds(60), poll: .milliseconds(100)) {
            if transport == .tcp {
                await ipc.stop()
                if (try? await ipc.start()) == nil { return false }
            }
            return await ipc.keepalive() == 200
        }, "\(again.log.suffix(2000))")
        #expect(await ipc.alarm(sn: 31, method: 5, type: 2) == 200)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            Self.events(receiver).contains { $0.kind == .cameraMotion && $0.device.id == "gate-ipc" }
        }, "\(again.log.suffix(2000))")
        // Everything committed so far is delivered once the queue is empty, whatever order the
        // priorities forward it in: a device.online caused by the keepalive would be at the receiver.
        #expect(await eventually(timeout: .seconds(60), poll: .milliseconds(100)) {
            let status = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)", "--json"])
            let queue = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["queue"] as? [String: Any]
            return (queue?["depth"] as? Int) == 0
        }, "\(again.log.suffix(2000))")
        #expect(Self.events(receiver).filter { $0.kind == .deviceOnline && $0.device.id == "gate-ipc" }.count == 1)
        #expect(!Self.events(receiver).contains { $0.kind == .deviceOffline && $0.device.id == "gate-ipc" })
        let table = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)"])
        #expect(table.stdout.contains("registration registered"), "\(table)")
        #expect(try await again.stop() == 0)
        await ipc.stop()
    }
}

/// Interoperability: SIPp, a SIP implementation that is not ours, plays a device against the daemon.
@Suite("gb28181 with sipp", .serialized)
struct GB28181SippTests {
    @Test("a SIPp device registers with Digest, keeps alive and raises an alarm; the daemon commits it", arguments: ["u1", "t1"])
    func sippDevice(transport: String) async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let sipPort = try LoopbackPort.free()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-sipp-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var site = TestSite(directory: directory, receiverPort: receiverPort)
        site.devices = 0
        // SIPp plays one scripted call: no queries of ours may interrupt it.
        site.extraDevices = GB28181EndToEndTests.entry(
            "sipp-ipc", type: "camera", serial: "34020000001320000001", password: "gbPass123",
            options: "{listen_host: 127.0.0.1, listen_port: \(sipPort), query_catalog: false, query_device_info: false}")
        let (daemon, _, _) = try await DaemonProcess.start(configPath: try site.write())
        #expect(await daemon.waitForLog("gb28181 SIP listener ready"), "\(daemon.log.suffix(2000))")
        let (status, output) = try await Sipp.run(
            scenario: "gb28181-device.xml", port: sipPort, transport: transport, username: "34020000001320000001", password: "gbPass123")
        #expect(status == 0, "sipp exit \(status)\n\(output.suffix(3000))\n\(daemon.log.suffix(2000))")
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            GB28181EndToEndTests.events(receiver).contains { $0.kind == .cameraMotion && $0.device.id == "sipp-ipc" && $0.point == "34020000001310000001" }
        }, "\(daemon.log.suffix(2000))")
        // Alarms are forwarded before device state, so the device.online may arrive after the alarm.
        #expect(await eventually { GB28181EndToEndTests.events(receiver).contains { $0.kind == .deviceOnline && $0.device.id == "sipp-ipc" } })
        #expect(try await daemon.stop() == 0)
    }
}
