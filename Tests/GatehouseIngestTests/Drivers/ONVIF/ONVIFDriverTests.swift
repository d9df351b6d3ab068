import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseIngest

/// A `ManualClock` as a driver sees it: wall time, monotonic time and timers all move only when
/// the test advances it, so renewals, backoffs, expiries and quiet stops need no sleeping.
final class ONVIFTestClock: DriverClock {
    let manual = ManualClock()
    let origin = ContinuousClock.now
    let start: Timestamp

    init() { start = manual.now }

    var now: Timestamp { manual.now }
    var instant: ContinuousClock.Instant { origin + .milliseconds(manual.now.milliseconds - start.milliseconds) }
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer { manual.schedule(after: delay, action) }
    func advance(seconds: Double) { manual.advance(by: .milliseconds(Int64(seconds * 1000))) }
}

/// The PullPoint loop against the simulated camera through a real queue: the camera and the
/// driver read the same manual clock, so "ten minutes later" is one call.
@Suite("onvif driver", .serialized)
struct ONVIFDriverTests {
    /// A camera, the driver running for it, the queue it writes to.
    struct Harness {
        let camera: ONVIFCamera
        let clock: ONVIFTestClock
        let fixture: IngestFixture
        let cameraTask: Task<Void, any Error>
        let driverTask: Task<Void, any Error>

        static func start(
            vendor: ONVIFCamera.Vendor = .generic, cameraPassword: String = "Demo#2025", clockOffset: Double = 0,
            options: String = "", prepare: (ONVIFCamera) -> Void = { _ in }
        ) async throws -> Harness {
            let clock = ONVIFTestClock()
            var logger = Logger(label: "onvif-sim")
            logger.logLevel = .warning
            let camera = ONVIFCamera(
                password: cameraPassword, vendor: vendor, clockOffsetSeconds: clockOffset, createdWindowSeconds: 5, maxHold: .milliseconds(10),
                now: { clock.now.date }, logger: logger)
            prepare(camera)
            let cameraTask = Task { try await camera.run() }
            let port = try await camera.waitUntilRunning()
            let fixture = try IngestFixture(devices: """
                  - id: cam-1
                    driver: onvif
                    type: camera
                    address: 127.0.0.1:\(port)
                    auth: {username: gateway, password: "Demo#2025", scheme: digest}
                    options: {retry_initial_seconds: 1, retry_max_seconds: 4, subscription_seconds: 60, request_timeout_seconds: 5\(options)}
                """, clock: clock)
            let device = try #require(fixture.context.device(id: "cam-1"))
            let context = fixture.context
            let driverTask = Task { try await ONVIFDriver().run(device: device, context: context) }
            return Harness(camera: camera, clock: clock, fixture: fixture, cameraTask: cameraTask, driverTask: driverTask)
        }

        /// Whether the driver is waiting on the clock (a pause, a backoff) with no request at the
        /// camera: the only moments time moves, so how fast the machine is changes nothing.
        var driverIsWaiting: Bool { camera.requestsInFlight == 0 && clock.manual.pendingTimers > 0 }

        /// Polls `condition`, moving the clock `step` seconds whenever the driver waits on it.
        func advancing(_ step: Double = 1, timeout: Duration = .seconds(120), _ condition: () async throws -> Bool) async -> Bool {
            await eventually(timeout: timeout, poll: .milliseconds(2)) {
                if driverIsWaiting { clock.advance(seconds: step) }
                return try await condition()
            }
        }

        /// Moves the clock by `seconds` at once, the next time the driver waits on it.
        func jump(seconds: Double) async {
            _ = await eventually(timeout: .seconds(30), poll: .milliseconds(2)) { driverIsWaiting }
            clock.advance(seconds: seconds)
        }

        func events() async throws -> [Event] { try await fixture.events() }

        func alarms() async throws -> [Event] { try await events().filter { !$0.kind.rawValue.hasPrefix("device.") } }

        func stop() async {
            driverTask.cancel()
            _ = try? await driverTask.value
            cameraTask.cancel()
            await fixture.finish()
        }
    }

    @Test("Initialized burst starts only the active input; motion start, repeat and stop; quiet close; Unsubscribe on shutdown")
    func alarms() async throws {
        let h = try await Harness.start(options: ", motion_quiet_seconds: 30") { camera in
            camera.alarm("tns1:Device/Trigger/DigitalInput", active: true, source: [("InputToken", "DI_1")])
            for index in 0..<10 { camera.alarm("tns1:RuleEngine/TamperDetector/Tamper", active: false, source: [("VideoSourceConfigurationToken", "vs\(index)")]) }
        }
        #expect(await h.advancing { try await h.alarms().count == 1 })
        let initial = try #require(try await h.alarms().first)
        #expect(initial.kind == .alarmInput && initial.state == .start && initial.alarm?.initial == true && initial.point == "DI_1")
        #expect(initial.priority == .alarm)
        h.camera.alarm("tns1:VideoSource/MotionAlarm", active: true)
        h.camera.alarm("tns1:VideoSource/MotionAlarm", active: true)
        h.camera.alarm("tns1:VideoSource/MotionAlarm", active: false)
        #expect(await h.advancing(0.2) { try await h.alarms().count == 3 })
        let motion = try await h.alarms().filter { $0.kind == .cameraMotion }
        #expect(motion.map(\.state) == [.start, .stop], "\(motion.map(\.state))")
        #expect(motion.first?.alarm?.id == motion.last?.alarm?.id && motion.last?.alarm?.stopReason == .device)
        #expect(motion.first?.priority == .telemetry && motion.first?.point == "vsc_1")
        #expect(motion.first?.attributes?["code"] == .string("VideoSource/MotionAlarm"))
        // The console's device page shows the last notification, which mapped.
        let last = try #require(h.fixture.pipeline.lastPayload(of: "cam-1"))
        #expect(last.mapped && last.text.contains("MotionAlarm") && last.contentType == "application/soap+xml", "\(last)")
        // A motion start the camera never ends closes after the quiet time; the input stays open.
        h.camera.alarm("tns1:VideoSource/MotionAlarm", active: true)
        #expect(await h.advancing { try await h.alarms().contains { $0.alarm?.stopReason == .quiet } })
        #expect(try await h.alarms().filter { $0.kind == .alarmInput }.count == 1)
        #expect(h.camera.figures.subscriptionsCreated == 1)
        await h.stop()
        #expect(h.camera.figures.unsubscribed == 1)
        #expect(h.camera.liveSubscriptions == 0)
    }

    @Test("renews before expiry; survives an expired subscription and a camera reboot by subscribing again")
    func expiryAndReboot() async throws {
        let h = try await Harness.start()
        #expect(await h.advancing { h.camera.figures.subscriptionsCreated == 1 })
        // Three lifetimes pass in small steps: renewed, never recreated.
        #expect(await h.advancing { h.camera.figures.count("Renew") >= 3 })
        #expect(h.camera.figures.subscriptionsCreated == 1 && h.camera.figures.unknownSubscription == 0)
        // The camera reboots: ResourceUnknown, then a new subscription (whose Initialized replay adds nothing).
        h.camera.alarm("tns1:RuleEngine/LineDetector/Crossed", active: true)
        #expect(await h.advancing(0.2) { try await h.alarms().count == 1 })
        h.camera.reboot()
        #expect(await h.advancing { h.camera.figures.subscriptionsCreated == 2 })
        #expect(h.camera.figures.unknownSubscription >= 1)
        h.camera.alarm("tns1:RuleEngine/LineDetector/Crossed", active: false)
        #expect(await h.advancing(0.2) { try await h.alarms().count == 2 })
        // An hour passes at once: the subscription expired on the camera; the driver subscribes again.
        await h.jump(seconds: 3600)
        #expect(await h.advancing { h.camera.figures.subscriptionsCreated == 3 })
        h.camera.alarm("tns1:RuleEngine/TamperDetector/Tamper", active: true)
        #expect(await h.advancing(0.2) { try await h.alarms().count == 3 })
        let kinds = try await h.alarms().map(\.kind)
        #expect(kinds == [.cameraLineCrossing, .cameraLineCrossing, .cameraTamper])
        // Losing the subscription took the camera down with the reason; it came back.
        let health = try await h.events().filter { $0.kind == .deviceOffline }
        #expect(health.contains { "\($0.attributes?["reason"] ?? .null)".contains("ResourceUnknown") })
        await h.stop()
    }

    @Test("a camera clock two hours behind: digests signed with its time, clock-skew reported")
    func clockOffset() async throws {
        let h = try await Harness.start(clockOffset: -7200)
        #expect(await h.advancing { h.camera.figures.subscriptionsCreated == 1 })
        #expect(h.camera.figures.staleCreated == 0 && h.camera.figures.refusedCredentials == 0)
        h.camera.alarm("tns1:VideoSource/MotionAlarm", active: true)
        #expect(await h.advancing(0.2) { try await h.alarms().count == 1 })
        let skew = try await h.events().first { $0.kind == .deviceClockSkew }
        let seconds: Double? = if case .number(let n)? = skew?.attributes?["skewSeconds"] { n } else { nil }
        #expect(abs((seconds ?? 0) - 7200) < 5, "\(String(describing: skew?.attributes))")
        await h.stop()
    }

    @Test("a wrong password: one refusal, reported with the reason, then no request until auth_retry_seconds")
    func wrongPassword() async throws {
        let h = try await Harness.start(cameraPassword: "something else")
        #expect(await h.advancing(0.1) { h.camera.figures.refusedCredentials == 1 })
        #expect(await h.advancing(0.1) { try await h.events().contains { $0.kind == .deviceOffline } })
        let requests = h.camera.figures.total
        // Nine minutes: nothing more (the camera would lock the user after a few tries).
        for _ in 0..<54 { await h.jump(seconds: 10) }
        #expect(h.camera.figures.refusedCredentials == 1 && h.camera.figures.total == requests, "\(h.camera.figures)")
        let offline = try await h.events().first { $0.kind == .deviceOffline }
        let reason: String = if case .string(let text)? = offline?.attributes?["reason"] { text } else { "" }
        #expect(reason.contains("refused user 'gateway'") && reason.contains("not retrying for 600 s"), "\(reason)")
        // Past the pause it tries once more.
        #expect(await h.advancing(5) { h.camera.figures.refusedCredentials == 2 })
        #expect(try await h.alarms().isEmpty)
        await h.stop()
    }

    @Test("vendor quirks: Hikvision HTTP Digest, Axis reference parameters, Uniview minutes, Tapo one listener")
    func quirks() async throws {
        for vendor in [ONVIFCamera.Vendor.hikvision, .axis, .uniview, .tapo] {
            let h = try await Harness.start(vendor: vendor)
            #expect(await h.advancing { h.camera.figures.count("Renew") >= 1 }, "\(vendor) \(h.camera.figures)")
            h.camera.alarm("tns1:RuleEngine/FieldDetector/ObjectsInside", active: true)
            #expect(await h.advancing(0.2) { try await h.alarms().count == 1 }, "\(vendor)")
            if vendor == .tapo {
                // A fault on the pull: the lost subscription is freed before a new one (one listener only).
                h.camera.failNext("PullMessages", subcode: "ter:InvalidArgs")
                #expect(await h.advancing { h.camera.figures.subscriptionsCreated == 2 }, "\(h.camera.figures)")
                #expect(h.camera.figures.unsubscribed >= 1 && h.camera.figures.maxLive == 1)
            }
            #expect(h.camera.figures.subscriptionsCreated == (vendor == .tapo ? 2 : 1), "\(vendor) \(h.camera.figures)")
            let event = try #require(try await h.alarms().first)
            #expect(event.kind == .cameraIntrusion && event.priority == .alarm && event.state == .start)
            await h.stop()
        }
    }

    @Test("a camera whose pull points are full is asked again only after a subscription lifetime, not at the backoff pace")
    func pullPointsFull() async throws {
        let h = try await Harness.start(vendor: .tapo) { camera in camera.holdPullPoint(seconds: 90) }
        #expect(await h.advancing(0.1) { h.camera.figures.count("CreatePullPointSubscription") == 1 })
        // The backoff alone would have retried ten times in 50 s (retry_max_seconds: 4).
        for _ in 0..<50 { await h.jump(seconds: 1) }
        #expect(h.camera.figures.count("CreatePullPointSubscription") == 1, "\(h.camera.figures)")
        // The held pull point expires; the next attempt gets one.
        #expect(await h.advancing { h.camera.figures.subscriptionsCreated == 1 })
        await h.stop()
    }

    @Test("unreadable replies and messages are quarantined with the reason; the subscription goes on")
    func malformed() async throws {
        let h = try await Harness.start()
        #expect(await h.advancing { h.camera.figures.subscriptionsCreated == 1 })
        h.camera.sendUnreadablePulls(1)
        h.camera.sendRaw("<wsnt:NotificationMessage><wsnt:Message><tt:Message UtcTime=\"2025-03-14T02:16:02Z\"/></wsnt:Message></wsnt:NotificationMessage>")
        h.camera.fire(topic: "tns1:VideoSource/MotionAlarm", data: [("State", "true")], utcText: "2025-03-14T00:61:16Z")
        #expect(await h.advancing(0.2) {
            let kept = try await h.fixture.queue.quarantineEntries(deviceID: "cam-1").count
            let alarms = try await h.alarms().count
            return kept == 2 && alarms == 1
        })
        let reasons = try await h.fixture.queue.quarantineEntries(deviceID: "cam-1").map(\.reason).sorted()
        #expect(reasons.contains { $0.hasPrefix("PullMessages reply") } && reasons.contains { $0.contains("without Topic") }, "\(reasons)")
        // The bad stamp is kept verbatim; the event is not lost.
        let event = try #require(try await h.alarms().first)
        #expect(event.kind == .cameraMotion && event.state == .start)
        #expect(h.camera.figures.subscriptionsCreated == 1)
        await h.stop()
    }

    @Test("backoff doubles, is capped and jittered")
    func backoff() {
        #expect(ONVIFSession.backoff(failures: 1, initial: 5, maximum: 120, jitter: 1) == 5)
        #expect(ONVIFSession.backoff(failures: 3, initial: 5, maximum: 120, jitter: 1) == 20)
        #expect(ONVIFSession.backoff(failures: 40, initial: 5, maximum: 120, jitter: 1) == 120)
        let jittered = (0..<50).map { _ in ONVIFSession.backoff(failures: 2, initial: 5, maximum: 120) }
        #expect(jittered.allSatisfy { (7.5...12.5).contains($0) } && Set(jittered).count > 1)
    }
}
