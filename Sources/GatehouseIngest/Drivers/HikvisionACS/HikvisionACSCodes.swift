import GatehouseCore

// Hikvision access-control (major, minor) code table. Sources: the HCNetSDK `NET_DVR_ACS_ALARM_INFO`
// tables (MAJOR_ALARM 0x1, MAJOR_OPERATION 0x3, MAJOR_EVENT 0x5 minor codes in the HCNetSDK Java/C#
// constant files) and node-red-contrib-hikvision-ultimate
// `nodes/utils/AccessControlEvents/*.json`. Minor codes overlap between majors, so the key is always the pair.

/// What one (major, minor) pair means for the schema.
struct HikvisionACSMapping: Equatable {
    var kind: EventKind
    var result: AccessResult?
    /// The vendor's meaning, kept as `attributes.reason`.
    var reason: String
    /// How the person proved who they are, for passes and refusals (`attributes.method`).
    var method: String?
}

enum HikvisionACSCodes {
    static let majorAlarm = 1
    static let majorOperation = 3
    static let majorEvent = 5

    /// The mapping of a pair; nil for codes this driver does not turn into events (kept as `vendor.other`).
    static func mapping(major: Int, minor: Int) -> HikvisionACSMapping? {
        switch major {
        case majorEvent:
            if let (reason, method) = granted[minor] {
                return HikvisionACSMapping(kind: .accessGranted, result: .granted, reason: reason, method: method)
            }
            if let (reason, method) = denied[minor] {
                return HikvisionACSMapping(kind: .accessDenied, result: .denied, reason: reason, method: method)
            }
            switch minor {
            case 0x15: return HikvisionACSMapping(kind: .doorUnlocked, reason: "lock-relay-opened")
            case 0x16: return HikvisionACSMapping(kind: .doorLocked, reason: "lock-relay-closed")
            case 0x17: return HikvisionACSMapping(kind: .doorExitRequest, reason: "exit-button")
            case 0x19: return HikvisionACSMapping(kind: .doorOpened, reason: "door-sensor-open")
            case 0x1a: return HikvisionACSMapping(kind: .doorClosed, reason: "door-sensor-closed")
            case 0x1b: return HikvisionACSMapping(kind: .doorForced, reason: "door-opened-abnormally")
            case 0x1c: return HikvisionACSMapping(kind: .doorHeldOpen, reason: "door-open-timeout")
            case 0x25: return HikvisionACSMapping(kind: .intercomCall, reason: "doorbell")
            default: return nil
            }
        case majorAlarm:
            switch minor {
            case 0x404: return HikvisionACSMapping(kind: .alarmTamper, reason: "host-tamper")
            case 0x406: return HikvisionACSMapping(kind: .alarmTamper, reason: "reader-tamper")
            // HCNetSDK MINOR_DURESS_ALARM (0x40d) under MAJOR_ALARM.
            case 0x40d: return HikvisionACSMapping(kind: .alarmDuress, reason: "duress")
            default: return nil
            }
        case majorOperation:
            switch minor {
            // HCNetSDK MINOR_REMOTE_OPEN_DOOR / MINOR_REMOTE_CLOSE_DOOR.
            case 0x400: return HikvisionACSMapping(kind: .doorRemoteOpen, reason: "remote-open")
            case 0x401: return HikvisionACSMapping(kind: .doorRemoteClose, reason: "remote-close")
            default: return nil
            }
        default:
            return nil
        }
    }

    /// MAJOR_EVENT passes: minor → (reason, method).
    static let granted: [Int: (String, String)] = [
        0x01: ("valid-card", "card"), 0x02: ("card-and-password", "card"),
        0x26: ("fingerprint", "fingerprint"), 0x28: ("fingerprint-and-password", "fingerprint"),
        0x2b: ("fingerprint-and-card", "fingerprint"), 0x2e: ("fingerprint-and-card-and-password", "fingerprint"),
        0x45: ("fingerprint-and-employee-no", "fingerprint"), 0x48: ("fingerprint-and-employee-no-and-password", "fingerprint"),
        0x4b: ("face", "face"), 0x36: ("face-and-fingerprint", "face"), 0x39: ("face-and-password", "face"),
        0x3c: ("face-and-card", "face"), 0x3f: ("face-and-password-and-fingerprint", "face"),
        0x42: ("face-and-card-and-fingerprint", "face"), 0x4d: ("face-and-employee-no", "face"),
        0x65: ("employee-no-and-password", "password"),
    ]

    /// MAJOR_EVENT refusals: minor → (reason, method).
    static let denied: [Int: (String, String)] = [
        0x03: ("card-and-password-failed", "card"), 0x04: ("card-and-password-timeout", "card"),
        0x06: ("no-right", "card"), 0x07: ("invalid-period", "card"), 0x08: ("card-expired", "card"),
        0x09: ("unknown-card", "card"), 0x0a: ("anti-passback", "card"), 0x0b: ("interlock", "card"),
        0x27: ("fingerprint-not-matched", "fingerprint"), 0x4c: ("face-verify-failed", "face"),
        0x50: ("face-not-recognised", "face"),
    ]
}
