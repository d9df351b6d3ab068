import Crypto
import Foundation
import GatehouseCore

/// One `wsnt:NotificationMessage`, read by local names.
struct ONVIFNotification: Sendable, Equatable {
    enum Operation: String, Sendable { case initialized = "Initialized", changed = "Changed", deleted = "Deleted" }

    /// The topic as sent (`tns1:RuleEngine/CellMotionDetector/Motion`).
    var rawTopic: String
    /// Local names joined by `/`, trailing `/` and `//.` stripped: `RuleEngine/CellMotionDetector/Motion`.
    var topic: String
    /// nil: a one-shot event (no property).
    var operation: Operation?
    var utcTime: String?
    var source: [(name: String, value: String)]
    var data: [(name: String, value: String)]

    static func == (lhs: ONVIFNotification, rhs: ONVIFNotification) -> Bool {
        lhs.rawTopic == rhs.rawTopic && lhs.operation == rhs.operation && lhs.utcTime == rhs.utcTime
            && lhs.source.map(\.name) == rhs.source.map(\.name) && lhs.source.map(\.value) == rhs.source.map(\.value)
            && lhs.data.map(\.name) == rhs.data.map(\.name) && lhs.data.map(\.value) == rhs.data.map(\.value)
    }

    /// Data items that carry a state, in the order they are looked for.
    static let stateItems = ["State", "IsMotion", "IsTamper", "LogicalState", "IsInside", "IsCrossed", "Value", "active"]
    /// Source items that name the thing that fired (the point), in the order they are looked for.
    static let pointItems = ["VideoSourceConfigurationToken", "VideoSourceToken", "Source", "InputToken", "RelayToken", "Token"]

    /// The state a property carries: `true/1/active/on` vs `false/0/inactive/off`, any case; nil when not a boolean.
    var state: Bool? {
        let item = Self.stateItems.lazy.compactMap { name in self.data.first { $0.name == name } }.first ?? data.first
        guard let value = item?.value.trimmingCharacters(in: .whitespaces).lowercased() else { return nil }
        switch value {
        case "true", "1", "active", "on", "yes": return true
        case "false", "0", "inactive", "off", "no": return false
        default: return nil
        }
    }

    var point: String? {
        Self.pointItems.lazy.compactMap { name in self.source.first { $0.name == name }?.value }.first { !$0.isEmpty }
    }

    /// Strips prefixes from every segment and the `//.` / trailing `/` some firmware writes.
    static func normalizedTopic(_ text: String) -> String {
        var trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        while trimmed.hasSuffix("/") || trimmed.hasSuffix("//.") || trimmed.hasSuffix(".") {
            trimmed = trimmed.hasSuffix("//.") ? String(trimmed.dropLast(3)) : String(trimmed.dropLast())
        }
        return trimmed.split(separator: "/").filter { !$0.isEmpty && $0 != "." }.map { segment in
            segment.firstIndex(of: ":").map { String(segment[segment.index(after: $0)...]) } ?? String(segment)
        }.joined(separator: "/")
    }

    /// Reads one `NotificationMessage`; the reason when it cannot be used (it is then quarantined).
    static func parse(_ element: ONVIFElement) -> Result<ONVIFNotification, PayloadError> {
        guard let topicElement = element.child("Topic") else { return .failure(PayloadError("NotificationMessage without Topic")) }
        let raw = topicElement.trimmedText
        let topic = normalizedTopic(raw)
        guard !topic.isEmpty else { return .failure(PayloadError("NotificationMessage with an empty Topic")) }
        guard let message = element.child("Message")?.child("Message") ?? element.child("Message") else {
            return .failure(PayloadError("NotificationMessage '\(topic)' without Message"))
        }
        func items(_ name: String) -> [(name: String, value: String)] {
            (message.child(name)?.children ?? []).filter { $0.name == "SimpleItem" }.compactMap { item in
                item.attributes["Name"].map { ($0, item.attributes["Value"] ?? "") }
            }
        }
        let operationText = message.attributes["PropertyOperation"]
        let operation = operationText.flatMap { text in
            [Operation.initialized, .changed, .deleted].first { $0.rawValue.caseInsensitiveCompare(text) == .orderedSame }
        }
        if let operationText, operation == nil {
            return .failure(PayloadError("NotificationMessage '\(topic)': PropertyOperation '\(operationText)' is not Initialized, Changed or Deleted"))
        }
        return .success(ONVIFNotification(
            rawTopic: raw, topic: topic, operation: operation, utcTime: message.attributes["UtcTime"], source: items("Source"),
            data: items("Data")))
    }

    /// `PullMessagesResponse` (or a `Notify`): its notifications, each read or refused with the
    /// message's XML, so one bad message is quarantined and the rest go on.
    static func messages(in body: ONVIFElement) -> [(element: ONVIFElement, result: Result<ONVIFNotification, PayloadError>)] {
        body.children("NotificationMessage").map { ($0, parse($0)) }
    }
}

/// How a camera writes `UtcTime`.
enum ONVIFTimeFormat: String, Sendable, Equatable, CaseIterable {
    /// As the standard says: UTC with `Z` (a stamp without a zone is read as UTC).
    case utc
    /// Local wall-clock time labelled as UTC (or with no zone): read in the device's `time_zone`.
    case local
}

enum ONVIFTime {
    /// A `UtcTime` as the camera wrote it: `Z` or an offset as written; no zone per `format`;
    /// `-` instead of `T` tolerated; overflowing fields and zero dates give nil (the event keeps the text).
    static func parse(_ text: String, format: ONVIFTimeFormat, zone: TimeZone) -> Timestamp? {
        var value = text.trimmingCharacters(in: .whitespaces)
        // `2025-03-14-02:16:02Z`: a dash where the T belongs.
        if value.count > 10, value[value.index(value.startIndex, offsetBy: 10)] == "-" {
            value.replaceSubrange(value.index(value.startIndex, offsetBy: 10)...value.index(value.startIndex, offsetBy: 10), with: "T")
        }
        switch format {
        case .utc:
            return DeviceTimeParser.parse(value, zone: TimeZone(identifier: "UTC") ?? zone)
        case .local:
            // The zone letter is a lie on this firmware: read the wall clock in the device's zone.
            if value.hasSuffix("Z") || value.hasSuffix("z") { value.removeLast() }
            return DeviceTimeParser.parse(value, zone: zone)
        }
    }
}

/// One row of the topic table: topics (local names, prefix match on whole segments) to a kind.
struct ONVIFTopicRule: Sendable, Equatable {
    var topic: String
    var kind: EventKind
    /// `attributes.reason` (`scene-change`, `too-dark`), where one kind covers several topics.
    var reason: String?
    /// `attributes.analytic` (`field`, `line`).
    var analytic: String?
    /// A priority other than the kind's default: image-quality alarms fire at dusk and dawn.
    var priority: Priority?
}

/// Topics → kinds (docs/specs/0003-camera-alarms.md and the driver README), extendable per device with `kinds:`.
enum ONVIFTopics {
    static let table: [ONVIFTopicRule] = [
        ONVIFTopicRule(topic: "VideoSource/MotionAlarm", kind: .cameraMotion),
        ONVIFTopicRule(topic: "RuleEngine/CellMotionDetector/Motion", kind: .cameraMotion),
        ONVIFTopicRule(topic: "RuleEngine/MotionRegionDetector/Motion", kind: .cameraMotion),
        ONVIFTopicRule(topic: "VideoAnalytics/MotionDetection", kind: .cameraMotion),
        ONVIFTopicRule(topic: "RuleEngine/FieldDetector/ObjectsInside", kind: .cameraIntrusion, analytic: "field"),
        ONVIFTopicRule(topic: "RuleEngine/LineDetector/Crossed", kind: .cameraLineCrossing, analytic: "line"),
        ONVIFTopicRule(topic: "RuleEngine/LoiteringDetector", kind: .cameraLoitering),
        ONVIFTopicRule(topic: "RuleEngine/TamperDetector/Tamper", kind: .cameraTamper),
        ONVIFTopicRule(topic: "UserAlarm/VideoCover", kind: .cameraTamper),
        ONVIFTopicRule(topic: "RuleEngine/FaceDetector", kind: .cameraFace),
        ONVIFTopicRule(topic: "RuleEngine/ObjectDetection/Human", kind: .cameraPerson),
        ONVIFTopicRule(topic: "RuleEngine/MyRuleDetector/PeopleDetect", kind: .cameraPerson),
        ONVIFTopicRule(topic: "AudioAnalytics", kind: .cameraAudio),
        ONVIFTopicRule(topic: "VideoSource/GlobalSceneChange", kind: .cameraSceneChange, reason: "scene-change"),
        ONVIFTopicRule(topic: "VideoSource/ImageTooBlurry", kind: .cameraDefocus, reason: "too-blurry"),
        ONVIFTopicRule(topic: "VideoSource/ImageTooDark", kind: .cameraTamper, reason: "too-dark", priority: .telemetry),
        ONVIFTopicRule(topic: "VideoSource/ImageTooBright", kind: .cameraTamper, reason: "too-bright", priority: .telemetry),
        ONVIFTopicRule(topic: "VideoSource/SignalLoss", kind: .cameraVideoLoss),
        ONVIFTopicRule(topic: "Device/Trigger/DigitalInput", kind: .alarmInput),
        ONVIFTopicRule(topic: "Device/Trigger/AlarmIn", kind: .alarmInput),
        ONVIFTopicRule(topic: "Device/HardwareFailure/StorageFailure", kind: .deviceStorageError),
    ]

    /// The longest rule whose topic is the notification's topic or a whole-segment prefix of it;
    /// `extra` (the device's `kinds:`) is tried before the shipped table.
    static func rule(for topic: String, extra: [ONVIFTopicRule] = []) -> ONVIFTopicRule? {
        func matches(_ rule: ONVIFTopicRule) -> Bool {
            let key = ONVIFNotification.normalizedTopic(rule.topic)
            return topic.caseInsensitiveCompare(key) == .orderedSame || topic.lowercased().hasPrefix(key.lowercased() + "/")
        }
        let best = { (rules: [ONVIFTopicRule]) in rules.filter(matches).max { $0.topic.count < $1.topic.count } }
        return best(extra) ?? best(table)
    }
}
