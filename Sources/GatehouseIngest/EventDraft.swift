import GatehouseCore

/// What a driver or profile makes of one device message, before the gateway assigns the id,
/// the receive time, the site and the device, applies lane config and the privacy policy.
public struct EventDraft: Sendable, Equatable {
    public var kind: EventKind
    /// When the device says it happened; nil means "now" (the device sent no time).
    public var occurredAt: Timestamp?
    /// The device's own time string, kept verbatim.
    public var deviceTime: String?
    /// Why `occurredAt` is nil although the device sent `deviceTime` (an impossible date, text
    /// that is not a time): the event is kept with the gateway's clock and this reason.
    public var timeIssue: String?
    public var point: String?
    public var direction: Direction?
    public var subject: Subject?
    public var result: AccessResult?
    /// `start`/`stop` of an alarm that lasts, as an `AlarmTracker` decided it.
    public var state: AlarmState?
    public var alarm: AlarmRef?
    public var priority: Priority?
    public var attributes: [String: JSONValue]?
    public var dedupKey: String?
    public var profile: String?

    public init(
        kind: EventKind, occurredAt: Timestamp? = nil, deviceTime: String? = nil, point: String? = nil,
        direction: Direction? = nil, subject: Subject? = nil, result: AccessResult? = nil, priority: Priority? = nil,
        attributes: [String: JSONValue]? = nil, dedupKey: String? = nil, profile: String? = nil, timeIssue: String? = nil,
        state: AlarmState? = nil, alarm: AlarmRef? = nil
    ) {
        self.state = state
        self.alarm = alarm
        self.timeIssue = timeIssue
        self.kind = kind
        self.occurredAt = occurredAt
        self.deviceTime = deviceTime
        self.point = point
        self.direction = direction
        self.subject = subject
        self.result = result
        self.priority = priority
        self.attributes = attributes
        self.dedupKey = dedupKey
        self.profile = profile
    }
}

/// Why a payload could not be mapped; the text goes to quarantine and back to the sender.
public struct PayloadError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A payload as it arrived, for decoding now or replaying from quarantine later.
public struct RawPayload: Sendable {
    public var body: [UInt8]
    public var contentType: String?
    public var route: String?

    public init(body: [UInt8], contentType: String?, route: String?) {
        self.body = body
        self.contentType = contentType
        self.route = route
    }
}
