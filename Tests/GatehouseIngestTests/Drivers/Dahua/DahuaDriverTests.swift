import Foundation
@testable import GatehouseCore
import GatehouseProfiles
import GatehouseSinks
import GatehouseQueue
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseIngest

/// Code → kind, Start/Stop through the tracker, plates like `dahua-itc`, the RPC envelope,
/// options; and the attach client against the simulator on an injected clock.
@Suite("dahua driver", .serialized)
struct DahuaDriverTests {
    static let adapters = repositoryRoot.appendingPathComponent("adapters").path

    static func device(driver: String = "dahua", options: String = "{mode: push}") throws -> DeviceConfig {
        let yaml = """
            site: t
            adapters_directory: \(adapters)
            devices:
              - id: cam
                driver: \(driver)
                type: camera
                time_zone: Asia/Shanghai
                options: \(options)
            sinks:
              - {name: out, type: file, path: /tmp/unused.ndjson}
            """
        let config = try ConfigLoader.parse(
            yaml, file: "t.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
        return try #require(config.devices.first)
    }

    static func mapper(_ device: DeviceConfig) -> DahuaEventMapper { DahuaDriver().mapper(for: device) }

    static func event(_ code: String, _ action: String = "Pulse", index: Int? = 0, data: String? = nil) throws -> DahuaEvent {
        let json = try data.map { try JSONValue.parse(Array($0.utf8)) }
        return DahuaEvent(code: code, action: action, index: index, data: json, raw: Array(code.utf8))
    }

    static let now = Timestamp(milliseconds: 1_750_000_000_000)

    static func drafts(_ events: [DahuaEvent], device: DeviceConfig? = nil) throws -> [EventDraft] {
        let mapper = mapper(try device ?? Self.device())
        var tracker = AlarmTracker(deviceID: "cam")
        return try events.flatMap { try mapper.drafts(for: $0, tracker: &tracker, now: now) }
    }

    @Test("codes map to the kinds of spec 0003; unknown codes are vendor.other with the code kept", arguments: [
        ("VideoMotion", nil, EventKind.cameraMotion), ("CrossLineDetection", nil, .cameraLineCrossing),
        ("CrossRegionDetection", nil, .cameraIntrusion), ("CrossRegionDetection", #"{"Action":"Appear"}"#, .cameraRegionEntrance),
        ("CrossRegionDetection", #"{"Action":"Enter"}"#, .cameraRegionEntrance), ("CrossRegionDetection", #"{"Action":"Leave"}"#, .cameraRegionExit),
        ("CrossRegionDetection", #"{"Action":"Disappear"}"#, .cameraRegionExit), ("CrossRegionDetection", #"{"Action":"Inside"}"#, .cameraIntrusion),
        ("VideoLoss", nil, .cameraVideoLoss), ("VideoBlind", nil, .cameraTamper), ("AlarmLocal", nil, .alarmInput),
        ("SceneChange", nil, .cameraSceneChange), ("VideoUnFocus", nil, .cameraDefocus), ("WanderDetection", nil, .cameraLoitering),
        ("LeftDetection", nil, .cameraObjectLeft), ("TakenAwayDetection", nil, .cameraObjectRemoved), ("FaceDetection", nil, .cameraFace),
        ("SmartMotionHuman", nil, .cameraPerson), ("AudioMutation", nil, .cameraAudio), ("StorageNotExist", nil, .deviceStorageError),
        ("StorageFailure", nil, .deviceStorageError), ("StorageLowSpace", nil, .deviceStorageError), ("BreakIn", nil, .doorForced),
        ("DoorNotClosed", nil, .doorHeldOpen), ("Duress", nil, .alarmDuress), ("ChassisIntruded", nil, .alarmTamper),
        ("Reboot", nil, .deviceRebooted), ("Invite", nil, .intercomCall), ("DoorStatus", #"{"Status":"Open"}"#, .doorOpened),
        ("DoorStatus", #"{"Status":"Close"}"#, .doorClosed), ("NTPAdjustTime", nil, .vendorOther), ("FancyNewCode", nil, .vendorOther),
    ] as [(String, String?, EventKind)])
    func kinds(code: String, data: String?, kind: EventKind) throws {
        let drafts = try Self.drafts([Self.event(code, data: data)])
        #expect(drafts.map(\.kind) == [kind])
        #expect(drafts.first?.attributes?["code"] == .string(code))
        #expect(drafts.first?.state == nil, "a Pulse is an event at an instant")
    }

    @Test("Start, repeated Start, Stop: one start and one stop with the same alarm id; 0-based index → 1-based point")
    func startStop() throws {
        let drafts = try Self.drafts([
            Self.event("VideoMotion", "Start", index: 2), Self.event("VideoMotion", "Start", index: 2), Self.event("VideoMotion", "Stop", index: 2),
            Self.event("AlarmLocal", "Start", index: 0), Self.event("AlarmLocal", "Stop", index: 0),
        ])
        #expect(drafts.map(\.state) == [.start, .stop, .start, .stop])
        #expect(drafts.map(\.point) == ["channel-3", "channel-3", "input-1", "input-1"])
        #expect(drafts[0].alarm?.id == drafts[1].alarm?.id)
        #expect(drafts[1].alarm?.stopReason == .device)
        #expect(drafts[0].dedupKey == "alarm:\(drafts[0].alarm?.id ?? ""):start")
        #expect(drafts[2].kind == .alarmInput && drafts[2].kind.defaultPriority == .alarm)
        #expect(drafts[0].attributes?["channel"] == .number(3))
    }

    @Test("a quiet alarm (no Stop) closes after quiet_seconds on the clock")
    func quietStop() throws {
        let device = try Self.device(options: "{mode: push, quiet_seconds: 60}")
        let alarms = DahuaAlarms()
        let mapper = Self.mapper(device)
        let videoLoss = try Self.event("VideoLoss", "Start")
        let start = try alarms.withTracker(device: device) { tracker throws(PayloadError) in
            try mapper.drafts(for: videoLoss, tracker: &tracker, now: Self.now)
        }
        #expect(start.map(\.state) == [.start])
        #expect(alarms.expire(device: "cam", now: Timestamp(milliseconds: Self.now.milliseconds + 59_000)).isEmpty)
        let stops = alarms.expire(device: "cam", now: Timestamp(milliseconds: Self.now.milliseconds + 60_000))
        #expect(stops.map(\.state) == [.stop])
        #expect(stops.first?.alarm.stopReason == .quiet)
    }

    @Test("the notes' VTO card swipe: access.granted, person subject, door-1, direction in; remote open and refusals")
    func access() throws {
        let drafts = try Self.drafts([
            Self.event("AccessControl", data: #"{"UserID":"1502","CardNo":"8A3F21C4","Name":"张伟","Door":0,"Method":2,"Status":1,"ErrorCode":0,"Type":"Entry","ReaderID":"1","UTC":1741976455}"#),
            Self.event("AccessControl", data: #"{"CardNo":"8A3F21C4","Door":1,"Method":2,"Status":0,"ErrorCode":16,"Type":"Exit"}"#),
            Self.event("AccessControl", data: #"{"Door":0,"Method":5,"Status":1}"#),
        ])
        #expect(drafts.map(\.kind) == [.accessGranted, .accessDenied, .doorRemoteOpen])
        #expect(drafts[0].subject == Subject(type: .person, value: "1502"))
        #expect(drafts[0].result == .granted && drafts[0].direction == .in && drafts[0].point == "door-1")
        #expect(drafts[0].attributes?["method"] == .string("card"))
        // Nothing personal outside the subject, which the privacy policy treats.
        #expect(drafts[0].attributes?.values.contains { $0 == .string("张伟") || $0 == .string("8A3F21C4") } == false)
        // UTC on this firmware is the local wall clock written as epoch seconds.
        #expect(drafts[0].occurredAt == Timestamp(milliseconds: (1_741_976_455 - 8 * 3600) * 1000))
        #expect(drafts[1].subject == Subject(type: .card, value: "8A3F21C4"))
        #expect(drafts[1].result == .denied && drafts[1].direction == .out && drafts[1].point == "door-2")
        #expect(drafts[1].attributes?["errorCode"] == .number(16))
        #expect(drafts[2].attributes?["method"] == .string("remote"))
    }

    @Test("a plate read maps exactly as the dahua-itc profile maps the same record")
    func platesLikeDahuaITC() throws {
        let sample = try String(contentsOfFile: Self.adapters + "/dahua-itc/samples/entry-realutc.json", encoding: .utf8)
        let profileDevice = try Self.device(driver: "profile", options: "{profile: dahua-itc}")
        let expected = try ProfileDriver().decode(RawPayload(body: Array(sample.utf8), contentType: "application/json", route: "/v1/push/dahua-itc/cam"), device: profileDevice)
        // The same record as the stream writes it.
        guard case .object(let root) = try JSONValue.parse(Array(sample.utf8)), case .array(let events)? = root["Events"],
            case .object(let record)? = events.first
        else { throw PayloadError("sample shape") }
        let streamed = try Self.drafts([DahuaEvent(code: "TrafficJunction", action: "Pulse", index: 0, data: record["Data"], raw: [])])
        #expect(streamed == expected)
        #expect(streamed.first?.kind == .vehicleDetected)
        #expect(streamed.first?.subject?.value == "粤BA1234")
        #expect(streamed.first?.occurredAt == DeviceTimeParser.parseRFC3339("2025-03-14T10:20:05.250Z"))
        #expect(streamed.first?.point == "lane-1")
        #expect(streamed.first?.dedupKey == "TrafficJunction:88123")
    }

    @Test("the RPC envelope: eventList entries map; a bad entry is kept apart; keep-alives and garbage")
    func envelope() throws {
        let body = """
            {"method":"client.notifyEventStream","params":{"SID":513,"eventList":[
             {"Code":"TrafficJunction","Action":"Pulse","Index":0,"Data":{"GroupID":88001,"TrafficCar":{"PlateNumber":"粤BA1234","Lane":1}}},
             {"Code":"VideoMotion","Action":"Start","Index":1,"Data":{}}]},"id":42,"session":"3f1b0c"}
            """
        let parsed = try DahuaPush.parse(Array(body.utf8), contentType: "application/json")
        #expect(parsed.id == .number(42))
        #expect(DahuaStreamParserTests.summary(parsed.items) == ["TrafficJunction/Pulse/0+data", "VideoMotion/Start/1+data"])
        let mixed = try DahuaPush.parse(Array(#"{"method":"client.notifyEventStream","params":{"eventList":[{"Action":"Start"},{"Code":"AlarmLocal","Action":"Start","Index":-2}]}}"#.utf8), contentType: nil)
        #expect(DahuaStreamParserTests.summary(mixed.items).allSatisfy { $0.hasPrefix("malformed") })
        // The HTTP-upload shape and the stream's text shape are taken too.
        #expect(try DahuaPush.parse(Array(#"{"Events":[{"Code":"BreakIn","Action":"Pulse","Index":0}]}"#.utf8), contentType: nil).items.count == 1)
        #expect(try DahuaPush.parse(Array("Code=BreakIn;action=Pulse;index=0\r\n".utf8), contentType: "text/plain").items.count == 1)
        #expect(try DahuaPush.parse(Array(#"{"method":"client.keepAlive","id":3}"#.utf8), contentType: nil).items.isEmpty)
        #expect(throws: PayloadError.self) { try DahuaPush.parse(Array("{\"method\":".utf8), contentType: nil) }
        #expect(throws: PayloadError.self) { try DahuaPush.parse(Array("hello".utf8), contentType: nil) }
        #expect(throws: PayloadError.self) { try DahuaPush.parse(Array(#"{"params":{}}"#.utf8), contentType: nil) }
    }

    @Test("options: kinds overrides the table; attach needs address and credentials")
    func options() throws {
        let device = try Self.device(options: "{mode: push, kinds: {VideoMotion: camera.intrusion, Gate7: alarm.input}}")
        #expect(try Self.drafts([Self.event("VideoMotion"), Self.event("Gate7")], device: device).map(\.kind) == [.cameraIntrusion, .alarmInput])
        #expect(DahuaDriver().validate(device: device).isEmpty)
        let attach = try Self.device(options: "{mode: attach}")
        let attachProblems = DahuaDriver().validate(device: attach)
        #expect(attachProblems.contains { $0.hasPrefix("address: required") } && attachProblems.contains { $0.hasPrefix("auth: required") })
    }
}
