import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// Liveness through the built daemon: against the RTSP camera simulator (a camera that stops
/// answering goes offline once, a restart does not announce it again, its return is one
/// `device.online`) and against a real RTSP server (Debian's GStreamer RTSP server, Digest)
/// started, stopped and started again.
@Suite("liveness end to end", .serialized)
struct LivenessEndToEndTests {
    static func events(_ receiver: CentralReceiver, device: String) throws -> [Event] {
        try receiver.snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }
            .filter { [.deviceOnline, .deviceOffline].contains($0.kind) && $0.device.id == device }
            .sorted { $0.id < $1.id }
    }

    /// A camera entry with no event protocol, probed every second; two failures make it offline.
    static func camera(_ id: String, url: String) -> String {
        """
              - id: \(id)
                driver: generic-json
                vendor: hikvision
                type: camera
                address: 127.0.0.1
                auth: {username: viewer, password: "Cam!2025", scheme: digest}
                liveness: {probe: rtsp-describe, url: "\(url)", interval_seconds: 1, jitter: 0, failures_to_offline: 2, min_dwell_seconds: 0}
        """
    }

    @Test("silent camera → exactly one device.offline (reason timeout, occurredAt = first failed probe); restart → not again; back → one device.online with downSeconds")
    func stopsAnswering() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var logger = Logger(label: "rtsp-sim")
        logger.logLevel = .warning
        let camera = RTSPCamera(logger: logger)
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let cameraPort = try await camera.waitUntilRunning()
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extra = "liveness: {timeout_seconds: 1}"
        site.extraDevices = Self.camera("gate-cam", url: camera.url(port: cameraPort))
        var (daemon, _, admin) = try await DaemonProcess.start(configPath: try site.write())
        // First contact: online (the state was unknown).
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "gate-cam").count == 1 }, "\(daemon.log.suffix(2000))")
        #expect(try Self.events(receiver, device: "gate-cam").first?.kind == .deviceOnline)
        // Status shows the probe and its last result.
        let table = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)"])
        #expect(table.stdout.contains("liveness rtsp-describe") && table.stdout.contains("DESCRIBE answered 200"), "\(table.stdout)")

        camera.behaviour = .silent
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "gate-cam").count >= 2 }, "\(daemon.log.suffix(3000))")
        let offline = try #require(try Self.events(receiver, device: "gate-cam").last)
        #expect(offline.kind == .deviceOffline)
        #expect(offline.attributes?["reason"] == .string("timeout") && offline.attributes?["probe"] == .string("rtsp-describe"), "\(String(describing: offline.attributes))")
        #expect(offline.attributes?["consecutiveFailures"] == .number(2) && offline.attributes?["lastSuccessAt"] != nil)
        #expect(offline.occurredAt.milliseconds < offline.receivedAt.milliseconds && offline.source.driver == "liveness")

        // Restart while it is still silent: the stored streak is already announced.
        #expect(try await daemon.stop() == 0)
        (daemon, _, _) = try await DaemonProcess.start(configPath: site.configPath)
        let seen = camera.counts.describes
        #expect(await eventually(timeout: .seconds(60)) { camera.counts.describes >= seen + 3 }, "\(daemon.log.suffix(2000))")

        camera.behaviour = .normal
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "gate-cam").count >= 3 }, "\(daemon.log.suffix(3000))")
        let back = camera.counts.describes
        // Some more probes: a repeated or stray event would be forwarded by now.
        #expect(await eventually(timeout: .seconds(60)) { camera.counts.describes >= back + 3 })
        let events = try Self.events(receiver, device: "gate-cam")
        #expect(events.map(\.kind) == [.deviceOnline, .deviceOffline, .deviceOnline], "\(events.map(\.kind))")
        #expect(events.last?.attributes?["downSeconds"] != nil, "\(String(describing: events.last?.attributes))")
        #expect(camera.counts.others == 0, "a probe sent SETUP or PLAY")
        #expect(camera.counts.basic == 0, "Basic was picked although Digest was offered")

        // SIGHUP adds a second camera: probed without a restart, announced online once.
        site.extraDevices = Self.camera("gate-cam", url: camera.url(port: cameraPort)) + "\n" + Self.camera("yard-cam", url: camera.url(port: cameraPort))
        _ = try site.write()
        daemon.sendSignal(SIGHUP)
        #expect(await eventually(timeout: .seconds(60)) { daemon.log.contains("liveness on yard-cam") }, "\(daemon.log.suffix(1500))")
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "yard-cam").map(\.kind) == [.deviceOnline] }, "\(daemon.log.suffix(2000))")
        #expect(try Self.events(receiver, device: "gate-cam").count == 3, "the reload announced the kept camera again")
        #expect(try await daemon.stop() == 0)
    }

    @Test(
        "a real RTSP server (GStreamer, Digest without qop): started → online, stopped → offline, started again → online",
        .enabled(
            if: GStreamerRTSPServer.available || ProcessInfo.processInfo.environment["CI"] != nil,
            "the GStreamer RTSP server is not installed (scripts/test installs gir1.2-gst-rtsp-server-1.0, gstreamer1.0-rtsp, python3-gi)"))
    func realServer() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let rtsp = try GStreamerRTSPServer(username: "viewer", password: "Cam!2025")
        try await rtsp.start()
        defer { rtsp.stop() }
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        // GStreamer builds the test pattern's pipeline to write the SDP: a generous limit on a busy machine.
        site.extra = "liveness: {timeout_seconds: 30}"
        site.extraDevices = Self.camera("real-cam", url: rtsp.url)
        let (daemon, _, admin) = try await DaemonProcess.start(configPath: try site.write())
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "real-cam").count == 1 }, "\(daemon.log.suffix(2000))")
        let table = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)"])
        // 200 to the Digest answer: credentials and path proven, not just a listening port.
        #expect(table.stdout.contains("DESCRIBE answered 200"), "\(table.stdout)")

        rtsp.stop()
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "real-cam").count >= 2 }, "\(daemon.log.suffix(3000))")
        let offline = try #require(try Self.events(receiver, device: "real-cam").last)
        #expect(offline.kind == .deviceOffline && offline.attributes?["reason"] == .string("unreachable"), "\(String(describing: offline.attributes))")

        try await rtsp.start()
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "real-cam").count >= 3 }, "\(daemon.log.suffix(3000))")
        let events = try Self.events(receiver, device: "real-cam")
        #expect(events.map(\.kind) == [.deviceOnline, .deviceOffline, .deviceOnline], "\(events.map(\.kind))")
        #expect(try await daemon.stop() == 0)
    }
}
