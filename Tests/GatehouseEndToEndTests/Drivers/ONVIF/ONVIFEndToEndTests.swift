import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// ONVIF cameras through the built daemon: what reaches the central store from a camera whose
/// clock is off, that reboots, and from one whose password is wrong.
@Suite("onvif end to end", .serialized)
struct ONVIFEndToEndTests {
    static func camera(password: String = "Demo#2025", clockOffset: Double = 0) -> ONVIFCamera {
        var logger = Logger(label: "onvif-sim")
        logger.logLevel = .warning
        // A minute of anti-replay window: wide for a loaded machine, far narrower than the 30 min the clock is off.
        return ONVIFCamera(password: password, clockOffsetSeconds: clockOffset, createdWindowSeconds: 60, maxHold: .milliseconds(300), logger: logger)
    }

    static func device(_ id: String, port: Int) -> String {
        """
          - id: \(id)
            driver: onvif
            vendor: generic
            type: camera
            address: 127.0.0.1:\(port)
            auth: {username: gateway, password: "Demo#2025", scheme: digest}
            options: {retry_initial_seconds: 0.2, retry_max_seconds: 1, pull_timeout_seconds: 5}

        """
    }

    /// Every event the centre holds for `device`.
    static func events(_ receiver: CentralReceiver, device: String) throws -> [Event] {
        try receiver.snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }.filter { $0.device.id == device }
    }

    static func alarms(_ receiver: CentralReceiver, device: String) throws -> [Event] {
        try events(receiver, device: device).filter { !$0.kind.rawValue.hasPrefix("device.") }
    }

    @Test("alarms arrive with kind, priority, point and one start and stop; a reboot and an off clock are survived; a wrong password is tried once")
    func camerasThroughTheDaemon() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let camera = Self.camera(clockOffset: -1800)
        // State the camera holds before the gateway subscribes: one input active, tampers quiet.
        camera.alarm("tns1:Device/Trigger/DigitalInput", active: true, source: [("InputToken", "DI_1")])
        for index in 0..<5 { camera.alarm("tns1:RuleEngine/TamperDetector/Tamper", active: false, source: [("VideoSourceConfigurationToken", "vs\(index)")]) }
        let locked = Self.camera(password: "not the configured one")
        let cameraTask = Task { try await camera.run() }
        defer { cameraTask.cancel() }
        let lockedTask = Task { try await locked.run() }
        defer { lockedTask.cancel() }
        let cameraPort = try await camera.waitUntilRunning()
        let lockedPort = try await locked.waitUntilRunning()
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extraDevices = Self.device("gate-cam", port: cameraPort) + Self.device("locked-cam", port: lockedPort)
        let (daemon, _, _) = try await DaemonProcess.start(configPath: try site.write())

        // The Initialized burst: one start for the active input, nothing for the quiet tampers.
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { try Self.alarms(receiver, device: "gate-cam").count >= 1 }, "\(daemon.log.suffix(2000))")
        let initial = try Self.alarms(receiver, device: "gate-cam")
        #expect(initial.map(\.kind) == [.alarmInput] && initial.first?.alarm?.initial == true && initial.first?.point == "DI_1")
        #expect(initial.first?.priority == .alarm && initial.first?.state == .start)

        // Motion repeated while it lasts, then ended: one start, one stop; an intrusion starts.
        camera.alarm("tns1:VideoSource/MotionAlarm", active: true)
        camera.alarm("tns1:VideoSource/MotionAlarm", active: true)
        camera.alarm("tns1:VideoSource/MotionAlarm", active: true)
        camera.alarm("tns1:VideoSource/MotionAlarm", active: false)
        camera.alarm("tns1:RuleEngine/FieldDetector/ObjectsInside", active: true)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { try Self.alarms(receiver, device: "gate-cam").count >= 4 }, "\(daemon.log.suffix(2000))")

        // The camera reboots and forgets the subscription; the intrusion ends after it.
        camera.reboot()
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { camera.figures.subscriptionsCreated >= 2 }, "\(daemon.log.suffix(2000))")
        camera.alarm("tns1:RuleEngine/FieldDetector/ObjectsInside", active: false)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { try Self.alarms(receiver, device: "gate-cam").count >= 5 }, "\(daemon.log.suffix(2000))")
        try await Task.sleep(for: .milliseconds(700))  // a duplicate from the re-subscription's replay would be forwarded by now

        let alarms = try Self.alarms(receiver, device: "gate-cam").sorted { ($0.kind.rawValue, $0.state?.rawValue ?? "") < ($1.kind.rawValue, $1.state?.rawValue ?? "") }
        #expect(alarms.count == 5, "\(alarms.map { "\($0.kind.rawValue) \($0.state?.rawValue ?? "-")" })")
        let input = alarms.filter { $0.kind == .alarmInput }
        #expect(input.count == 1)
        let motion = alarms.filter { $0.kind == .cameraMotion }
        #expect(motion.map(\.state) == [.start, .stop] && motion[0].alarm?.id == motion[1].alarm?.id)
        #expect(motion.first?.priority == .telemetry && motion.first?.point == "vsc_1")
        let intrusion = alarms.filter { $0.kind == .cameraIntrusion }
        #expect(intrusion.map(\.state) == [.start, .stop] && intrusion.allSatisfy { $0.priority == .alarm })
        #expect(intrusion.last?.alarm?.startedAt != nil && intrusion.last?.alarm?.stopReason == .device)

        // The off clock: every request was signed with the camera's time, and the skew reported.
        #expect(camera.figures.staleCreated == 0 && camera.figures.refusedCredentials == 0, "\(camera.figures)")
        let skew = try Self.events(receiver, device: "gate-cam").filter { $0.kind == .deviceClockSkew }
        #expect(!skew.isEmpty)

        // The wrong password: refused once, reported, not tried again.
        #expect(locked.figures.refusedCredentials == 1, "\(locked.figures)")
        #expect(locked.figures.total <= 3, "\(locked.figures)")
        #expect(daemon.log.contains("refused user 'gateway'") && daemon.log.contains("not retrying for 600 s"), "\(daemon.log.suffix(1500))")
        #expect(try Self.alarms(receiver, device: "locked-cam").isEmpty)

        #expect(try await daemon.stop() == 0)
        #expect(camera.figures.unsubscribed == 1, "\(camera.figures)")
    }
}
