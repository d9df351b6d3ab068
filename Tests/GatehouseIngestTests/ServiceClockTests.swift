import Foundation
@testable import GatehouseCore
@testable import GatehouseDaemon
import GatehouseQueue
import GatehouseTesting
import Hummingbird
import Logging
import Synchronization
import Testing

@testable import GatehouseIngest

/// The daemon's time decisions on a `ManualClock`: each test moves time instead of sleeping
/// through a backoff, tick or retention, so a slow machine only makes the polling take longer,
/// never changes an outcome.
@Suite("daemon services on an injected clock")
struct ServiceClockTests {
    static let door = """
          - id: door-1
            driver: generic-json
            type: door-controller
            offline_after_seconds: 60
        """

    /// How often a driver's `run` was started.
    final class Starts: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    /// A per-device driver whose run fails at once, as one whose controller refuses the login.
    struct RefusedDriver: Driver {
        struct Refused: Error, CustomStringConvertible {
            var description: String { "controller refused the login" }
        }
        let name = "generic-json"
        let starts: Starts
        var runsPerDevice: Bool { true }
        func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {}
        func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] { [] }
        func run(device: DeviceConfig, context: DriverContext) async throws {
            starts.add()
            throw Refused()
        }
    }

    /// Waits until the service under test has armed its next timer (its work for the last
    /// advance is done), then moves the clock by `step`, `times` times.
    static func step(_ clock: ManualClock, by step: Duration, times: Int = 1) async {
        for _ in 0..<times {
            _ = await eventually { clock.pendingTimers == 1 }
            clock.advance(by: step)
        }
        _ = await eventually { clock.pendingTimers == 1 }
    }

    @Test("a failing driver is restarted after 1 s, then after 2 s, on the drivers' clock, and its device is down")
    func supervisorRestartBackoff() async throws {
        let clock = ManualClock()
        let fixture = try IngestFixture(devices: Self.door, clock: clock)
        let starts = Starts()
        let supervisor = DriverSupervisor(context: fixture.context, drivers: [RefusedDriver(starts: starts)], logger: testLogger())
        supervisor.apply(fixture.config.devices)
        let running = Task { try await supervisor.run() }

        // Started once, then waiting out its first backoff.
        #expect(await eventually { starts.value == 1 && clock.pendingTimers == 1 })
        clock.advance(by: .milliseconds(999))
        #expect(starts.value == 1 && clock.pendingTimers == 1, "restarted before its 1 s backoff was over")
        clock.advance(by: .milliseconds(1))
        #expect(await eventually { starts.value == 2 && clock.pendingTimers == 1 })
        // The backoff doubled.
        clock.advance(by: .seconds(1))
        #expect(starts.value == 2 && clock.pendingTimers == 1, "restarted before its 2 s backoff was over")
        clock.advance(by: .seconds(1))
        #expect(await eventually { starts.value == 3 })

        let health = try #require(fixture.requests.devices.healthSnapshot.first)
        #expect(health.state == .down)
        #expect(health.reason?.contains("controller refused the login") == true)
        #expect(try await fixture.events().filter { $0.kind == .deviceOffline }.count == 1)
        running.cancel()
        _ = await running.result
        await fixture.finish()
    }

    @Test("the status tick runs on its clock: a silent device goes offline after offline_after_seconds, the summary after status_interval_seconds")
    func statusTick() async throws {
        let clock = ManualClock()
        let fixture = try IngestFixture(devices: Self.door, clock: clock)
        let (logger, lines) = CapturingLogHandler.logger()
        let sinks = SinkSupervisor(queue: fixture.queue, clock: clock, logger: testLogger())
        let collector = StatusCollector(
            queue: fixture.queue, devices: fixture.requests.devices, sinks: sinks, registry: .init(), site: fixture.config.site)
        let status = StatusService(
            collector: collector, pipeline: fixture.pipeline, notifier: SystemdNotifier(environment: [:]), interval: 30, clock: clock,
            logger: logger)
        let running = Task { try await status.run() }
        let summaries = { lines.all.filter { $0.message.hasPrefix("status: devices ") }.count }
        let offline = { try await fixture.events().filter { $0.kind == .deviceOffline && $0.device.id == "door-1" }.count }

        await Self.step(clock, by: .seconds(1), times: 29)
        #expect(summaries() == 0)
        await Self.step(clock, by: .seconds(1))
        #expect(summaries() == 1, "one summary once status_interval_seconds has passed")
        await Self.step(clock, by: .seconds(1), times: 30)
        #expect(try await offline() == 0, "within offline_after_seconds the device is still waiting")
        #expect(summaries() == 2)
        await Self.step(clock, by: .seconds(1))
        #expect(try await offline() == 1)
        #expect(fixture.requests.devices.healthSnapshot.first?.state == .down)

        running.cancel()
        _ = await running.result
        await fixture.finish()
    }

    @Test("image retention sweeps at start and then every interval, measuring the age of pictures on its clock")
    func imageRetentionSweep() async throws {
        let camera = """
              - id: cam-1
                driver: profile
                type: lpr-camera
                options: {profile: zhenshi-lpr, barrier: camera}
            """
        let clock = ManualClock()
        let fixture = try IngestFixture(devices: camera, extra: "privacy:\n  images: keep 7 days\nimages:\n  store: true", clock: clock)
        let directory = try #require(fixture.config.devices.first).images.directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let start = clock.now.date
        func picture(_ name: String, writtenAgo seconds: Double) throws -> String {
            let path = (directory as NSString).appendingPathComponent(name)
            try Data([0xFF, 0xD8, 0xFF, 0xD9]).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.modificationDate: start.addingTimeInterval(-seconds)], ofItemAtPath: path)
            return path
        }
        let week = 7 * 86_400.0
        let expired = try picture("expired.jpg", writtenAgo: week + 10)
        let expiresWithinTheHour = try picture("soon.jpg", writtenAgo: week - 1800)
        let fresh = try picture("fresh.jpg", writtenAgo: 0)
        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }

        let service = ImageRetentionService(
            devices: fixture.requests.devices, profiles: ProfileDriver(), clock: clock, logger: testLogger(), intervalSeconds: 3600)
        let running = Task { try await service.run() }
        #expect(await eventually { !exists(expired) && clock.pendingTimers == 1 }, "the sweep at start deletes what is past the retention")
        #expect(exists(expiresWithinTheHour))
        await Self.step(clock, by: .seconds(3599))
        #expect(exists(expiresWithinTheHour), "no sweep before the interval is over")
        await Self.step(clock, by: .seconds(1))
        #expect(!exists(expiresWithinTheHour), "the hourly sweep deletes what has aged past the retention since")
        #expect(exists(fresh))

        running.cancel()
        _ = await running.result
        await fixture.finish()
    }
}
