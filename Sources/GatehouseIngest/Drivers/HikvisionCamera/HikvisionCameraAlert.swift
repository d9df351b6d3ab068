import Foundation
import GatehouseCore
import GatehouseProfiles

/// One `EventNotificationAlert` from a Hikvision camera or NVR, read from XML (any of the three
/// schema namespaces, with or without a prolog) or JSON, with the fields the mapping needs.
/// Identity fields in the payload (`ipAddress`, `macAddress`) are kept as attributes only: the
/// device is the configured one, because the payload's address can be bogus (NAT, factory defaults).
struct HikvisionCameraAlert: Equatable {
    var eventType: String
    /// `active` / `inactive`; nil when the alert does not say.
    var eventState: String?
    var dateTime: String?
    /// `dynChannelID` when present (NVR IP channels), else `channelID`; 1-based as Hikvision counts.
    var channel: Int?
    /// `inputIOPortID` / `dynInputIOPortID` of an IO alarm.
    var ioPort: Int?
    var activePostCount: Int?
    var eventDescription: String?
    var uuid: String?
    /// For `eventType: duration`: the detector whose alarm this notification continues.
    var relationEvent: String?
    /// `targetType` of a smart event (`human`, `vehicle`).
    var targetType: String?
    var ipAddress: String?
    var macAddress: String?
    /// Whether the alert is the camera's keep-alive (`heartBeat`) rather than an event.
    var isHeartbeat: Bool { eventType.lowercased() == "heartbeat" }
    var isActive: Bool { (eventState ?? "active").lowercased() != "inactive" }

    /// The alert in an XML or JSON document, whichever the bytes are.
    static func parse(_ bytes: [UInt8]) throws(PayloadError) -> HikvisionCameraAlert {
        guard let first = bytes.first(where: { !($0 == 32 || $0 == 9 || $0 == 13 || $0 == 10 || $0 == 0xEF || $0 == 0xBB || $0 == 0xBF) }) else {
            throw PayloadError("empty alert (expected an EventNotificationAlert in XML or JSON)")
        }
        let root: JSONValue
        if first == UInt8(ascii: "{") {
            do {
                root = try JSONValue.parse(bytes)
            } catch {
                throw PayloadError("alert is not valid JSON (\(bytes.count) bytes): \(error)")
            }
        } else if first == UInt8(ascii: "<") {
            do {
                root = try XMLTree.parse(bytes)
            } catch {
                throw PayloadError("alert is not well-formed XML (\(bytes.count) bytes): \(error.reason)")
            }
        } else {
            throw PayloadError("alert is neither XML nor JSON (\(bytes.count) bytes starting with byte 0x\(String(first, radix: 16)))")
        }
        guard case .object(var fields) = root else {
            throw PayloadError("alert is not an object (expected an EventNotificationAlert)")
        }
        // XML always has the root element; JSON has it on some firmware and not on others.
        if case .object(let inner)? = fields["EventNotificationAlert"] {
            fields = inner
        } else if fields.count == 1, let name = fields.keys.first, fields["eventType"] == nil {
            throw PayloadError("document root is <\(name)>, not EventNotificationAlert")
        }
        guard let eventType = text(fields["eventType"]), !eventType.isEmpty else {
            throw PayloadError("alert has no eventType (expected e.g. VMD, fielddetection, IO, videoloss, heartBeat)")
        }
        var alert = HikvisionCameraAlert(eventType: eventType)
        alert.eventState = text(fields["eventState"])
        alert.dateTime = text(fields["dateTime"])
        alert.channel = int(fields["dynChannelID"]) ?? int(fields["channelID"])
        alert.ioPort = int(fields["inputIOPortID"]) ?? int(fields["dynInputIOPortID"])
        alert.activePostCount = int(fields["activePostCount"])
        alert.eventDescription = text(fields["eventDescription"])
        alert.uuid = text(fields["UUID"])
        alert.ipAddress = text(fields["ipAddress"])
        alert.macAddress = text(fields["macAddress"])
        alert.targetType = text(fields["targetType"]) ?? find("targetType", in: fields["DetectionRegionList"])
        if eventType.lowercased() == "duration" {
            alert.relationEvent = find("relationEvent", in: fields["DurationList"]) ?? text(fields["relationEvent"])
        }
        return alert
    }

    /// A scalar as text (JSON numbers and booleans too: firmware writes `"channelID": 1` or `"1"`).
    static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s)?: s.trimmingCharacters(in: .whitespacesAndNewlines)
        case let number? where number.numberText != nil: number.numberText
        case .bool(let b)?: String(b)
        default: nil
        }
    }

    static func int(_ value: JSONValue?) -> Int? { text(value).flatMap { Int($0) } }

    /// The first `key` anywhere below `value` (lists such as `DurationList/Duration/relationEvent`).
    static func find(_ key: String, in value: JSONValue?, depth: Int = 0) -> String? {
        guard depth < 8, let value else { return nil }
        switch value {
        case .object(let members):
            if let found = text(members[key]) { return found }
            for (_, member) in members.sorted(by: { $0.key < $1.key }) {
                if let found = find(key, in: member, depth: depth + 1) { return found }
            }
        case .array(let items):
            for item in items {
                if let found = find(key, in: item, depth: depth + 1) { return found }
            }
        default: break
        }
        return nil
    }
}

/// `dateTime` as cameras write it: ISO 8601 with an offset, half-hour offsets included. Firmware
/// bugs write offsets without a sign (`11:47:1500:00`, `…T11:47:15 08:00`): such a time is not
/// guessed at; the event keeps the text and is flagged, and the gateway's clock stands in.
enum HikvisionCameraTime {
    static func read(_ text: String?, zone: TimeZone) -> (time: Timestamp?, issue: String?) {
        guard let text, !text.isEmpty else { return (nil, nil) }
        if let time = DeviceTimeParser.parse(text, zone: zone) { return (time, nil) }
        let bytes = Array(text.utf8)
        // `YYYY-MM-DDThh:mm:ss` is 19 bytes; what follows is the (broken) offset.
        if bytes.count > 19, DeviceTimeParser.parse(String(decoding: bytes.prefix(19), as: UTF8.self), zone: zone) != nil {
            let offset = String(decoding: bytes.dropFirst(19), as: UTF8.self)
            return (nil, "dateTime '\(text)' has a malformed UTC offset '\(offset)' (expected Z or ±hh:mm, e.g. +08:00)")
        }
        return (nil, "dateTime '\(text)' is not a time (expected ISO 8601, e.g. 2025-03-14T18:05:41+08:00)")
    }
}

/// Which kind an `eventType` is (docs/specs/0003-camera-alarms.md), as data: a device's
/// `options.kinds` adds to or overrides it. Matched case-insensitively, because firmware
/// writes `VMD` and `vmd`, `PIR` and `pir`.
enum HikvisionCameraKinds {
    static let table: [String: EventKind] = [
        "vmd": .cameraMotion,
        "motiondetection": .cameraMotion,
        "linedetection": .cameraLineCrossing,
        "fielddetection": .cameraIntrusion,
        "regionentrance": .cameraRegionEntrance,
        "regionexiting": .cameraRegionExit,
        "loitering": .cameraLoitering,
        "unattendedbaggage": .cameraObjectLeft,
        "attendedbaggage": .cameraObjectRemoved,
        "scenechangedetection": .cameraSceneChange,
        "defocus": .cameraDefocus,
        "facedetection": .cameraFace,
        "humandetection": .cameraPerson,
        "audioexception": .cameraAudio,
        "pir": .alarmPIR,
        "tamperdetection": .cameraTamper,
        "shelteralarm": .cameraTamper,
        "videoloss": .cameraVideoLoss,
        "io": .alarmInput,
        "diskfull": .deviceStorageError,
        "diskerror": .deviceStorageError,
    ]

    /// The kind of `eventType` (with `targetType` for `targetDetection`); `extra` from the device's options first.
    static func kind(eventType: String, targetType: String? = nil, extra: [String: EventKind] = [:]) -> EventKind {
        let key = eventType.lowercased()
        if let kind = extra[key] ?? table[key] { return kind }
        if key == "targetdetection", targetType?.lowercased() == "human" { return .cameraPerson }
        return .vendorOther
    }
}

/// What one alert means for the gateway.
enum HikvisionCameraReading: Equatable {
    /// A keep-alive (`heartBeat`, an `inactive` videoloss with no video loss open): the device is alive.
    case heartbeat
    /// A report of a lasting condition, for the device's `AlarmTracker`; `draft` carries its attributes.
    case signal(AlarmSignal, draft: EventDraft)
    /// An alert for another driver or profile (`ANPR`, `AccessControllerEvent`): kept in quarantine with the reason.
    case elsewhere(String)
}

enum HikvisionCameraMapping {
    /// Reads an alert for a device; `now` stands in for an unreadable device time.
    static func read(
        _ alert: HikvisionCameraAlert, zone: TimeZone, extraKinds: [String: EventKind], now: Timestamp, pictures: Int = 0
    ) -> HikvisionCameraReading {
        let type = alert.eventType.lowercased()
        if alert.isHeartbeat { return .heartbeat }
        if type == "anpr" {
            return .elsewhere("ANPR plate alerts are mapped by the hikvision-anpr profile: point this camera's plate upload at /v1/push/hikvision-anpr/<device id> (driver: profile)")
        }
        if type == "accesscontrollerevent" {
            return .elsewhere("AccessControllerEvent alerts are mapped by the hikvision-acs driver: configure this terminal with driver: hikvision-acs")
        }
        // A `duration` notification is the detector's alarm going on, not a new one.
        let code = alert.relationEvent ?? alert.eventType
        let kind = HikvisionCameraKinds.kind(eventType: code, targetType: alert.targetType, extra: extraKinds)
        let point: String? =
            if kind == .alarmInput, let port = alert.ioPort { "io-\(port)" } else { alert.channel.map { "channel-\($0)" } ?? alert.ioPort.map { "io-\($0)" } }
        let (time, issue) = HikvisionCameraTime.read(alert.dateTime, zone: zone)
        var attributes: [String: JSONValue] = ["code": .string(code)]
        if alert.relationEvent != nil { attributes["notification"] = .string(alert.eventType) }
        if let description = alert.eventDescription { attributes["description"] = .string(description) }
        if let target = alert.targetType { attributes["targetType"] = .string(target) }
        if let uuid = alert.uuid { attributes["uuid"] = .string(uuid) }
        if let count = alert.activePostCount { attributes["activePostCount"] = .number(Double(count)) }
        if pictures > 0 { attributes["pictures"] = .number(Double(pictures)) }
        let draft = EventDraft(
            kind: kind, occurredAt: time, deviceTime: alert.dateTime, point: point, attributes: attributes, timeIssue: issue)
        let edge: AlarmSignal.Edge = alert.relationEvent != nil || alert.isActive ? .active : .inactive
        return .signal(AlarmSignal(kind: kind, point: point, code: code, edge: edge, at: time ?? now), draft: draft)
    }
}

/// A listening-mode body: a bare XML/JSON alert, or `multipart/form-data` with the alert part and pictures.
struct HikvisionCameraPush {
    var alert: HikvisionCameraAlert
    var pictures: [ImagePart]

    static func parse(_ body: [UInt8], contentType: String?) throws(PayloadError) -> HikvisionCameraPush {
        let start = body.first { !($0 == 32 || $0 == 9 || $0 == 13 || $0 == 10) }
        let bare = start == UInt8(ascii: "{") || start == UInt8(ascii: "<")
        guard !bare, let boundary = MultipartBody.boundary(contentType: contentType) ?? MultipartBody.boundary(openingBody: body) else {
            return HikvisionCameraPush(alert: try HikvisionCameraAlert.parse(body), pictures: [])
        }
        let parts: [MultipartBodyPart]
        do {
            parts = try MultipartBody.parts(body, boundary: boundary)
        } catch {
            throw PayloadError(error.reason)
        }
        guard let alertPart = parts.first(where: { !$0.isImage && isDocument($0.body) }) else {
            throw PayloadError(
                "multipart body has \(parts.count) parts (\(parts.map { $0.name ?? "unnamed" }.joined(separator: ", "))) and no XML or JSON alert part")
        }
        let pictures = parts.filter(\.isImage).map { ImagePart(name: $0.name ?? $0.filename ?? "picture", contentType: $0.contentType ?? "image/jpeg", body: $0.body) }
        return HikvisionCameraPush(alert: try HikvisionCameraAlert.parse(alertPart.body), pictures: pictures)
    }

    static func isDocument(_ bytes: [UInt8]) -> Bool {
        let start = bytes.first { !($0 == 32 || $0 == 9 || $0 == 13 || $0 == 10) }
        return start == UInt8(ascii: "{") || start == UInt8(ascii: "<")
    }
}
