import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// Picture health of an `onvif` camera through the built daemon: the snapshot URI comes from the
/// camera's media service (GetProfiles, GetSnapshotUri, WS-Security signed on the camera's own
/// clock, ten minutes behind), is asked once and cached, and asked again after the camera moved
/// its snapshot (a 404).
@Suite("picture health over ONVIF end to end", .serialized)
struct PictureHealthONVIFEndToEndTests {
    @Test("onvif camera: GetSnapshotUri once, snapshots scored, covered → camera.image-degraded; a moved snapshot (404) is asked for again")
    func snapshotURIFromTheMediaService() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var logger = Logger(label: "onvif-sim")
        logger.logLevel = .critical
        let camera = ONVIFCamera(clockOffsetSeconds: -600, logger: logger)
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let cameraPort = try await camera.waitUntilRunning()
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        // No snapshot_url: an onvif camera asks its media service.
        site.extraDevices = """
              - id: onvif-cam
                driver: onvif
                vendor: generic
                type: camera
                address: 127.0.0.1:\(cameraPort)
                auth: {username: gateway, password: "Demo#2025", scheme: digest}
                options: {retry_initial_seconds: 0.2, retry_max_seconds: 1, pull_timeout_seconds: 5}
                picture_health: {interval_seconds: 1, raise_after: 1, clear_after: 1, learn_hours: 0}
            """
        let (daemon, _, admin) = try await DaemonProcess.start(configPath: try site.write())
        #expect(await eventually(timeout: .seconds(60)) { camera.snapshotsServed >= 3 }, "\(daemon.log.suffix(2000))")
        #expect(camera.figures.count("GetSnapshotUri") == 1 && camera.figures.count("GetProfiles") == 1, "cached: \(camera.figures.requests)")
        #expect(camera.figures.refusedCredentials == 0 && camera.figures.staleCreated == 0, "\(camera.figures)")

        // The camera moves its snapshot: one 404, then the URI is asked for again and snapshots go on.
        camera.moveSnapshot()
        let served = camera.snapshotsServed
        #expect(await eventually(timeout: .seconds(60)) { camera.snapshotsServed >= served + 2 }, "\(daemon.log.suffix(2000))")
        #expect(camera.figures.count("GetSnapshotUri") == 2, "\(camera.figures.requests)")
        let status = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)", "--json"]).stdout
        let json = try #require(try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])
        let figures = try #require((json["pictureHealth"] as? [String: [String: Any]])?["onvif-cam"], "\(status)")
        #expect(figures["failures"] as? Int == 1 && (figures["lastError"] as? String)?.contains("404") == true, "\(figures)")

        camera.setPicture(.covered)
        #expect(await eventually(timeout: .seconds(60)) {
            try receiver.snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }
                .contains { $0.kind == .cameraImageDegraded && $0.device.id == "onvif-cam" && $0.attributes?["reason"] == .string("covered") }
        }, "\(daemon.log.suffix(3000))")
        #expect(try await daemon.stop() == 0)
    }
}
