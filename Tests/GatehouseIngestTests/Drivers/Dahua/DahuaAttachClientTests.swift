import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
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
        let clock = ManualClock()

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

    /// Runs the driver for `cam` against `camera` on a harness's clock while `body` runs, then
    /// stops the driver and the camera.
    static func driving(_ camera: DahuaCamera, options: String, _ body: (Harness) async throws -> Void) async throws {
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let harness = try Harness(port: try await camera.waitUntilRunning(), options: options)
        let device = try #require(harness.fixture.context.device(id: "cam"))
        let run = Task { try await DahuaDriver().run(device: device, context: harness.context) }
        try await body(harness)
        run.cancel()
        _ = try? await run.value
        await camera.shutdown()
        await harness.fixture.finish()
    }

    @Test("a wrong password: one challenge, one refused try, down with the reason, no retry until auth_retry_seconds on the clock")
    func wrongPassword() async throws {
        let camera = Self.camera(refuseAll: true)
        try await Self.driving(camera, options: "{auth_retry_seconds: 300}") { harness in
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
        }
    }

    @Test("a stream that stops sending (not even heartbeats) is dropped after 3 heartbeats on the clock and made again")
    func stall() async throws {
        let camera = Self.camera()
        camera.setHeartbeats(false)
        try await Self.driving(camera, options: "{heartbeat_seconds: 5, reconnect_max_seconds: 2}") { harness in
            #expect(await eventually { camera.openStreams == 1 })
            #expect(await eventually { harness.health?.state == .up })
            // Events on the live stream arrive: a start, a repeat, a stop.
            camera.fire([DahuaCamera.motion(active: true), DahuaCamera.motion(active: true), DahuaCamera.motion(active: false)])
            #expect(await eventually { try await harness.fixture.events().filter { $0.kind == .cameraMotion }.count == 2 })
            let last = try #require(harness.directory.lastPayload("cam")).shown(under: .default)
            #expect(last.text.contains("Code=VideoMotion;action=Stop") && last.mapped, "the stream's last message, for the console: \(last.text)")
            // Without advancing the clock nothing is decided: still one stream.
            #expect(camera.figures.streamsOpened == 1)
            #expect(await eventually(timeout: .seconds(30)) {
                harness.clock.advance(by: .seconds(1))
                return camera.figures.streamsOpened >= 2
            })
            let motion = try await harness.fixture.events().filter { $0.kind == .cameraMotion }
            #expect(motion.map(\.state) == [.start, .stop])
        }
    }

    @Test("a slow commit is not a stall: events held in a commit past 3 heartbeats on the clock keep their stream; released, they are stored")
    func slowCommitIsNotAStall() async throws {
        let camera = Self.camera()
        camera.setHeartbeats(false)
        try await Self.driving(camera, options: "{heartbeat_seconds: 5, reconnect_max_seconds: 2}") { harness in
            #expect(await eventually { harness.health?.state == .up })
            let gate = Gate()
            harness.fixture.queue.beforeCommit.withLock { $0 = { await gate.pass() } }
            camera.fire([DahuaCamera.motion(active: true)])
            #expect(await eventually { gate.holding == 1 })
            // 30 s on the clock while the commit is held, twice the 15 s that make a silent stream stalled.
            for _ in 0..<30 {
                harness.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(20))
            }
            harness.fixture.queue.beforeCommit.withLock { $0 = nil }
            gate.open()
            #expect(await eventually { try await harness.fixture.events().filter { $0.kind == .cameraMotion }.count == 1 })
            #expect(camera.figures.streamsOpened == 1 && harness.health?.state == .up, "\(camera.figures) \(String(describing: harness.health))")
        }
    }

    @Test("a slow handshake is not a stall: an attach request answered after 3 heartbeats on the clock is waited for, not tried again")
    func slowHandshakeIsNotAStall() async throws {
        let camera = Self.camera()
        camera.holdRequests()
        try await Self.driving(camera, options: "{heartbeat_seconds: 5, reconnect_max_seconds: 2}") { harness in
            #expect(await eventually { camera.heldRequests == 1 })
            // 25 s on the clock, beyond the 15 s that make an open stream stalled, short of the handshake's 30.
            for _ in 0..<25 {
                harness.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(20))
            }
            camera.releaseRequests()
            #expect(await eventually { harness.health?.state == .up })
            #expect(camera.figures.attachRequests == 2 && camera.figures.streamsOpened == 1, "challenge and answer, once: \(camera.figures)")
        }
    }

    @Test("an NVR's channels: 12 devices on one host hold 12 streams at once through the driver's one HTTP client, closed when the last stops")
    func channelsOnOneHost() async throws {
        let camera = Self.camera()
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let port = try await camera.waitUntilRunning()
        // More than AsyncHTTPClient's default of 8 connections per host, which would queue the rest for ever.
        let ids = (1...12).map { "ch\($0)" }
        let fixture = try IngestFixture(devices: ids.map { id in """
                  - id: \(id)
                    driver: dahua
                    type: camera
                    address: 127.0.0.1:\(port)
                    auth: {username: admin, password: dahua123, scheme: digest}
            """ }.joined(separator: "\n"), extra: "adapters_directory: \(DahuaDriverTests.adapters)", clock: ManualClock())
        let context = fixture.context
        let driver = DahuaDriver()
        let devices = try ids.map { try #require(fixture.context.device(id: $0)) }
        let runs = devices.map { device in Task { try await driver.run(device: device, context: context) } }
        #expect(await eventually(timeout: .seconds(30)) { camera.openStreams == 12 }, "\(camera.openStreams) streams open")
        #expect(driver.http.isOpen)
        // One device stops: the others keep the client and their streams.
        runs[0].cancel()
        _ = try? await runs[0].value
        #expect(driver.http.isOpen)
        #expect(await eventually { camera.openStreams == 11 })
        for run in runs.dropFirst() { run.cancel() }
        for run in runs { _ = try? await run.value }
        #expect(!driver.http.isOpen)
        await camera.shutdown()
        await fixture.finish()
    }
}
