import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// Picture health through the built daemon against the snapshot camera simulator (Digest, the
/// brand's default snapshot path): a camera going blurred raises one `camera.image-degraded`,
/// a restart does not announce it again, and its recovery raises one `camera.image-restored`.
@Suite("picture health end to end", .serialized)
struct PictureHealthEndToEndTests {
    static func events(_ receiver: CentralReceiver, device: String) throws -> [Event] {
        try receiver.snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }
            .filter { $0.kind.rawValue.hasPrefix("camera.image-") && $0.device.id == device }
            .sorted { $0.id < $1.id }
    }

    @Test("blurred → one camera.image-degraded (reason blurred, scores attached); restart → not again; sharp → one camera.image-restored")
    func blurredAndRestored() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var logger = Logger(label: "snapshot-sim")
        logger.logLevel = .warning
        let camera = SnapshotCamera(logger: logger)
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let cameraPort = try await camera.waitUntilRunning()
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        // One-second snapshots and hysteresis of one so the test takes seconds; the decisions are
        // the same at ten minutes. The first (sharp) snapshot is the learned baseline.
        site.extraDevices = """
              - id: gate-cam
                driver: generic-json
                vendor: dahua
                type: camera
                address: 127.0.0.1:\(cameraPort)
                auth: {username: viewer, password: "Cam!2025", scheme: digest}
                picture_health: {interval_seconds: 1, raise_after: 2, clear_after: 2, learn_hours: 0}
            """
        var (daemon, _, _) = try await DaemonProcess.start(configPath: try site.write())
        #expect(await eventually(timeout: .seconds(60)) { camera.snapshotsServed >= 2 }, "\(daemon.log.suffix(2000))")
        camera.picture = .blurred
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "gate-cam").count >= 1 }, "\(daemon.log.suffix(3000))")
        let degraded = try #require(try Self.events(receiver, device: "gate-cam").first)
        #expect(degraded.kind == .cameraImageDegraded && degraded.state == .start && degraded.priority == .telemetry)
        #expect(degraded.attributes?["reason"] == .string("blurred"), "\(String(describing: degraded.attributes))")
        #expect(degraded.attributes?["sharpness"] != nil && degraded.attributes?["sharpnessLimit"] != nil && degraded.attributes?["brightness"] != nil)
        #expect(degraded.source.driver == "picture-health")

        // Restart while still blurred: the stored state knows the degradation is announced.
        #expect(try await daemon.stop() == 0)
        (daemon, _, _) = try await DaemonProcess.start(configPath: site.configPath)
        let servedAfterRestart = camera.snapshotsServed
        #expect(await eventually(timeout: .seconds(60)) { camera.snapshotsServed >= servedAfterRestart + 4 }, "\(daemon.log.suffix(2000))")
        camera.picture = .sharp
        #expect(await eventually(timeout: .seconds(60)) { try Self.events(receiver, device: "gate-cam").count >= 2 }, "\(daemon.log.suffix(3000))")
        let servedAtRestore = camera.snapshotsServed
        // Some more snapshots: a repeated or stray event would be forwarded by now.
        #expect(await eventually(timeout: .seconds(60)) { camera.snapshotsServed >= servedAtRestore + 3 })
        let events = try Self.events(receiver, device: "gate-cam")
        #expect(events.map(\.kind) == [.cameraImageDegraded, .cameraImageRestored], "\(events.map(\.kind))")
        #expect(events.last?.state == .stop && events.last?.alarm?.id == degraded.alarm?.id && events.last?.alarm?.startedAt == degraded.occurredAt)
        #expect(events.last?.attributes?["reason"] == .string("blurred"))
        // No picture was written anywhere under the state directory: only the queue's own files.
        let files = try FileManager.default.subpathsOfDirectory(atPath: site.directory + "/state")
        #expect(!files.contains { $0.hasSuffix(".jpg") || $0.hasSuffix(".jpeg") || $0.contains("images") }, "\(files)")
        #expect(camera.refusedCredentials == 0)
        #expect(try await daemon.stop() == 0)
    }
}
