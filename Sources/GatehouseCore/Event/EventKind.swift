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
    case cameraRegionEntrance = "camera.region-entrance"
    case cameraRegionExit = "camera.region-exit"
    case cameraLoitering = "camera.loitering"
    case cameraObjectLeft = "camera.object-left"
    case cameraObjectRemoved = "camera.object-removed"
    case cameraSceneChange = "camera.scene-change"
    case cameraDefocus = "camera.defocus"
    case cameraPerson = "camera.person"
    case cameraFace = "camera.face"
    case cameraAudio = "camera.audio"
    // the gateway's own picture health checks (spec 0004)
    case cameraImageDegraded = "camera.image-degraded"
    case cameraImageRestored = "camera.image-restored"
    // alarms
    case alarmInput = "alarm.input"
    case alarmPanic = "alarm.panic"
    case alarmFire = "alarm.fire"
    case alarmDuress = "alarm.duress"
    case alarmTamper = "alarm.tamper"
    case alarmPIR = "alarm.pir"
    // intercom
    case intercomCall = "intercom.call"
    // devices
    case deviceOnline = "device.online"
    case deviceOffline = "device.offline"
    case deviceRebooted = "device.rebooted"
    case deviceClockSkew = "device.clock-skew"
    case deviceLogGap = "device.log-gap"
    case deviceStorageError = "device.storage-error"
    // anything else; the vendor's own code stays in `attributes`
    case vendorOther = "vendor.other"

    /// The priority an event of this kind gets unless its source says otherwise.
    public var defaultPriority: Priority {
        switch self {
        // Someone where they should not be, or a camera or input made blind: a guard must look now.
        case .alarmInput, .alarmPanic, .alarmFire, .alarmDuress, .alarmTamper, .alarmPIR,
            .doorForced, .cameraTamper, .cameraIntrusion, .cameraLineCrossing, .cameraRegionEntrance,
            .cameraRegionExit, .cameraLoitering, .cameraObjectLeft, .cameraObjectRemoved, .cameraSceneChange,
            .cameraVideoLoss:
            return .alarm
        // Detections that fire all day on passers-by, and the gateway's own housekeeping.
        case .cameraMotion, .cameraDefocus, .cameraPerson, .cameraFace, .cameraAudio, .cameraImageDegraded, .cameraImageRestored, .lanePresence,
            .deviceOnline, .deviceOffline, .deviceRebooted, .deviceClockSkew, .deviceLogGap, .deviceStorageError,
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
