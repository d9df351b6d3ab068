import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseIngest

/// The attach client against the simulator, on an injected clock: a wrong password is not
/// retried before `auth_retry_seconds`, a stalled stream is made again after 3 heartbeats.
@Suite("dahua attach client", .serialized)
struct DahuaAttachClientTests {
    /// A device context whose clock only moves when the test says so.
    struct Harness {
        let fixture: IngestFixture
        let directory: DeviceDirectory
        let context: DriverContext
        let clock = DahuaTestClock()

        init(port: Int, options: String) throws {
            fixture = try IngestFixture(devices: """
                  - id: cam
                    driver: dahua
                    type: camera
                    address: 127.0.0.1:\(port)
                    auth: {username: admin, password: dahua123, scheme: digest}
                    options: \(options)
                """, extra: "adapters_directory: \(DahuaDriverTests.adapters)")
            directory = DeviceDirectory(devices: fixture.config.devices, logger: Logger(label: "dahua-tests"), clock: clock)
            context = DriverContext(
                pipeline: IngestPipeline(config: fixture.config, queue: fixture.queue, devices: directory, logger: Logger(label: "dahua-tests")),
                requests: fixture.requests, clock: clock)
        }

        var health: DeviceDirectory.Health? { directory.healthSnapshot.first { $0.id == "cam" } }
    }

    static func camera(refuseAll: Bool = false) -> DahuaCamera {
        var logger = Logger(label: "dahua-sim")
        logger.logLevel = .warning
        return DahuaCamera(refuseAll: refuseAll, logger: logger)
    }

    @Test("a wrong password: one challenge, one refused try, down with the reason, no retry until auth_retry_seconds on the clock")
    func wrongPassword() async throws {
        let camera = Self.camera(refuseAll: true)
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let harness = try Harness(port: try await camera.waitUntilRunning(), options: "{auth_retry_seconds: 300}")
        let device = try #require(harness.fixture.context.device(id: "cam"))
        let run = Task { try await DahuaDriver().run(device: device, context: harness.context) }
        #expect(await eventually { harness.health?.reason?.contains("wrong username or password") == true }, "\(String(describing: harness.health))")
        #expect(camera.figures.attachRequests == 2)
        #expect(camera.figures.refusedCredentials == 1)
        // Time passes short of the retry: nothing is sent.
        #expect(await eventually { harness.clock.pendingTimers > 0 })
        harness.clock.advance(by: .seconds(299))
        try await Task.sleep(for: .milliseconds(200))  // a retry would have been sent by now
        #expect(camera.figures.attachRequests == 2)
        harness.clock.advance(by: .seconds(1))
        #expect(await eventually { camera.figures.attachRequests == 4 })
        #expect(camera.figures.refusedCredentials == 2)
        run.cancel()
        _ = try? await run.value
        await camera.shutdown()
        await harness.fixture.finish()
    }

    @Test("a stream that stops sending (not even heartbeats) is dropped after 3 heartbeats on the clock and made again")
    func stall() async throws {
        let camera = Self.camera()
        camera.setHeartbeats(false)
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let harness = try Harness(port: try await camera.waitUntilRunning(), options: "{heartbeat_seconds: 5, reconnect_max_seconds: 2}")
        let device = try #require(harness.fixture.context.device(id: "cam"))
        let run = Task { try await DahuaDriver().run(device: device, context: harness.context) }
        #expect(await eventually { camera.openStreams == 1 })
        #expect(await eventually { harness.health?.state == .up })
        // Events on the live stream arrive: a start, a repeat, a stop.
        camera.fire([DahuaCamera.motion(active: true), DahuaCamera.motion(active: true), DahuaCamera.motion(active: false)])
        #expect(await eventually { try await harness.fixture.events().filter { $0.kind == .cameraMotion }.count == 2 })
        // Without advancing the clock nothing is decided: still one stream.
        #expect(camera.figures.streamsOpened == 1)
        #expect(await eventually(timeout: .seconds(30)) {
            harness.clock.advance(by: .seconds(1))
            return camera.figures.streamsOpened >= 2
        })
        let motion = try await harness.fixture.events().filter { $0.kind == .cameraMotion }
        #expect(motion.map(\.state) == [.start, .stop])
        run.cancel()
        _ = try? await run.value
        await camera.shutdown()
        await harness.fixture.finish()
    }
}

/// `ManualClock` as drivers read it.
final class DahuaTestClock: DriverClock {
    let manual = ManualClock()
    var now: Timestamp { manual.now }
    var instant: ContinuousClock.Instant { ContinuousClock.now }
    var pendingTimers: Int { manual.pendingTimers }
    func advance(by delay: Duration) { manual.advance(by: delay) }
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer { manual.schedule(after: delay, action) }
}
