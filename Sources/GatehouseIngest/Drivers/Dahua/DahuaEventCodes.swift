import Foundation
import GatehouseCore
import GatehouseProfiles

/// Dahua event `Code` → event kind, as data (README: "Event codes"). Codes whose kind depends
/// on `data` (`AccessControl`, `DoorStatus`, `CrossRegionDetection`) and the plate codes are
/// decided in `DahuaEventMapper`; a device's `kinds:` option overrides any of them; any other
/// code becomes `vendor.other` with the code kept in `attributes.code`.
enum DahuaCodes {
    static let kinds: [String: EventKind] = [
        // video analytics and video faults (spec 0003)
        "VideoMotion": .cameraMotion,
        "SmartMotionHuman": .cameraPerson,
        "CrossLineDetection": .cameraLineCrossing,
        "CrossRegionDetection": .cameraIntrusion,
        "VideoLoss": .cameraVideoLoss,
        "VideoBlind": .cameraTamper,
        "SceneChange": .cameraSceneChange,
        "VideoUnFocus": .cameraDefocus,
        "WanderDetection": .cameraLoitering,
        "LeftDetection": .cameraObjectLeft,
        "TakenAwayDetection": .cameraObjectRemoved,
        "FaceDetection": .cameraFace,
        "AudioMutation": .cameraAudio,
        "AudioAnomaly": .cameraAudio,
        // alarm inputs and sensors
        "AlarmLocal": .alarmInput,
        "PIR": .alarmPIR,
        // storage
        "StorageNotExist": .deviceStorageError,
        "StorageFailure": .deviceStorageError,
        "StorageLowSpace": .deviceStorageError,
        // door stations and access terminals (VTO, ASI)
        "BreakIn": .doorForced,
        "DoorNotClosed": .doorHeldOpen,
        "Duress": .alarmDuress,
        "ChassisIntruded": .alarmTamper,
        "Invite": .intercomCall,
        "CallNoAnswered": .intercomCall,
        // housekeeping
        "Reboot": .deviceRebooted,
    ]

    /// Plate reads of ITC/traffic cameras: mapped by the `dahua-itc` profile, like its HTTP upload.
    static let plateCodes: Set<String> = ["TrafficJunction", "TrafficParking", "TrafficManualSnap"]
    static let plateProfile = "dahua-itc"

    /// Codes whose `index` is a door or an alarm input rather than a video channel.
    static let doorCodes: Set<String> = ["AccessControl", "DoorStatus", "BreakIn", "DoorNotClosed", "Duress"]
    static let inputCodes: Set<String> = ["AlarmLocal"]

    /// `Method` of `AccessControl` (NET_ACCESS_DOOROPEN_METHOD).
    static let openMethods: [Int: String] = [
        0: "unknown", 1: "password", 2: "card", 3: "card-then-password", 4: "password-then-card", 5: "remote",
        6: "exit-button", 7: "fingerprint", 15: "face",
    ]

    /// `CrossRegionDetection`'s `Action`: which way the object went.
    static let regionActions: [String: EventKind] = [
        "Appear": .cameraRegionEntrance, "Enter": .cameraRegionEntrance,
        "Leave": .cameraRegionExit, "Disappear": .cameraRegionExit,
    ]
}

/// Turns Dahua event records into drafts: Start/Stop through the device's `AlarmTracker`,
/// Pulse (and any other action) as an event at an instant, plates through the `dahua-itc`
/// profile. Pure apart from the tracker it is handed, so the stream, the RPC push and
/// quarantine replay share it.
struct DahuaEventMapper: Sendable {
    let device: DeviceConfig
    let overrides: [String: EventKind]
    /// The `dahua-itc` profile, or why it could not be loaded.
    let plates: Result<Profile, PayloadError>

    init(device: DeviceConfig, plates: Result<Profile, PayloadError>) {
        self.device = device
        self.overrides = Dictionary(device.options.kindTable("kinds").map { ($0.code, $0.kind) }, uniquingKeysWith: { _, last in last })
        self.plates = plates
    }

    /// The drafts for one record; nil-free: a repeat of an open alarm gives none.
    func drafts(for event: DahuaEvent, tracker: inout AlarmTracker, now: Timestamp) throws(PayloadError) -> [EventDraft] {
        if overrides[event.code] == nil, DahuaCodes.plateCodes.contains(event.code) {
            return try plateDrafts(event)
        }
        var data: [String: JSONValue] = [:]
        if case .object(let object)? = event.data { data = object }
        var draft = EventDraft(kind: kind(of: event, data: data), point: point(of: event, data: data))
        var attributes: [String: JSONValue] = ["code": .string(event.code)]
        if let index = event.index { attributes["channel"] = .number(Double(index + 1)) }
        (draft.occurredAt, draft.deviceTime, draft.timeIssue) = Self.time(in: data, zone: device.timeZone)
        if event.code == "AccessControl" { access(data, into: &draft, attributes: &attributes) }
        if event.code == "CrossRegionDetection", let action = data["Action"]?.stringValue { attributes["regionAction"] = .string(action) }
        // A video rule's name is kept; on door codes `Name` is the person's name, which never is.
        if !DahuaCodes.doorCodes.contains(event.code), let name = data["Name"]?.stringValue, name != event.code {
            attributes["ruleName"] = .string(name)
        }
        draft.attributes = attributes
        switch event.action {
        case "Start", "Stop":
            let signal = AlarmSignal(
                kind: draft.kind, point: draft.point, code: event.code, edge: event.action == "Start" ? .active : .inactive,
                at: draft.occurredAt ?? now)
            guard let transition = tracker.observe(signal, now: now) else { return [] }
            draft.apply(transition)
        default:
            // Pulse: an event at an instant. Firmware's EventID makes a re-sent record a duplicate.
            if event.action != "Pulse" { attributes["action"] = .string(event.action) }
            draft.attributes = attributes
            if let id = data["EventID"].flatMap(Self.text) { draft.dedupKey = "\(event.code):\(id)" }
        }
        return [draft]
    }

    func kind(of event: DahuaEvent, data: [String: JSONValue]) -> EventKind {
        if let kind = overrides[event.code] { return kind }
        switch event.code {
        case "AccessControl":
            if Self.int(data["Method"]) == 5 { return .doorRemoteOpen }
            return Self.int(data["Status"]) == 1 ? .accessGranted : .accessDenied
        case "DoorStatus":
            switch data["Status"]?.stringValue?.lowercased() {
            case "open": return .doorOpened
            case "close", "closed": return .doorClosed
            default: return .vendorOther
            }
        case "CrossRegionDetection":
            return data["Action"]?.stringValue.flatMap { DahuaCodes.regionActions[$0] } ?? .cameraIntrusion
        default:
            return DahuaCodes.kinds[event.code] ?? .vendorOther
        }
    }

    /// 0-based `index` (or `Door` of an access record) → `channel-N`, `input-N` or `door-N`, 1-based.
    func point(of event: DahuaEvent, data: [String: JSONValue]) -> String? {
        if DahuaCodes.doorCodes.contains(event.code) {
            guard let door = Self.int(data["Door"]) ?? event.index else { return nil }
            return "door-\(door + 1)"
        }
        guard let index = event.index else { return nil }
        return DahuaCodes.inputCodes.contains(event.code) ? "input-\(index + 1)" : "channel-\(index + 1)"
    }

    /// Card, user, method, result and direction of a VTO/ASI access record.
    private func access(_ data: [String: JSONValue], into draft: inout EventDraft, attributes: inout [String: JSONValue]) {
        // The user id identifies the person; the card number only when there is no user.
        if let user = data["UserID"].flatMap(Self.text), !user.isEmpty {
            draft.subject = Subject(type: .person, value: user)
        } else if let card = data["CardNo"].flatMap(Self.text), !card.isEmpty {
            draft.subject = Subject(type: .card, value: card)
        }
        if draft.kind == .accessGranted || draft.kind == .accessDenied {
            draft.result = draft.kind == .accessGranted ? .granted : .denied
        }
        switch data["Type"]?.stringValue {
        case "Entry": draft.direction = .in
        case "Exit": draft.direction = .out
        default: break
        }
        if let method = Self.int(data["Method"]) { attributes["method"] = .string(DahuaCodes.openMethods[method] ?? "other") }
        if let error = Self.int(data["ErrorCode"]), error != 0 { attributes["errorCode"] = .number(Double(error)) }
        if let reader = data["ReaderID"].flatMap(Self.text) { attributes["reader"] = .string(reader) }
    }

    /// Plate records, through the `dahua-itc` profile as if the camera had pushed them by HTTP upload.
    func plateDrafts(_ event: DahuaEvent) throws(PayloadError) -> [EventDraft] {
        let profile = try plates.get()
        var record: [String: JSONValue] = ["Code": .string(event.code), "Action": .string(event.action)]
        if let index = event.index { record["Index"] = .number(Double(index)) }
        if let data = event.data { record["Data"] = data }
        let request = ProfileRequest(body: Array(JSONValue.object(["Events": .array([.object(record)])]).jsonText.utf8), contentType: "application/json")
        do {
            let document = try profile.decode(request)
            return try profile.map(document, request: request, device: ProfileDriver.profileDevice(device, profile: profile))
                .map { ProfileDriver.draft($0, profile: profile.name) }
        } catch {
            throw PayloadError("\(event.code): \(error.reason)")
        }
    }

    /// Whose time the record carries, in the `dahua-itc` profile's order: `RealUTC` (true UTC),
    /// else `UTC` (on most firmware the local wall clock written as epoch seconds), else
    /// `LocaleTime` in the device's zone; `UTCMS` adds milliseconds. Nil with no time at all.
    static func time(in data: [String: JSONValue], zone: TimeZone) -> (Timestamp?, String?, String?) {
        let millis = int(data["UTCMS"]).map { Double(min(max($0, 0), 999)) / 1000 } ?? 0
        if let real = number(data["RealUTC"]), real > 0 {
            let time = DeviceTimeParser.fromEpoch(real + millis)
            return (time, data["RealUTC"].flatMap(text), time == nil ? "RealUTC \(Int64(real)) is not a plausible time" : nil)
        }
        if let utc = number(data["UTC"]), utc > 0, let local = DeviceTimeParser.fromEpoch(utc) {
            let seconds = DeviceTimeParser.localToUTC(local.milliseconds / 1000, zone: zone)
            return (Timestamp(milliseconds: seconds * 1000 + Int64(millis * 1000)), data["UTC"].flatMap(text), nil)
        }
        if let locale = data["LocaleTime"]?.stringValue {
            let time = DeviceTimeParser.parse(locale, zone: zone)
            return (time, locale, time == nil ? "LocaleTime '\(locale)' is not a time" : nil)
        }
        return (nil, nil, nil)
    }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .number(let number)?: number
        case .string(let text)?, .exactNumber(let text)?: Double(text)
        default: nil
        }
    }

    static func int(_ value: JSONValue?) -> Int? {
        number(value).flatMap { $0.isFinite && abs($0) < 1e15 ? Int($0) : nil }
    }

    static func text(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .number, .exactNumber: value.numberText
        default: nil
        }
    }
}
