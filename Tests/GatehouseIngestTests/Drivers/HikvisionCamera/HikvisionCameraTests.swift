import Foundation
@testable import GatehouseCore
import GatehouseProfiles
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseIngest

/// The alert codec (XML in every namespace, JSON, multipart), `dateTime` offsets, the kind
/// table, the alertStream splitter against broken framing, the tracker behind both modes, and
/// the reconnect backoff.
@Suite("hikvision-camera driver")
struct HikvisionCameraTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai") ?? .gmt

    static func xml(_ type: String, state: String = "active", extra: String = "", namespace: String? = "http://www.hikvision.com/ver20/XMLSchema", prolog: Bool = true, time: String = "2025-03-14T18:05:41+08:00") -> String {
        let ns = namespace.map { " xmlns=\"\($0)\"" } ?? ""
        return (prolog ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : "")
            + "<EventNotificationAlert version=\"2.0\"\(ns)>\n<ipAddress>192.168.10.61</ipAddress><channelID>1</channelID>"
            + "<dateTime>\(time)</dateTime><activePostCount>1</activePostCount><eventType>\(type)</eventType>"
            + "<eventState>\(state)</eventState><eventDescription>\(type) alarm</eventDescription>\(extra)\n</EventNotificationAlert>"
    }

    static func device(mode: String = "stream", quiet: Double = 5) -> DeviceConfig {
        DeviceConfig(
            id: "cam", driver: "hikvision-camera", vendor: "hikvision", type: .camera, timeZone: shanghai, allowFrom: [],
            offlineAfterSeconds: 300, enabled: true, options: DeviceOptions(configured: ["mode": .string(mode), "quiet_seconds": .double(quiet)], defaults: [:]))
    }

    // MARK: - Codec

    @Test("XML with each namespace, a prefix, or none, with or without a prolog, reads the same", arguments: [
        "http://www.hikvision.com/ver20/XMLSchema", "http://www.isapi.org/ver20/XMLSchema", "http://www.std-cgi.com/ver20/XMLSchema",
    ])
    func namespaces(namespace: String) throws {
        let io = "<inputIOPortID>2</inputIOPortID>"
        let variants = [
            Self.xml("IO", extra: io, namespace: namespace),
            Self.xml("IO", extra: io, namespace: namespace, prolog: false),
            Self.xml("IO", extra: io, namespace: nil),
            Self.xml("IO", extra: io, namespace: namespace).replacingOccurrences(of: "<EventNotificationAlert version=\"2.0\" xmlns=", with: "<hik:EventNotificationAlert version=\"2.0\" xmlns:hik=")
                .replacingOccurrences(of: "</EventNotificationAlert>", with: "</hik:EventNotificationAlert>"),
        ]
        for text in variants {
            let alert = try HikvisionCameraAlert.parse(Array(text.utf8))
            #expect(alert.eventType == "IO" && alert.eventState == "active" && alert.ioPort == 2 && alert.channel == 1, "\(text)")
        }
    }

    @Test("JSON alerts, bare or wrapped in EventNotificationAlert; NVR dynChannelID wins over channelID")
    func json() throws {
        let bare = #"{"ipAddress":"192.168.10.61","channelID":33,"dynChannelID":"3","dateTime":"2025-03-14T18:05:41+08:00","eventType":"fielddetection","eventState":"active"}"#
        let alert = try HikvisionCameraAlert.parse(Array(bare.utf8))
        #expect(alert.eventType == "fielddetection" && alert.channel == 3)
        let wrapped = #"{"EventNotificationAlert":{"eventType":"VMD","eventState":"inactive","channelID":2}}"#
        let inner = try HikvisionCameraAlert.parse(Array(wrapped.utf8))
        #expect(inner.eventType == "VMD" && !inner.isActive && inner.channel == 2)
    }

    @Test("garbage, truncated and shapeless alerts are refused with a reason, never a crash", arguments: [
        "", "   ", "not xml", "<EventNotificationAlert><eventType>VMD</eventType>", "{\"eventType\":", "<Other><eventType>VMD</eventType></Other>",
        "<EventNotificationAlert><channelID>1</channelID></EventNotificationAlert>", "[1,2]", "\u{0}\u{1}\u{2}",
    ])
    func garbage(text: String) {
        #expect(throws: PayloadError.self) { try HikvisionCameraAlert.parse(Array(text.utf8)) }
    }

    @Test("dateTime: offsets incl. half hours are read; malformed and sign-less offsets are flagged, not guessed")
    func times() {
        let (t1, i1) = HikvisionCameraTime.read("2025-03-14T18:05:41+08:00", zone: Self.shanghai)
        #expect(t1?.rfc3339 == "2025-03-14T10:05:41.000Z" && i1 == nil)
        let (t2, i2) = HikvisionCameraTime.read("2025-03-14T18:05:41+05:30", zone: Self.shanghai)
        #expect(t2?.rfc3339 == "2025-03-14T12:35:41.000Z" && i2 == nil)
        let (t3, _) = HikvisionCameraTime.read("2025-03-14T18:05:41-03:30", zone: Self.shanghai)
        #expect(t3?.rfc3339 == "2025-03-14T21:35:41.000Z")
        for bad in ["2025-03-14T11:47:1500:00", "2025-03-14T11:47:15 08:00", "2025-03-14T11:47:1508:00", "2025-03-14T11:47:15+8"] {
            let (time, issue) = HikvisionCameraTime.read(bad, zone: Self.shanghai)
            #expect(time == nil && issue?.contains("malformed UTC offset") == true, "\(bad): \(issue ?? "nil")")
        }
        let (t4, i4) = HikvisionCameraTime.read("yesterday", zone: Self.shanghai)
        #expect(t4 == nil && i4?.contains("not a time") == true)
        // No offset at all is local time in the device's zone.
        #expect(HikvisionCameraTime.read("2025-03-14T18:05:41", zone: Self.shanghai).time?.rfc3339 == "2025-03-14T10:05:41.000Z")
    }

    @Test("eventType → kind follows spec 0003; unknown types are vendor.other; options.kinds extends and overrides")
    func kinds() {
        let expected: [String: EventKind] = [
            "VMD": .cameraMotion, "linedetection": .cameraLineCrossing, "fielddetection": .cameraIntrusion,
            "regionEntrance": .cameraRegionEntrance, "regionExiting": .cameraRegionExit, "tamperdetection": .cameraTamper,
            "shelteralarm": .cameraTamper, "videoloss": .cameraVideoLoss, "IO": .alarmInput, "PIR": .alarmPIR,
            "scenechangedetection": .cameraSceneChange, "facedetection": .cameraFace, "loitering": .cameraLoitering,
            "unattendedBaggage": .cameraObjectLeft, "attendedBaggage": .cameraObjectRemoved, "defocus": .cameraDefocus,
            "audioexception": .cameraAudio, "diskfull": .deviceStorageError, "thermometry": .vendorOther,
        ]
        for (type, kind) in expected { #expect(HikvisionCameraKinds.kind(eventType: type) == kind, "\(type)") }
        #expect(HikvisionCameraKinds.kind(eventType: "targetDetection", targetType: "human") == .cameraPerson)
        var device = Self.device()
        device.options.configured["kinds"] = .kindTable([KindTableRow("thermometry", .alarmFire), KindTableRow("VMD", .cameraIntrusion)])
        let extra = HikvisionCameraOptions(device).kinds
        #expect(HikvisionCameraKinds.kind(eventType: "thermometry", extra: extra) == .alarmFire)
        #expect(HikvisionCameraKinds.kind(eventType: "vmd", extra: extra) == .cameraIntrusion)
        #expect(EventKind.cameraIntrusion.defaultPriority == .alarm && EventKind.alarmInput.defaultPriority == .alarm)
    }

    @Test("mapping: IO port and channel become points, vendor code kept, heartBeat and ANPR handled apart")
    func mapping() throws {
        let now = Timestamp(milliseconds: 1_750_000_000_000)
        let io = try HikvisionCameraAlert.parse(Array(Self.xml("IO", extra: "<inputIOPortID>2</inputIOPortID>").utf8))
        guard case .signal(let signal, let draft) = HikvisionCameraMapping.read(io, zone: Self.shanghai, extraKinds: [:], now: now) else {
            Issue.record("IO is not a signal")
            return
        }
        #expect(signal.kind == .alarmInput && signal.point == "io-2" && signal.edge == .active && draft.attributes?["code"] == .string("IO"))
        let malformed = try HikvisionCameraAlert.parse(Array(Self.xml("fielddetection", time: "2025-03-14T11:47:1500:00").utf8))
        guard case .signal(let s2, let d2) = HikvisionCameraMapping.read(malformed, zone: Self.shanghai, extraKinds: [:], now: now) else {
            Issue.record("fielddetection is not a signal")
            return
        }
        #expect(s2.point == "channel-1" && s2.at == now && d2.occurredAt == nil && d2.timeIssue?.contains("malformed") == true)
        #expect(d2.deviceTime == "2025-03-14T11:47:1500:00")
        let heartbeat = try HikvisionCameraAlert.parse(Array(#"{"eventType":"heartBeat","dateTime":"2025-03-14T18:05:41+08:00"}"#.utf8))
        #expect(HikvisionCameraMapping.read(heartbeat, zone: Self.shanghai, extraKinds: [:], now: now) == .heartbeat)
        let anpr = try HikvisionCameraAlert.parse(Array(Self.xml("ANPR").utf8))
        guard case .elsewhere(let reason) = HikvisionCameraMapping.read(anpr, zone: Self.shanghai, extraKinds: [:], now: now) else {
            Issue.record("ANPR is mapped here")
            return
        }
        #expect(reason.contains("hikvision-anpr"))
        let duration = try HikvisionCameraAlert.parse(Array(Self.xml("duration", state: "inactive", extra: "<DurationList><Duration><relationEvent>linedetection</relationEvent></Duration></DurationList>").utf8))
        guard case .signal(let s3, _) = HikvisionCameraMapping.read(duration, zone: Self.shanghai, extraKinds: [:], now: now) else {
            Issue.record("duration is not a signal")
            return
        }
        #expect(s3.kind == .cameraLineCrossing && s3.code == "linedetection" && s3.edge == .active)
    }

    @Test("listening multipart: the alert part and its pictures; bare bodies; truncated multipart refused")
    func pushBodies() throws {
        let document = Self.xml("fielddetection")
        var body = Array("--boundary\r\nContent-Disposition: form-data; name=\"fielddetection.xml\"\r\nContent-Type: application/xml\r\n\r\n\(document)\r\n".utf8)
        body += Array("--boundary\r\nContent-Disposition: form-data; name=\"detectionPicture.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
        body += [0xFF, 0xD8, 0x42, 0xFF, 0xD9] + Array("\r\n--boundary--\r\n".utf8)
        let push = try HikvisionCameraPush.parse(body, contentType: "multipart/form-data; boundary=boundary")
        #expect(push.alert.eventType == "fielddetection" && push.pictures.count == 1 && push.pictures[0].body.count == 5)
        let bare = try HikvisionCameraPush.parse(Array(document.utf8), contentType: "multipart/form-data; boundary=boundary")
        #expect(bare.alert.eventType == "fielddetection" && bare.pictures.isEmpty)
        #expect(throws: PayloadError.self) { try HikvisionCameraPush.parse(Array(body.dropLast(20)), contentType: "multipart/form-data; boundary=boundary") }
    }

    @Test("quarantine replay maps a kept alert as an instant; ANPR stays refused with where it belongs")
    func replay() throws {
        let driver = HikvisionCameraDriver()
        let drafts = try driver.decode(RawPayload(body: Array(Self.xml("fielddetection").utf8), contentType: "application/xml", route: nil), device: Self.device(mode: "listen"))
        #expect(drafts.count == 1 && drafts[0].kind == .cameraIntrusion && drafts[0].state == nil && drafts[0].point == "channel-1")
        #expect(throws: PayloadError.self) {
            try driver.decode(RawPayload(body: Array(Self.xml("ANPR").utf8), contentType: "application/xml", route: nil), device: Self.device(mode: "listen"))
        }
    }

    // MARK: - alertStream framing

    static func part(_ body: String, length: Int? = nil, type: String = "application/xml; charset=\"UTF-8\"") -> [UInt8] {
        let header = length.map { "Content-Length: \($0)\r\n" } ?? ""
        return Array("--boundary\r\nContent-Type: \(type)\r\n\(header)\r\n\(body)\r\n".utf8)
    }

    static func bodies(_ outputs: [HikvisionAlertStreamParser.Output]) -> [String] {
        outputs.compactMap { if case .part(let p) = $0 { String(decoding: p.body, as: UTF8.self) } else { nil } }
    }

    @Test("honest parts come out at once, one byte at a time or all together")
    func streamHonest() {
        let a = Self.xml("VMD"), b = Self.xml("IO")
        let stream = Self.part(a, length: a.utf8.count) + Self.part(b, length: b.utf8.count)
        var whole = HikvisionAlertStreamParser(boundary: "boundary", maxPartBytes: 1 << 20)
        #expect(Self.bodies(whole.feed(stream)) == [a, b])
        var trickle = HikvisionAlertStreamParser(boundary: "boundary", maxPartBytes: 1 << 20)
        var seen: [String] = []
        for byte in stream { seen += Self.bodies(trickle.feed([byte])) }
        #expect(seen == [a, b])
        #expect(trickle.bufferedBytes < 64)
    }

    @Test("missing, too long and too short Content-Length; garbage between parts; closing boundary")
    func streamLying() {
        let a = Self.xml("VMD"), b = Self.xml("IO"), c = #"{"eventType":"PIR","eventState":"active"}"#
        var parser = HikvisionAlertStreamParser(boundary: "boundary", maxPartBytes: 1 << 20)
        // No length: complete when the document closes, not when the next part comes.
        #expect(Self.bodies(parser.feed(Self.part(a))) == [a])
        #expect(Self.bodies(parser.feed(Array("garbage between parts\r\n\r\n".utf8) + Self.part(c, type: "application/json"))) == [c])
        #expect(parser.skippedBytes > 0)
        // Too long: the next boundary ends it.
        var outputs = parser.feed(Self.part(b, length: b.utf8.count + 500))
        #expect(Self.bodies(outputs).isEmpty)
        outputs = parser.feed(Self.part(a, length: a.utf8.count))
        #expect(Self.bodies(outputs) == [b, a])
        // Too short: the cut part is reported whole-or-not by the alert parser; the stream goes on.
        outputs = parser.feed(Self.part(b, length: 30) + Self.part(a, length: a.utf8.count))
        let cut = Self.bodies(outputs)
        #expect(cut.count == 2 && cut[1] == a && cut[0].count == 30)
        #expect(throws: PayloadError.self) { try HikvisionCameraAlert.parse(Array(cut[0].utf8)) }
        #expect(parser.feed(Array("--boundary--\r\n".utf8)) == [.end])
    }

    @Test("a part larger than max_part_bytes is skipped with a reason; the buffer stays capped")
    func streamOversized() {
        var parser = HikvisionAlertStreamParser(boundary: "boundary", maxPartBytes: 4096)
        var outputs = parser.feed(Array("--boundary\r\nContent-Type: application/xml\r\n\r\n<EventNotificationAlert>".utf8))
        for _ in 0..<100 {
            outputs += parser.feed(Array(repeating: UInt8(ascii: "x"), count: 1000))
            #expect(parser.bufferedBytes <= 4096 + 1000)
        }
        #expect(outputs.contains { if case .malformed(let reason, _) = $0 { reason.contains("max_part_bytes") } else { false } })
        let a = Self.xml("VMD")
        #expect(Self.bodies(parser.feed(Array("\r\n".utf8) + Self.part(a, length: a.utf8.count))) == [a])
        // Endless garbage with no boundary never grows the buffer.
        var garbage = HikvisionAlertStreamParser(boundary: "boundary", maxPartBytes: 4096)
        for _ in 0..<100 { _ = garbage.feed(Array(repeating: UInt8(ascii: "z"), count: 1000)) }
        #expect(garbage.bufferedBytes < 64)
    }

    @Test("boundary from Content-Type, quoted or not")
    func boundary() {
        #expect(HikvisionAlertStreamParser.boundary(contentType: "multipart/mixed; boundary=boundary") == "boundary")
        #expect(HikvisionAlertStreamParser.boundary(contentType: "multipart/mixed;boundary=\"MIME_boundary\"") == "MIME_boundary")
        #expect(HikvisionAlertStreamParser.boundary(contentType: "multipart/mixed") == nil)
    }

    // MARK: - Alarms and backoff

    @Test("repeats are one start; inactive stops; quiet stop on the clock; videoloss inactive is a keep-alive")
    func alarms() throws {
        let store = HikvisionCameraAlarms()
        let device = Self.device(quiet: 3)
        store.configure(device: device, quiet: .seconds(3))
        let clock = ManualClock()
        func signal(_ kind: EventKind, _ edge: AlarmSignal.Edge, point: String = "channel-1", code: String = "fielddetection") -> AlarmSignal {
            AlarmSignal(kind: kind, point: point, code: code, edge: edge, at: clock.now)
        }
        #expect(store.observe(signal(.cameraIntrusion, .active), device: device, now: clock.now)?.state == .start)
        for _ in 0..<5 {
            clock.advance(by: .seconds(1))
            #expect(store.observe(signal(.cameraIntrusion, .active), device: device, now: clock.now) == nil)
            #expect(store.expire(device: device, now: clock.now).isEmpty)
        }
        #expect(store.observe(signal(.cameraIntrusion, .inactive), device: device, now: clock.now)?.alarm.stopReason == .device)
        // Keep-alives: no event, ever, while no video loss is open.
        for _ in 0..<3 { #expect(store.observe(signal(.cameraVideoLoss, .inactive, code: "videoloss"), device: device, now: clock.now) == nil) }
        #expect(store.observe(signal(.cameraVideoLoss, .active, code: "videoloss"), device: device, now: clock.now)?.state == .start)
        #expect(store.observe(signal(.cameraVideoLoss, .inactive, code: "videoloss"), device: device, now: clock.now)?.state == .stop)
        // Quiet: an IO alarm that is never said to end closes `quiet` after its last repeat.
        #expect(store.observe(signal(.alarmInput, .active, point: "io-1", code: "IO"), device: device, now: clock.now)?.state == .start)
        clock.advance(by: .seconds(2))
        #expect(store.expire(device: device, now: clock.now).isEmpty)
        clock.advance(by: .seconds(1))
        let quiet = store.expire(device: device, now: clock.now)
        #expect(quiet.count == 1 && quiet[0].alarm.stopReason == .quiet && quiet[0].draft.dedupKey?.hasSuffix(":stop") == true)
    }

    @Test("reconnect backoff doubles up to the cap, jittered between half and all of it")
    func backoff() {
        #expect(HikvisionAlertStreamClient.backoff(failures: 1, initial: 1, cap: 60, jitter: 1) == 1)
        #expect(HikvisionAlertStreamClient.backoff(failures: 4, initial: 1, cap: 60, jitter: 1) == 8)
        #expect(HikvisionAlertStreamClient.backoff(failures: 40, initial: 1, cap: 60, jitter: 1) == 60)
        #expect(HikvisionAlertStreamClient.backoff(failures: 40, initial: 1, cap: 60, jitter: 0.5) == 30)
        for _ in 0..<50 {
            let delay = HikvisionAlertStreamClient.backoff(failures: 3, initial: 1, cap: 60)
            #expect(delay >= 2 && delay <= 4)
        }
    }

    /// A camera simulator and an ingest fixture with one `hikvision-camera` device in stream mode on it.
    static func streamFixture(heartbeat: Duration?, options: String = "", clock: any DriverClock = SystemClock()) async throws -> (HikvisionCamera, Task<Void, any Error>, IngestFixture) {
        var logger = Logger(label: "hikvision-sim")
        logger.logLevel = .warning
        let camera = HikvisionCamera(heartbeatInterval: heartbeat, logger: logger)
        let server = Task { try await camera.run() }
        let port = try await camera.waitUntilRunning()
        let devices = """
              - id: cam
                driver: hikvision-camera
                type: camera
                address: 127.0.0.1:\(port)
                auth: {username: admin, password: hik12345, scheme: digest}
                options: {mode: stream\(options)}
            """
        let fixture = try IngestFixture(devices: devices, clock: clock)
        return (camera, server, fixture)
    }

    @Test("an alert from the alertStream is kept as the device's last payload; keep-alives do not replace it")
    func lastPayload() async throws {
        let (camera, server, fixture) = try await Self.streamFixture(heartbeat: .milliseconds(50))
        defer { server.cancel() }
        let device = try fixture.device("cam")
        let run = Task { try await HikvisionCameraDriver().run(device: device.config, context: fixture.context) }
        #expect(await eventually(timeout: .seconds(30)) { camera.openStreams > 0 })
        camera.fire(HikvisionCamera.Alert(eventType: "fielddetection", channel: 1))
        #expect(await eventually(timeout: .seconds(30)) { try await fixture.events().contains { $0.kind == .cameraIntrusion } })
        let heartbeats = camera.figures.heartbeatsSent
        #expect(await eventually(timeout: .seconds(30)) { camera.figures.heartbeatsSent >= heartbeats + 2 })
        let last = try #require(fixture.pipeline.lastPayload(of: "cam"))
        #expect(last.mapped && last.text.contains("fielddetection"), "\(last)")
        run.cancel()
        _ = try? await run.value
        await camera.shutdown()
        await fixture.finish()
    }

    @Test("alertStream stall on the injected clock: a silent stream is kept short of stall_seconds, then dropped with the reason and made again")
    func stall() async throws {
        let clock = ManualClock()
        let (camera, server, fixture) = try await Self.streamFixture(heartbeat: nil, options: ", stall_seconds: 3, reconnect_initial_seconds: 0.2", clock: clock)
        defer { server.cancel() }
        let device = try fixture.device("cam")
        let run = Task { try await HikvisionCameraDriver().run(device: device.config, context: fixture.context) }
        func offline() async throws -> [Event] { try await fixture.events().filter { $0.kind == .deviceOffline } }
        #expect(await eventually(timeout: .seconds(30)) { try await fixture.events().contains { $0.kind == .deviceOnline } })
        // The watchdog is the only timer while the stream is open: waiting for it to be armed
        // again after each step means each step's check has run.
        #expect(await eventually { clock.pendingTimers > 0 })
        for _ in 0..<11 {
            clock.advance(by: .milliseconds(250))
            #expect(await eventually { clock.pendingTimers > 0 })
        }
        // 2.75 s of silence on the clock: kept.
        #expect(try await offline().isEmpty)
        #expect(camera.figures.streamsOpened == 1)
        clock.advance(by: .milliseconds(250))
        #expect(await eventually { try await offline().count == 1 })
        let reason = try await offline().first?.attributes?["reason"]
        #expect(reason == .string("alertStream stalled: no byte for 3 s (stall_seconds); reconnecting"))
        // The reconnect waits its backoff (0.1–0.2 s) on the clock too.
        #expect(await eventually(timeout: .seconds(30)) {
            clock.advance(by: .milliseconds(100))
            return camera.figures.streamsOpened == 2
        })
        run.cancel()
        _ = try? await run.value
        await camera.shutdown()
        await fixture.finish()
    }

    @Test("options: stream needs an address and credentials; listen needs neither")
    func options() {
        let driver = HikvisionCameraDriver()
        var device = Self.device()
        let problems = driver.validate(device: device)
        #expect(problems.contains { $0.hasPrefix("address:") } && problems.contains { $0.hasPrefix("auth:") })
        device.address = "127.0.0.1:8000"
        device.auth = .digest(username: "admin", password: Secret(value: "x", origin: "test"))
        #expect(driver.validate(device: device).isEmpty)
        #expect(driver.validate(device: Self.device(mode: "listen")).isEmpty)
    }
}
