import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// Hikvision cameras and NVRs through the built daemon, both directions: the gateway holding
/// alertStream open against the simulator, and the camera pushing to the listening route.
/// Assertions are on what reaches the central receiver; nothing depends on how fast it got there.
@Suite("hikvision-camera end to end", .serialized)
struct HikvisionCameraEndToEndTests {
    static func camera(password: String = "hik12345", channels: Int = 1, heartbeat: Duration? = .milliseconds(200)) -> HikvisionCamera {
        var logger = Logger(label: "hik-cam-sim")
        logger.logLevel = .warning
        return HikvisionCamera(username: "admin", password: password, channels: channels, heartbeatInterval: heartbeat, logger: logger)
    }

    /// Device events (not health or clock reports) the centre holds for `device`.
    static func events(_ receiver: CentralReceiver, device: String) throws -> [Event] {
        try receiver.deviceEvents(from: device)
    }

    static func streamDevice(_ id: String, port: Int, options: String) -> String {
        """
          - id: \(id)
            driver: hikvision-camera
            vendor: hikvision
            type: camera
            time_zone: Asia/Shanghai
            address: 127.0.0.1:\(port)
            auth: {username: admin, password: hik12345, scheme: digest}
            options: {mode: stream, \(options)}

        """
    }

    @Test("alertStream: repeats are one start, stops, quiet stop, heartbeats are not events, garbage and lying lengths survived, stall reconnects, wrong password without a retry storm")
    func alertStream() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let cam = Self.camera()
        let nvr = Self.camera(channels: 4, heartbeat: nil)
        let locked = Self.camera(password: "not-the-gateways")
        var servers: [Task<Void, any Error>] = []
        for sim in [cam, nvr, locked] { servers.append(Task { try await sim.run() }) }
        defer { for server in servers { server.cancel() } }
        let camPort = try await cam.waitUntilRunning()
        let nvrPort = try await nvr.waitUntilRunning()
        let lockedPort = try await locked.waitUntilRunning()
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extraDevices = Self.streamDevice("cam", port: camPort, options: "quiet_seconds: \"120\"")
            + Self.streamDevice("nvr", port: nvrPort, options: "quiet_seconds: \"3\", stall_seconds: \"2\", reconnect_initial_seconds: \"0.2\", reconnect_max_seconds: \"2\"")
            + Self.streamDevice("locked", port: lockedPort, options: "auth_retry_seconds: \"600\"")
        let (daemon, _, _) = try await DaemonProcess.start(configPath: try site.write())
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(20)) { cam.openStreams > 0 && nvr.openStreams > 0 }, "\(daemon.log.suffix(2000))")
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(20)) { cam.figures.heartbeatsSent >= 3 })

        // Intrusion repeated five times, then ended; IO alarm after garbage, a truncated part and lying lengths.
        let intrusion = HikvisionCamera.Alert(eventType: "fielddetection", channel: 1, namespace: 1)
        for _ in 0..<5 { cam.fire(intrusion) }
        // A malformed offset, continued by two `duration` notifications, then ended.
        let line = HikvisionCamera.Alert(eventType: "linedetection", channel: 1, dateTime: "2025-03-14T11:47:1500:00", namespace: nil)
        cam.fire(line, format: .xml)
        let duration = HikvisionCamera.Alert(eventType: "duration", channel: 1, relationEvent: "linedetection")
        cam.fire(duration)
        cam.fire(duration)
        cam.sendRaw(Array("\r\nthis is not a part\r\n".utf8))
        cam.sendRaw(Array(cam.part("<EventNotificationAlert><eventType>VMD</eventTy", length: 46).readableBytesView))
        let io = HikvisionCamera.Alert(eventType: "IO", channel: 1, ioPort: 2)
        let ioXML = cam.xml(io)
        cam.sendRaw(Array(cam.part(ioXML, length: ioXML.utf8.count + 300).readableBytesView))  // too long: the boundary ends it
        cam.fire(HikvisionCamera.Alert(eventType: "VMD", channel: 1), format: .json)
        var endIntrusion = intrusion
        endIntrusion.active = false
        cam.fire(endIntrusion)
        var endLine = line
        endLine.active = false
        endLine.dateTime = nil
        cam.fire(endLine)

        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            let events = try Self.events(receiver, device: "cam")
            return events.filter { $0.state == .stop }.count >= 2 && events.contains { $0.kind == .alarmInput } && events.contains { $0.kind == .cameraMotion }
        }, "\(daemon.log.suffix(3000))")
        let events = try Self.events(receiver, device: "cam")
        let intrusions = events.filter { $0.kind == .cameraIntrusion }
        #expect(intrusions.filter { $0.state == .start }.count == 1, "\(intrusions.map { "\($0.state.map(\.rawValue) ?? "-")" })")
        #expect(intrusions.filter { $0.state == .stop }.count == 1)
        let start = intrusions.first { $0.state == .start }
        let stop = intrusions.first { $0.state == .stop }
        #expect(start?.priority == .alarm && start?.point == "channel-1" && start?.attributes?["code"] == .string("fielddetection"))
        #expect(stop?.alarm?.id == start?.alarm?.id && stop?.alarm?.stopReason == .device)
        let lines = events.filter { $0.kind == .cameraLineCrossing }
        #expect(lines.filter { $0.state == .start }.count == 1, "duration continued the alarm")
        #expect(lines.first { $0.state == .start }?.timeSource == .gateway)
        #expect(lines.first { $0.state == .start }?.timeReason?.contains("malformed UTC offset") == true)
        #expect(lines.first { $0.state == .start }?.source.deviceTime == "2025-03-14T11:47:1500:00")
        let ioEvent = events.first { $0.kind == .alarmInput }
        #expect(ioEvent?.priority == .alarm && ioEvent?.point == "io-2" && ioEvent?.state == .start)
        #expect(events.first { $0.kind == .cameraMotion }?.priority == .telemetry)
        // Every keep-alive was a videoloss part; none became an event.
        #expect(!events.contains { $0.kind == .cameraVideoLoss })
        #expect(cam.figures.streamsOpened == 1, "garbage and broken parts did not cost the stream")

        // An alarm held the NVR way (repeated every second) on the camera whose quiet time is long: one start, one stop.
        let tamper = HikvisionCamera.Alert(eventType: "tamperdetection", channel: 1)
        let sentBefore = cam.figures.alertsSent
        cam.hold(tamper)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { cam.figures.alertsSent >= sentBefore + 4 })
        cam.release(tamper)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            try Self.events(receiver, device: "cam").contains { $0.kind == .cameraTamper && $0.state == .stop }
        })
        let tampers = try Self.events(receiver, device: "cam").filter { $0.kind == .cameraTamper }
        #expect(tampers.map(\.state) == [.start, .stop] || tampers.map(\.state) == [.stop, .start], "\(tampers.map(\.state))")
        #expect(tampers.allSatisfy { $0.priority == .alarm && $0.alarm?.id == tampers.first?.alarm?.id })

        // NVR: an alarm held on channel 3, repeated every second, then silence: a quiet stop; silence stalls the stream.
        let nvrAlarm = HikvisionCamera.Alert(eventType: "fielddetection", channel: 3)
        // The NVR sends no keep-alives: its stream stalls and is made again every few seconds, and a
        // repeat sent while none is open is lost, as with a real one. Held until one got through.
        nvr.hold(nvrAlarm)
        #expect(await eventually(timeout: .seconds(90), poll: .milliseconds(50)) {
            try Self.events(receiver, device: "nvr").contains { $0.state == .start }
        }, "\(daemon.log.suffix(2000))")
        nvr.release(nvrAlarm, sayInactive: false)
        #expect(await eventually(timeout: .seconds(90), poll: .milliseconds(50)) {
            try Self.events(receiver, device: "nvr").contains { $0.state == .stop && $0.alarm?.stopReason == .quiet }
        }, "\(daemon.log.suffix(2000))")
        let nvrEvents = try Self.events(receiver, device: "nvr")
        #expect(nvrEvents.allSatisfy { $0.point == "channel-3" && $0.kind == .cameraIntrusion })
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { nvr.figures.streamsOpened >= 2 }, "no reconnect after a stall")
        #expect(daemon.log.contains("stalled"), "\(daemon.log.suffix(2000))")

        // Wrong password: one challenge, one authenticated attempt, then a long pause and a clear reason.
        #expect(locked.figures.refusedCredentials == 1, "\(locked.figures)")
        #expect(locked.figures.streamRequests == 2, "\(locked.figures)")
        #expect(daemon.log.contains("wrong password"), "\(daemon.log.suffix(2000))")
        #expect(try Self.events(receiver, device: "locked").isEmpty)
        #expect(try await daemon.stop() == 0)
        for sim in [cam, nvr, locked] { await sim.shutdown() }
    }

    @Test("listening mode: XML, JSON and multipart pushes become alarms; a repeat is no second start; heartBeat is no event; ANPR and garbage are kept aside")
    func listening() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.extraDevices = """
              - id: gate-cam
                driver: hikvision-camera
                vendor: hikvision
                type: camera
                allow_from: [127.0.0.1]
                options: {mode: listen, quiet_seconds: "600"}
            """
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let cam = Self.camera()
        let url = "http://127.0.0.1:\(ingest)/v1/hikvision-camera/gate-cam"
        let intrusion = HikvisionCamera.Alert(eventType: "fielddetection", channel: 2, namespace: 2)
        #expect(await cam.push([intrusion, intrusion], to: url, format: .xml) == [200, 200])
        #expect(await cam.push([HikvisionCamera.Alert(eventType: "IO", ioPort: 1)], to: url, format: .json) == [200])
        #expect(await cam.push([HikvisionCamera.Alert(eventType: "linedetection", channel: 1)], to: url, format: .multipart) == [200])
        let heartbeat = #"{"ipAddress":"10.255.255.1","eventType":"heartBeat","dateTime":"2025-03-14T18:05:41+08:00","eventState":"active"}"#
        #expect(await cam.post(Array(heartbeat.utf8), contentType: "application/json", to: url) == 200)
        #expect(await cam.post(Array("<EventNotificationAlert><eventType>VMD".utf8), contentType: "application/xml", to: url) == 422)
        #expect(await cam.post(Array(cam.xml(.init(eventType: "ANPR")).utf8), contentType: "application/xml", to: url) == 200)
        #expect(await cam.push([intrusion], to: "http://127.0.0.1:\(ingest)/v1/hikvision-camera/nobody", format: .xml) == [404])
        var end = intrusion
        end.active = false
        #expect(await cam.push([end], to: url, format: .xml) == [200])
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            try Self.events(receiver, device: "gate-cam").count >= 4
        }, "\(daemon.log.suffix(2000))")
        let events = try Self.events(receiver, device: "gate-cam")
        let intrusions = events.filter { $0.kind == .cameraIntrusion }
        #expect(intrusions.map(\.state) .sorted { ($0?.rawValue ?? "") < ($1?.rawValue ?? "") } == [.start, .stop])
        #expect(intrusions.allSatisfy { $0.point == "channel-2" && $0.priority == .alarm })
        #expect(events.first { $0.kind == .alarmInput }?.point == "io-1")
        #expect(events.first { $0.kind == .alarmInput }?.priority == .alarm)
        #expect(events.first { $0.kind == .cameraLineCrossing }?.attributes?["pictures"] == .number(1))
        #expect(events.count == 4, "\(events.map(\.kind))")
        #expect(try await daemon.stop() == 0)
        await cam.shutdown()
    }
}
