import Crypto
import Foundation
import GatehouseCore

/// Turns one camera's notifications into drafts: topic → kind by the table, property changes
/// → alarm starts and stops through the device's `AlarmTracker`, one-shot events as they are.
/// Owned by the device's task, like the tracker inside it.
struct ONVIFEventMapper: Sendable {
    let deviceID: String
    var extraRules: [ONVIFTopicRule]
    var timeFormat: ONVIFTimeFormat
    let zone: TimeZone
    /// Motion alarms close after this long without news (some NVRs never send the false edge).
    let motionQuiet: Duration?
    private var tracker: AlarmTracker
    /// Open alarms of other kinds: ONVIF reports a property once, not repeatedly, so while the
    /// subscription is alive their last word still holds and they are refreshed, never closed as quiet.
    private var held: [String: AlarmSignal] = [:]

    init(deviceID: String, extraRules: [ONVIFTopicRule] = [], timeFormat: ONVIFTimeFormat = .utc, zone: TimeZone, motionQuiet: Duration?) {
        self.deviceID = deviceID
        self.extraRules = extraRules
        self.timeFormat = timeFormat
        self.zone = zone
        self.motionQuiet = motionQuiet
        tracker = AlarmTracker(deviceID: deviceID, settings: AlarmTracker.Settings(quiet: motionQuiet))
    }

    var openAlarms: Int { tracker.openCount }

    /// The drafts one notification means (none for a repeat or an `Initialized` "not active").
    mutating func drafts(for notification: ONVIFNotification, now: Timestamp) -> [EventDraft] {
        let rule = ONVIFTopics.rule(for: notification.topic, extra: extraRules)
        let kind = rule?.kind ?? .vendorOther
        let time = notification.utcTime.flatMap { ONVIFTime.parse($0, format: timeFormat, zone: zone) }
        var draft = EventDraft(
            kind: kind, occurredAt: time, deviceTime: notification.utcTime, point: notification.point,
            priority: rule?.priority, attributes: attributes(notification, rule: rule),
            timeIssue: notification.utcTime != nil && time == nil ? "UtcTime '\(notification.utcTime ?? "")' is not a time" : nil)
        guard let state = notification.state else {
            // Not a property with a boolean state: an event at an instant. An Initialized value
            // of such a property is a state refresh, not an occurrence.
            if notification.operation == .initialized || notification.operation == .deleted { return [] }
            draft.dedupKey = Self.dedupKey(device: deviceID, notification)
            return [draft]
        }
        let edge: AlarmSignal.Edge
        switch notification.operation {
        case .initialized: edge = .initial(active: state)
        case .deleted: edge = .inactive
        case .changed, nil: edge = state ? .active : .inactive
        }
        let signal = AlarmSignal(kind: kind, point: notification.point, code: notification.topic, edge: edge, at: time ?? now)
        let key = Self.key(signal)
        if kind != .cameraMotion || motionQuiet == nil {
            switch edge {
            case .active, .initial(active: true): held[key] = signal
            case .inactive, .initial(active: false): held[key] = nil
            }
        }
        guard let transition = tracker.observe(signal, now: now) else { return [] }
        draft.apply(transition)
        return [draft]
    }

    /// Stops for motion alarms that went quiet; other open alarms are refreshed first.
    mutating func expire(now: Timestamp) -> [EventDraft] {
        for signal in held.values.sorted(by: { Self.key($0) < Self.key($1) }) {
            var repeatSignal = signal
            repeatSignal.edge = .active
            _ = tracker.observe(repeatSignal, now: now)
        }
        return tracker.expire(now: now).map { transition in
            var draft = transition.draft
            draft.attributes?["topic"] = .string(transition.code)
            return draft
        }
    }

    /// When a quiet stop may next fall due.
    var nextExpiry: Timestamp? { tracker.nextExpiry }

    private static func key(_ signal: AlarmSignal) -> String {
        "\(signal.kind.rawValue)\u{1F}\(signal.point ?? "")\u{1F}\(signal.code)"
    }

    /// The topic as `code`, the source items, the state item, other data items only when they
    /// are numbers or booleans (analytics put plates and names in Data: never kept in clear).
    private func attributes(_ notification: ONVIFNotification, rule: ONVIFTopicRule?) -> [String: JSONValue] {
        var attributes: [String: JSONValue] = ["code": .string(notification.topic), "topic": .string(notification.rawTopic)]
        if !notification.source.isEmpty {
            attributes["source"] = .object(Dictionary(notification.source.map { ($0.name, JSONValue.string($0.value)) }, uniquingKeysWith: { first, _ in first }))
        }
        var data: [String: JSONValue] = [:]
        for item in notification.data {
            let lower = item.value.lowercased()
            if Double(item.value) != nil || ["true", "false", "active", "inactive"].contains(lower) || ONVIFNotification.stateItems.contains(item.name) {
                data[item.name] = .string(item.value)
            }
        }
        if !data.isEmpty { attributes["data"] = .object(data) }
        if let operation = notification.operation { attributes["propertyOperation"] = .string(operation.rawValue) }
        if let reason = rule?.reason { attributes["reason"] = .string(reason) }
        if let analytic = rule?.analytic { attributes["analytic"] = .string(analytic) }
        return attributes
    }

    /// device, topic, sorted source items, UtcTime and data values: a replay after a
    /// re-subscription is the same key, and a duplicate when its content is the same.
    static func dedupKey(device: String, _ notification: ONVIFNotification) -> String {
        var hasher = SHA256()
        let source = notification.source.map { "\($0.name)=\($0.value)" }.sorted()
        let data = notification.data.map { "\($0.name)=\($0.value)" }.sorted()
        for field in [device, notification.topic] + source + [notification.utcTime ?? ""] + data {
            hasher.update(data: Array(field.utf8) + [0x1F])
        }
        return "onvif:" + hasher.finalize().prefix(12).map { String(format: "%02x", $0) }.joined()
    }
}
