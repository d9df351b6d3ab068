/// The closed list of event kinds of schema v1 (docs/event-schema.md).
///
/// A new kind is a schema change: add it here, to docs/event.schema.json and to a
/// numbered proposal under docs/specs/.
public enum EventKind: String, Codable, Sendable, CaseIterable, Hashable {
    // vehicles
    case vehicleEntry = "vehicle.entry"
    case vehicleExit = "vehicle.exit"
    case vehicleDetected = "vehicle.detected"
    case vehicleUnplated = "vehicle.unplated"
    case vehicleLingering = "vehicle.lingering"
    case lanePresence = "lane.presence"
    // doors and access
    case accessGranted = "access.granted"
    case accessDenied = "access.denied"
    case doorOpened = "door.opened"
    case doorClosed = "door.closed"
    case doorForced = "door.forced"
    case doorHeldOpen = "door.held-open"
    case doorExitRequest = "door.exit-request"
    case doorRemoteOpen = "door.remote-open"
    case doorRemoteClose = "door.remote-close"
    case doorUnlocked = "door.unlocked"
    case doorLocked = "door.locked"
    // cameras
    case cameraMotion = "camera.motion"
    case cameraTamper = "camera.tamper"
    case cameraVideoLoss = "camera.video-loss"
    case cameraIntrusion = "camera.intrusion"
    case cameraLineCrossing = "camera.line-crossing"
    // alarms
    case alarmInput = "alarm.input"
    case alarmPanic = "alarm.panic"
    case alarmFire = "alarm.fire"
    case alarmDuress = "alarm.duress"
    case alarmTamper = "alarm.tamper"
    // intercom
    case intercomCall = "intercom.call"
    // devices
    case deviceOnline = "device.online"
    case deviceOffline = "device.offline"
    case deviceRebooted = "device.rebooted"
    case deviceClockSkew = "device.clock-skew"
    case deviceLogGap = "device.log-gap"
    // anything else; the vendor's own code stays in `attributes`
    case vendorOther = "vendor.other"

    /// The priority an event of this kind gets unless its source says otherwise.
    public var defaultPriority: Priority {
        switch self {
        case .alarmInput, .alarmPanic, .alarmFire, .alarmDuress, .alarmTamper,
            .doorForced, .cameraTamper, .cameraIntrusion:
            return .alarm
        case .cameraMotion, .cameraLineCrossing, .cameraVideoLoss, .lanePresence,
            .deviceOnline, .deviceOffline, .deviceRebooted, .deviceClockSkew, .deviceLogGap,
            .vendorOther:
            return .telemetry
        default:
            return .access
        }
    }
}

/// Forwarding order and eviction order: higher ranks are sent first and evicted last.
public enum Priority: String, Codable, Sendable, CaseIterable, Comparable, Hashable {
    case telemetry
    case access
    case alarm

    /// Stored in the queue; larger is more important.
    public var rank: Int {
        switch self {
        case .telemetry: 0
        case .access: 1
        case .alarm: 2
        }
    }

    public init?(rank: Int) {
        guard let match = Priority.allCases.first(where: { $0.rank == rank }) else { return nil }
        self = match
    }

    /// Highest first: the order sinks read the queue in.
    public static let forwardingOrder: [Priority] = [.alarm, .access, .telemetry]

    public static func < (lhs: Priority, rhs: Priority) -> Bool { lhs.rank < rhs.rank }
}
