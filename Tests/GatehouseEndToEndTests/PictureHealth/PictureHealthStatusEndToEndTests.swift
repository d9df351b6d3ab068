import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// Picture health's figures in the status log line, `gatehouse status` and its JSON, and its
/// SIGHUP reload, through the built daemon against snapshot camera simulators.
@Suite("picture health status and reload end to end", .serialized)
struct PictureHealthStatusEndToEndTests {
    /// `gatehouse status --json`'s picture health section.
    static func pictureHealth(admin: Int) async throws -> [String: [String: Any]] {
        let result = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)", "--json"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return try #require(json["pictureHealth"] as? [String: [String: Any]], "\(result.stdout)")
    }

    static func device(_ id: String, port: Int, health: String) -> String {
        """
              - id: \(id)
                driver: generic-json
                vendor: dahua
                type: camera
                address: 127.0.0.1:\(port)
                auth: {username: viewer, password: "Cam!2025", scheme: digest}
                picture_health: {\(health)}
        """
    }

    @Test("scores, baseline, state, counters and the last error show in the status line, the table and --json; SIGHUP removes a camera, adds one and keeps the baseline")
    func statusAndReload() async throws {
        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var logger = Logger(label: "snapshot-sim")
        logger.logLevel = .critical
        let sharp = SnapshotCamera(logger: logger)
        let covered = SnapshotCamera(picture: .covered, logger: logger)
        let servers = [sharp, covered].map { camera in Task { try await camera.run() } }
        defer { for server in servers { server.cancel() } }
        let sharpPort = try await sharp.waitUntilRunning()
        let coveredPort = try await covered.waitUntilRunning()
        let health = "interval_seconds: 1, raise_after: 1, clear_after: 1, learn_hours: 0"
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extraDevices = [
            Self.device("cam-sharp", port: sharpPort, health: health),
            Self.device("cam-covered", port: coveredPort, health: health),
            // Nothing listens on port 9 of 127.0.0.1: every snapshot fails.
            Self.device("cam-unreachable", port: 9, health: health),
        ].joined(separator: "\n")
        let (daemon, _, admin) = try await DaemonProcess.start(configPath: try site.write())

        #expect(await eventually(timeout: .seconds(60)) {
            let figures = try await Self.pictureHealth(admin: admin)
            return (figures["cam-sharp"]?["snapshots"] as? Int ?? 0) >= 2 && figures["cam-sharp"]?["baseline"] != nil
                && figures["cam-covered"]?["degraded"] as? String == "covered" && (figures["cam-unreachable"]?["failures"] as? Int ?? 0) >= 1
        }, "\(daemon.log.suffix(2000))")
        let figures = try await Self.pictureHealth(admin: admin)
        let sharpFigures = try #require(figures["cam-sharp"])
        let scores = try #require(sharpFigures["lastScores"] as? [String: Any])
        #expect(scores["sharpness"] is Double && scores["brightness"] is Double && scores["change"] is Double, "\(scores)")
        #expect(sharpFigures["lastSnapshotAt"] != nil && sharpFigures["failures"] as? Int == 0 && sharpFigures["lastError"] == nil)
        let baseline = try #require(sharpFigures["baseline"] as? Double)
        #expect(figures["cam-covered"]?["degradedSince"] != nil)
        #expect((figures["cam-unreachable"]?["lastError"] as? String)?.isEmpty == false && figures["cam-unreachable"]?["snapshots"] as? Int == 0)

        let table = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)"]).stdout
        #expect(table.contains("PICTURE HEALTH 1/3 degraded"), "\(table)")
        let rows = table.split(separator: "\n").map(String.init)
        #expect(rows.contains { $0.contains("cam-covered") && $0.contains("degraded: covered") && $0.contains("since") }, "\(table)")
        #expect(rows.contains { $0.contains("cam-sharp") && $0.contains(" ok ") }, "\(table)")
        #expect(rows.contains { $0.contains("last error") }, "\(table)")
        #expect(await eventually(timeout: .seconds(30)) {
            daemon.log.contains("picture health 3 cameras, 1 degraded (cam-covered: covered), 1 failing (cam-unreachable: ")
        }, "\(daemon.log.suffix(2000))")

        // SIGHUP: the unreachable camera goes, a second view of the sharp camera comes, the sharp one gets a new blur limit.
        site.extraDevices = [
            Self.device("cam-sharp", port: sharpPort, health: health + ", blur_fraction: 0.5"),
            Self.device("cam-covered", port: coveredPort, health: health),
            Self.device("cam-new", port: sharpPort, health: health),
        ].joined(separator: "\n")
        _ = try site.write()
        daemon.sendSignal(SIGHUP)
        #expect(await eventually(timeout: .seconds(20)) { daemon.log.contains("config reloaded") }, "\(daemon.log.suffix(1500))")
        #expect(daemon.log.contains("picture health off cam-unreachable") && daemon.log.contains("picture health on cam-new")
            && daemon.log.contains("picture health of cam-sharp changed"), "\(daemon.log.suffix(1500))")
        #expect(await eventually(timeout: .seconds(60)) {
            let figures = try await Self.pictureHealth(admin: admin)
            return (figures["cam-new"]?["snapshots"] as? Int ?? 0) >= 1 && figures["cam-unreachable"] == nil
                && figures["cam-sharp"]?["sharpnessLimit"] as? Double == baseline * 0.5
        }, "\(daemon.log.suffix(2000))")
        let reloaded = try await Self.pictureHealth(admin: admin)
        #expect(reloaded["cam-sharp"]?["baseline"] as? Double == baseline, "the learned baseline survives SIGHUP")
        #expect(reloaded["cam-covered"]?["degraded"] as? String == "covered")
        #expect(try await daemon.stop() == 0)
    }
}
