/// One normalized event, schema `gatehouse.event/1` (docs/event-schema.md).
///
/// Drivers build it, the privacy policy is applied to it, and only then is it written to
/// the queue. Its `id` is the idempotency key downstream, so it never changes once assigned.
public struct Event: Codable, Sendable, Equatable {
    public static let schemaV1 = "gatehouse.event/1"

    public var id: EventID
    public var schema: String
    public var kind: EventKind
    public var occurredAt: Timestamp
    public var receivedAt: Timestamp
    /// Whose clock `occurredAt` is: the device's, or the gateway's when the device sent no time
    /// or one that cannot be trusted (the device's text stays in `source.deviceTime`).
    public var timeSource: TimeSource?
    /// Why the gateway's clock was used; absent when `timeSource` is `device`.
    public var timeReason: String?
    public var site: String
    public var device: DeviceRef
    public var point: String?
    public var direction: Direction?
    public var subject: Subject?
    public var result: AccessResult?
    /// `start` or `stop` for an alarm that lasts; absent for an event at an instant.
    public var state: AlarmState?
    /// Which alarm a `start`/`stop` belongs to, and the incident it is part of.
    public var alarm: AlarmRef?
    public var priority: Priority
    public var attributes: [String: JSONValue]?
    public var source: Source

    public init(
        id: EventID, kind: EventKind, occurredAt: Timestamp, receivedAt: Timestamp, site: String,
        device: DeviceRef, point: String? = nil, direction: Direction? = nil, subject: Subject? = nil,
        result: AccessResult? = nil, priority: Priority? = nil, attributes: [String: JSONValue]? = nil,
        source: Source, timeSource: TimeSource? = nil, timeReason: String? = nil, state: AlarmState? = nil,
        alarm: AlarmRef? = nil
    ) {
        self.state = state
        self.alarm = alarm
        self.id = id
        self.schema = Event.schemaV1
        self.kind = kind
        self.occurredAt = occurredAt
        self.receivedAt = receivedAt
        self.timeSource = timeSource
        self.timeReason = timeReason
        self.site = site
        self.device = device
        self.point = point
        self.direction = direction
        self.subject = subject
        self.result = result
        self.priority = priority ?? kind.defaultPriority
        self.attributes = attributes
        self.source = source
    }
}

/// The device that reported an event; `id` comes from config, never from the vendor.
public struct DeviceRef: Codable, Sendable, Equatable {
    public var id: String
    public var vendor: String
    public var model: String?
    public var type: DeviceType

    public init(id: String, vendor: String, model: String? = nil, type: DeviceType) {
        self.id = id
        self.vendor = vendor
        self.model = model
        self.type = type
    }
}

/// What kind of hardware a configured device is.
public enum DeviceType: String, Codable, Sendable, CaseIterable {
    case barrier
    case lprCamera = "lpr-camera"
    case doorController = "door-controller"
    case accessTerminal = "access-terminal"
    case camera
    case nvr
    case intercom
    case alarmPanel = "alarm-panel"
    case other
}

/// Entry or exit, from the lane or door configuration.
public enum Direction: String, Codable, Sendable, CaseIterable {
    case `in`
    case out
}

/// Whether access was given (for vehicles: whether the barrier opened).
public enum AccessResult: String, Codable, Sendable, CaseIterable {
    case granted
    case denied
    case unknown
}

/// Who or what the event is about, after the privacy policy was applied.
public struct Subject: Codable, Sendable, Equatable {
    public var type: SubjectType
    /// Absent when the policy dropped it; masked or a keyed hash when the policy says so.
    public var value: String?
    /// How `value` was treated: `clear`, `masked`, `hashed` or `dropped`.
    public var treatment: SubjectTreatment?
    /// Plate colour as the vendor reports it, normalised to a small vocabulary where known.
    public var color: String?

    public init(type: SubjectType, value: String?, treatment: SubjectTreatment? = nil, color: String? = nil) {
        self.type = type
        self.value = value
        self.treatment = treatment
        self.color = color
    }
}

/// The subject types of schema v1.
public enum SubjectType: String, Codable, Sendable, CaseIterable {
    case plate, card, face, person, qr, phone, none
}

/// What the privacy policy did to a subject value.
public enum SubjectTreatment: String, Codable, Sendable {
    case clear, masked, hashed, dropped
}

/// Whose clock an event's `occurredAt` is.
public enum TimeSource: String, Codable, Sendable, CaseIterable {
    case device
    case gateway
}

/// Where an event came from inside the gateway.
public struct Source: Codable, Sendable, Equatable {
    public var driver: String
    public var profile: String?
    /// The per-device key that recognises a re-sent event (device retries, re-read records).
    public var dedupKey: String?
    /// The device's own time string, kept verbatim because device clocks drift.
    public var deviceTime: String?
    /// A digest of what the device said happened (`EventFingerprint`): with the dedup key it
    /// tells a re-sent event from a different event under a reused key.
    public var fingerprint: String?

    public init(driver: String, profile: String? = nil, dedupKey: String? = nil, deviceTime: String? = nil, fingerprint: String? = nil) {
        self.driver = driver
        self.profile = profile
        self.dedupKey = dedupKey
        self.deviceTime = deviceTime
        self.fingerprint = fingerprint
    }
}
