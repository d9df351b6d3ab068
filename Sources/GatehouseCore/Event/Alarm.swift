/// Whether an event opens or closes an alarm that lasts (an intrusion, an input held active,
/// a covered lens). Events that happen at an instant (a plate read, a card swipe, a pulse) have none.
public enum AlarmState: String, Codable, Sendable, CaseIterable {
    case start
    case stop
}

/// Why a stop was emitted.
public enum AlarmStopReason: String, Codable, Sendable, CaseIterable {
    /// The device said the alarm ended.
    case device
    /// The device stopped repeating an ongoing alarm and never said it ended (NVRs, some motion
    /// detectors): the gateway closed it after the configured quiet time.
    case quiet
    /// The device's state, read again after a reconnect or re-subscription, no longer has it.
    case resync
}

/// Which alarm a `start` or `stop` belongs to (docs/specs/0003-camera-alarms.md).
///
/// `id` is the same on an alarm's start and its stop, so a stop refers to its start without the
/// centre keeping state; `incident` links alarms that one physical incident raised on one point
/// through several detectors (motion, intrusion and line crossing for one person): it is the
/// `id` of the first of them, so an incident counts once however many detectors saw it.
public struct AlarmRef: Codable, Sendable, Equatable, Hashable {
    /// 16 hex digits, derived from device, point, kind, the vendor's code and the start time.
    public var id: String
    /// The `id` of the first alarm of the incident (the alarm's own id when it is the first).
    public var incident: String
    /// On a stop: when its start happened.
    public var startedAt: Timestamp?
    /// On a stop: why it was emitted.
    public var stopReason: AlarmStopReason?
    /// On a start: true when the device reported the alarm as already active when the gateway
    /// (re)subscribed, so the start time is when the gateway learned of it, not when it began.
    public var initial: Bool?

    public init(
        id: String, incident: String, startedAt: Timestamp? = nil, stopReason: AlarmStopReason? = nil, initial: Bool? = nil
    ) {
        self.id = id
        self.incident = incident
        self.startedAt = startedAt
        self.stopReason = stopReason
        self.initial = initial
    }

    /// The alarm as a JSON object, in the shape `Codable` gives it.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = ["id": .string(id), "incident": .string(incident)]
        if let startedAt { object["startedAt"] = .string(startedAt.rfc3339) }
        if let stopReason { object["stopReason"] = .string(stopReason.rawValue) }
        if let initial { object["initial"] = .bool(initial) }
        return .object(object)
    }
}
