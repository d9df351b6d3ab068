import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// Dahua cameras through the built daemon: the attach stream from the simulator (Digest,
/// heartbeats, Start/Stop/Pulse, multi-line data, lying Content-Length, garbage, truncated
/// parts, a wrong password), and RPC notifyEventStream pushes whose plates map like dahua-itc.
@Suite("dahua end to end", .serialized)
struct DahuaEndToEndTests {
    static let adapters = repositoryRoot.appendingPathComponent("adapters").path

    static func camera(refuseAll: Bool = false) -> DahuaCamera {
        var logger = Logger(label: "dahua-sim")
        logger.logLevel = .warning
        return DahuaCamera(refuseAll: refuseAll, logger: logger)
    }

    /// A simulated camera serving on a free port; cancel the task to stop it.
    static func serve(refuseAll: Bool = false) async throws -> (DahuaCamera, Task<Void, any Error>, Int) {
        let camera = camera(refuseAll: refuseAll)
        let server = Task { try await camera.run() }
        return (camera, server, try await camera.waitUntilRunning())
    }

    /// Device events (not health reports) the centre holds for `device`, oldest first.
    static func events(_ receiver: CentralReceiver, device: String) throws -> [Event] {
        try receiver.snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }
            .filter { !$0.kind.rawValue.hasPrefix("device.") && $0.device.id == device }
            .sorted { $0.id < $1.id }
    }

    @Test("attach stream: one start and one stop per alarm, pulses at an instant, heartbeats and garbage are not events, a wrong password is not retried in a storm")
    func attachStream() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let (camera, server, cameraPort) = try await Self.serve()
        defer { server.cancel() }
        let (locked, lockedServer, lockedPort) = try await Self.serve(refuseAll: true)
        defer { lockedServer.cancel() }
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extra = "adapters_directory: \(Self.adapters)"
        site.extraDevices = """
              - id: lobby-cam
                driver: dahua
                vendor: dahua
                type: camera
                address: 127.0.0.1:\(cameraPort)
                auth: {username: admin, password: dahua123, scheme: digest}
                options: {heartbeat_seconds: 5}
              - id: locked-cam
                driver: dahua
                vendor: dahua
                type: camera
                address: 127.0.0.1:\(lockedPort)
                auth: {username: admin, password: dahua123, scheme: digest}
                options: {heartbeat_seconds: 1, auth_retry_seconds: 600}
            """
        let (daemon, _, _) = try await DaemonProcess.start(configPath: try site.write())
        #expect(await eventually(timeout: .seconds(30)) { camera.openStreams == 1 }, "\(daemon.log.suffix(2000))")
        // Heartbeats (every 5 s; three missed would reconnect, so a busy machine gets 15 s of slack,
        // and a slow commit never counts) pass between the events: none becomes an event.
        #expect(await eventually(timeout: .seconds(30)) { daemon.log.contains("device lobby-cam is up") }, "\(daemon.log.suffix(2000))")

        camera.fire([DahuaCamera.motion(active: true), DahuaCamera.motion(active: true)])
        camera.setPartStyle(.lyingLength)
        camera.fire([DahuaCamera.motion(active: false)])
        camera.fire([.init(code: "AlarmLocal", action: "Start", index: 1, data: "{\n  \"Name\" : \"Gate contact\"\n}")])
        camera.fireRaw(Array("--myboundary\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\nthis is not an event\r\n".utf8) + [0xFF, 0x00, 0x0D, 0x0A])
        camera.fireRaw(Array("--myboundary\r\nContent-Length: 200\r\n\r\nCode=CrossLineDetection;action=Pulse;index=0;data={\r\n  \"Name\" : \"cut".utf8))
        camera.setPartStyle(.honest)
        camera.fireTogether([
            .init(code: "AlarmLocal", action: "Stop", index: 1),
            .init(code: "DoorStatus", action: "Pulse", index: 0, data: #"{"Status":"Open","UTC":1741976455}"#),
        ])
        #expect(await eventually(timeout: .seconds(30)) { try Self.events(receiver, device: "lobby-cam").count >= 5 }, "\(daemon.log.suffix(2000))")
        try await Task.sleep(for: .milliseconds(700))  // a repeat or a stray event would be forwarded by now
        let events = try Self.events(receiver, device: "lobby-cam")
        try #require(events.count == 5, "\(events.map(\.kind)) \(daemon.log.suffix(2000))")
        #expect(events.map(\.kind) == [.cameraMotion, .cameraMotion, .alarmInput, .alarmInput, .doorOpened], "\(events.map(\.kind))")
        #expect(events.map(\.state) == [.start, .stop, .start, .stop, nil])
        #expect(events.map(\.point) == ["channel-1", "channel-1", "input-2", "input-2", "door-1"])
        #expect(events[0].alarm?.id == events[1].alarm?.id && events[0].alarm?.id != nil)
        #expect(events[2].alarm?.id == events[3].alarm?.id && events[2].alarm?.id != events[0].alarm?.id)
        #expect(events[1].alarm?.startedAt != nil)
        #expect(events[0].priority == .telemetry && events[2].priority == .alarm)
        #expect(events[4].alarm == nil && events[4].occurredAt == Timestamp(milliseconds: (1_741_976_455 - 8 * 3600) * 1000))
        #expect(events.allSatisfy { $0.attributes?["code"] != nil })

        // A heartbeat went by after the events: still five.
        let beats = camera.figures.heartbeatsSent
        #expect(await eventually(timeout: .seconds(60)) { camera.figures.heartbeatsSent > beats })
        try await Task.sleep(for: .milliseconds(700))
        #expect(try Self.events(receiver, device: "lobby-cam").count == 5)

        // The garbage and the truncated record were kept in quarantine with their reasons.
        let quarantine = try await DaemonProcess.runTool(["quarantine", "list", "--config", site.configPath])
        #expect(quarantine.status == 0 && quarantine.stdout.contains("not a Dahua event record") && quarantine.stdout.contains("truncated record"), "\(quarantine)")

        // The locked camera: reported down with the reason, asked exactly twice (challenge + one try).
        #expect(await eventually(timeout: .seconds(30)) { daemon.log.contains("wrong username or password") }, "\(daemon.log.suffix(2000))")
        // Each try is a challenge and one answer. On a quiet machine there is one try; under heavy
        // load (the whole suite's daemons at once) an attempt can time out before its refusal is
        // read, and the driver tries again after its backoff: a few tries, never a storm.
        let refused = locked.figures.refusedCredentials
        #expect((1...3).contains(refused) && locked.figures.attachRequests == 2 * refused, "\(locked.figures)")
        #expect(try await daemon.stop() == 0)
        await camera.shutdown()
        await locked.shutdown()
    }

    @Test("RPC notifyEventStream: plates map like the dahua-itc profile; the reply comes after the commit; alarms start and stop")
    func rpcPush() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extra = "adapters_directory: \(Self.adapters)"
        site.extraDevices = """
              - id: itc-rpc
                driver: dahua
                vendor: dahua
                type: lpr-camera
                time_zone: Asia/Shanghai
                options: {mode: push}
                points: {lane-1: {direction: in}}
              - id: itc-profile
                driver: profile
                vendor: dahua
                type: lpr-camera
                time_zone: Asia/Shanghai
                options: {profile: dahua-itc}
                points: {lane-1: {direction: in}}
            """
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let camera = Self.camera()
        let plate = DahuaCamera.plateRead(number: 7)
        let (status, reply) = await camera.push(
            DahuaCamera.notifyEventStream([plate, .init(code: "VideoBlind", action: "Start", index: 0)], id: 9),
            to: "http://127.0.0.1:\(ingest)/v1/dahua/itc-rpc")
        #expect(status == 200 && reply.contains("\"id\":9") && reply.contains("\"result\":true"), "\(status) \(reply)")
        #expect(await camera.push(DahuaCamera.notifyEventStream([.init(code: "VideoBlind", action: "Stop", index: 0)], id: 10),
            to: "http://127.0.0.1:\(ingest)/v1/dahua/itc-rpc").status == 200)
        // The same record through the profile's HTTP upload route.
        let upload = "{\"Events\":[{\"Code\":\"TrafficJunction\",\"Action\":\"Pulse\",\"Index\":0,\"Data\":\(plate.data ?? "{}")}]}"
        #expect(await camera.push(upload, to: "http://127.0.0.1:\(ingest)/v1/push/dahua-itc/itc-profile").status == 200)
        // A body that is not an envelope is refused and kept.
        let (badStatus, badReply) = await camera.push("{\"method\":", to: "http://127.0.0.1:\(ingest)/v1/dahua/itc-rpc")
        #expect(badStatus == 422 && badReply.contains("quarantineId"), "\(badStatus) \(badReply)")

        #expect(await eventually(timeout: .seconds(30)) {
            try Self.events(receiver, device: "itc-rpc").count >= 3 && Self.events(receiver, device: "itc-profile").count >= 1
        }, "\(daemon.log.suffix(2000))")
        let rpc = try Self.events(receiver, device: "itc-rpc")
        let plates = rpc.filter { $0.kind == .vehicleEntry }
        let viaProfile = try #require(try Self.events(receiver, device: "itc-profile").first)
        #expect(plates.count == 1)
        let viaRPC = try #require(plates.first)
        #expect(viaRPC.kind == viaProfile.kind && viaRPC.subject == viaProfile.subject && viaRPC.occurredAt == viaProfile.occurredAt)
        #expect(viaRPC.point == viaProfile.point && viaRPC.direction == .in && viaRPC.attributes == viaProfile.attributes)
        #expect(viaRPC.source.dedupKey == viaProfile.source.dedupKey)
        let tamper = rpc.filter { $0.kind == .cameraTamper }
        #expect(tamper.map(\.state) == [.start, .stop] && tamper.allSatisfy { $0.priority == .alarm && $0.point == "channel-1" })
        #expect(try await daemon.stop() == 0)
        await camera.shutdown()
    }
}
