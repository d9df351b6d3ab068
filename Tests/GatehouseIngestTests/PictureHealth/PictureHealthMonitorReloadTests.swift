import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseSinks
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseIngest

/// The monitor's limits and its SIGHUP path, in process on a ManualClock against snapshot camera
/// simulators that count (and can hold) the requests they are answering: no timing assertions.
@Suite("picture health monitor limits and reload")
struct PictureHealthMonitorReloadTests {
    static func logger() -> Logger {
        var logger = Logger(label: "picture-health-test")
        logger.logLevel = .critical
        return logger
    }

    /// Device entries, one per (id, URL, `picture_health:` flow map).
    static func devicesYAML(_ cameras: [(id: String, url: String, health: String)]) -> String {
        cameras.map { camera in
            """
              - id: \(camera.id)
                driver: generic-json
                type: camera
                address: 127.0.0.1
                picture_health: {snapshot_url: "\(camera.url)", \(camera.health)}
            """
        }.joined(separator: "\n")
    }

    /// What a SIGHUP would read: the same devices parsed as the daemon parses them.
    static func config(_ devices: String, extra: String) throws -> GatehouseConfig {
        try ConfigLoader.parse(
            "site: test\nstate_directory: /tmp\n\(extra)\ndevices:\n\(devices)\nsinks:\n  - {name: out, type: file, path: /tmp/unused.ndjson}\n",
            file: "reload.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
    }

    /// Moves `clock` in `step`s until `condition` holds (bounded by the eventually's own limit).
    static func advance(_ clock: ManualClock, by step: Duration = .seconds(10), until condition: () async throws -> Bool) async -> Bool {
        await eventually(timeout: .seconds(120)) {
            if try await condition() { return true }
            clock.advance(by: step)
            return false
        }
    }

    @Test("seven cameras, concurrency 3: never more than 3 snapshots in flight; raised to 20 by a reload while answers are held, never two for one camera")
    func concurrencyLimit() async throws {
        let camera = SnapshotCamera(authentication: .none, logger: Self.logger())
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let port = try await camera.waitUntilRunning()
        // One simulator, one request target per camera: it counts the gateway's requests all
        // together and per camera. The HTTP client's pool (8 per host) is above the seven tested.
        let cameras = (0..<7).map { ("cam-\($0)", "http://127.0.0.1:\(port)/cgi-bin/snapshot.cgi?channel=\($0)", "interval_seconds: 60") }
        let clock = ManualClock()
        let fixture = try IngestFixture(
            devices: Self.devicesYAML(cameras), extra: "picture_health: {concurrency: 3, timeout_seconds: 120}", clock: clock)
        let monitor = PictureHealthMonitor(
            pipeline: fixture.pipeline, settings: fixture.config.pictureHealth, devices: fixture.config.devices, clock: clock, logger: Self.logger())
        let running = Task { await monitor.run() }

        camera.holdSnapshots()
        // A whole interval passes: all seven are due, three may go.
        #expect(await Self.advance(clock) { camera.snapshotsInFlight == 3 })
        for _ in 0..<12 { clock.advance(by: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(200))  // lets a wrong scheduler start more; the count below is what is checked
        #expect(camera.snapshotsInFlight == 3 && camera.mostInFlight.all == 3, "\(camera.mostInFlight)")

        // A reload raises the limit: the other four start, the three held are not asked again.
        var settings = fixture.config.pictureHealth
        settings.concurrency = 20
        let changes = await monitor.apply(settings: settings, devices: fixture.config.devices)
        #expect(changes == ["picture health settings changed"], "\(changes)")
        #expect(await eventually(timeout: .seconds(60)) { camera.snapshotsInFlight == 7 })
        for _ in 0..<12 { clock.advance(by: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(camera.snapshotsInFlight == 7 && camera.mostInFlight.oneTarget == 1, "\(camera.mostInFlight)")

        camera.releaseSnapshots()
        #expect(await Self.advance(clock) { (0..<7).allSatisfy { (monitor.figures("cam-\($0)")?.snapshots ?? 0) >= 3 } })
        #expect(camera.mostInFlight.all == 7 && camera.mostInFlight.oneTarget == 1, "\(camera.mostInFlight)")
        #expect((0..<7).allSatisfy { monitor.figures("cam-\($0)")?.failures == 0 }, "\((0..<7).map { monitor.figures("cam-\($0)")?.lastError ?? "-" })")
        running.cancel()
        await running.value
        await fixture.finish()
    }

    @Test("reload: a kept camera keeps its baseline and its open degradation (not raised again); new thresholds apply; an added camera starts; a removed camera's stored state is deleted")
    func reload() async throws {
        let sharp = SnapshotCamera(authentication: .none, logger: Self.logger())
        let covered = SnapshotCamera(picture: .covered, authentication: .none, logger: Self.logger())
        let servers = [sharp, covered].map { camera in Task { try await camera.run() } }
        defer { for server in servers { server.cancel() } }
        let sharpURL = "http://127.0.0.1:\(try await sharp.waitUntilRunning())/cgi-bin/snapshot.cgi"
        let coveredURL = "http://127.0.0.1:\(try await covered.waitUntilRunning())/cgi-bin/snapshot.cgi"
        let health = "interval_seconds: 60, raise_after: 1, clear_after: 1, learn_hours: 0"
        let before: [(id: String, url: String, health: String)] = [
            ("cam-sharp", sharpURL + "?channel=1", health), ("cam-covered", coveredURL + "?channel=1", health),
            ("cam-gone", sharpURL + "?channel=2", health),
        ]
        let clock = ManualClock()
        let fixture = try IngestFixture(devices: Self.devicesYAML(before), clock: clock)
        let monitor = PictureHealthMonitor(
            pipeline: fixture.pipeline, settings: fixture.config.pictureHealth, devices: fixture.config.devices, clock: clock, logger: Self.logger())
        let running = Task { await monitor.run() }
        #expect(await Self.advance(clock) {
            monitor.figures("cam-covered")?.degraded == .covered && monitor.figures("cam-gone")?.snapshots ?? 0 >= 1
                && monitor.figures("cam-sharp")?.baseline != nil
        })
        let baseline = try #require(monitor.figures("cam-sharp")?.baseline)
        // Written with the verdict, just after the figures count the snapshot.
        #expect(await eventually { try await fixture.queue.deviceCursor("picture-health:cam-gone") != nil })
        #expect(try await fixture.events().filter { $0.kind == .cameraImageDegraded }.map(\.device.id) == ["cam-covered"])

        // The reload: cam-gone removed, cam-new added, cam-sharp's interval and blur limit changed.
        let after: [(id: String, url: String, health: String)] = [
            ("cam-sharp", sharpURL + "?channel=1", health.replacingOccurrences(of: "interval_seconds: 60", with: "interval_seconds: 30") + ", blur_fraction: 0.5"),
            ("cam-covered", coveredURL + "?channel=1", health), ("cam-new", sharpURL + "?channel=3", health),
        ]
        let next = try Self.config(Self.devicesYAML(after), extra: "")
        let changes = await monitor.apply(settings: next.pictureHealth, devices: next.devices)
        #expect(Set(changes) == ["picture health on cam-new", "picture health off cam-gone", "picture health of cam-sharp changed"], "\(changes)")
        // Deleted at once, and again when a snapshot that was running when it was removed ends.
        #expect(await eventually { try await fixture.queue.deviceCursor("picture-health:cam-gone") == nil })
        #expect(monitor.figures("cam-gone") == nil && Set(monitor.allFigures.keys) == ["cam-sharp", "cam-covered", "cam-new"])

        let sharpSeen = monitor.figures("cam-sharp")?.snapshots ?? 0
        let coveredSeen = monitor.figures("cam-covered")?.snapshots ?? 0
        #expect(await Self.advance(clock) {
            (monitor.figures("cam-new")?.snapshots ?? 0) >= 2 && (monitor.figures("cam-sharp")?.snapshots ?? 0) >= sharpSeen + 2
                && (monitor.figures("cam-covered")?.snapshots ?? 0) >= coveredSeen + 2
        })
        let kept = try #require(monitor.figures("cam-sharp"))
        #expect(kept.baseline == baseline, "the learned baseline survives the reload")
        #expect(kept.sharpnessLimit == baseline * 0.5, "the new blur_fraction applies")
        #expect(monitor.figures("cam-covered")?.degraded == .covered)
        #expect(try await fixture.events().filter { $0.kind == .cameraImageDegraded }.map(\.device.id) == ["cam-covered"], "the open degradation is not raised again")
        #expect(try await fixture.queue.deviceCursor("picture-health:cam-gone") == nil)
        #expect(try await fixture.queue.deviceCursor("picture-health:cam-new") != nil)
        running.cancel()
        await running.value
        await fixture.finish()
    }
}
