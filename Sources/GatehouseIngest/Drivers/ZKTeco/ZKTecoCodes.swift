import GatehouseCore

// ZKTeco PUSH code tables. Sources:
// - rtlog event codes and verify modes: github honghaijs6/PushSDK
//   `src/middleware/iclock/ultils/constants.js`; PyPI zkteco-push-python-sdk 1.1.0 `ZKTECO_CONST.py`.
// - OPERLOG alarm objects (op 3): PyPI iclockhelper 0.0.4 `models.py`.
// - rtstate sensor/relay/alarm values: PushSDK `constants.js`, BioMetrixCore `ListenClient`.

/// How a person proved who they are, as ATTLOG `verify` and rtlog `verifytype` write it.
enum ZKTecoVerifyMode {
    /// The name kept in `attributes.verifyMode`; firmware-dependent codes not listed here are `other`.
    static func name(_ code: Int) -> String {
        switch code {
        case 0: "password"
        case 1: "fingerprint"
        case 2, 4: "card"
        case 6: "fingerprint-or-card"
        case 10: "card-and-fingerprint"
        case 15: "face"
        case 25: "palm"
        default: "other"
        }
    }
}

/// The attendance state an ATTLOG punch carries; many terminals always send 0 or 255.
enum ZKTecoAttendanceStatus {
    static func name(_ code: Int) -> String? {
        switch code {
        case 0: "check-in"
        case 1: "check-out"
        case 2: "break-out"
        case 3: "break-in"
        case 4: "overtime-in"
        case 5: "overtime-out"
        default: nil  // 255: not chosen
        }
    }
}

/// What one access-dialect rtlog `event` code means for the schema.
struct ZKTecoEventMapping: Equatable {
    var kind: EventKind
    var result: AccessResult?
    /// The vendor's meaning, kept as `attributes.reason` (the notes' "reason = code").
    var reason: String?
}

/// The rtlog event code table (access dialect).
enum ZKTecoEventCode {
    static func mapping(_ code: Int) -> ZKTecoEventMapping {
        if let reason = deniedReasons[code] { return ZKTecoEventMapping(kind: .accessDenied, result: .denied, reason: reason) }
        if let reason = grantedReasons[code] { return ZKTecoEventMapping(kind: .accessGranted, result: .granted, reason: reason) }
        switch code {
        case 8: return ZKTecoEventMapping(kind: .doorRemoteOpen, reason: "remote-open")
        case 9: return ZKTecoEventMapping(kind: .doorRemoteClose, reason: "remote-close")
        case 28: return ZKTecoEventMapping(kind: .doorHeldOpen, reason: "door-open-timeout")
        case 100: return ZKTecoEventMapping(kind: .alarmTamper, reason: "tamper")
        case 101: return ZKTecoEventMapping(kind: .alarmDuress, reason: "duress-open")
        case 102: return ZKTecoEventMapping(kind: .doorForced, reason: "opened-forcefully")
        case 200: return ZKTecoEventMapping(kind: .doorOpened, reason: "door-opened")
        case 201: return ZKTecoEventMapping(kind: .doorClosed, reason: "door-closed")
        case 202: return ZKTecoEventMapping(kind: .doorExitRequest, reason: "exit-button-open")
        case 209: return ZKTecoEventMapping(kind: .doorExitRequest, reason: "exit-button-locked")
        case 206: return ZKTecoEventMapping(kind: .deviceRebooted, reason: "device-started")
        case 105: return ZKTecoEventMapping(kind: .deviceOffline, reason: "server-connection-lost")
        case 214, 700: return ZKTecoEventMapping(kind: .deviceOnline, reason: "server-connected")
        default: return ZKTecoEventMapping(kind: .vendorOther)
        }
    }

    static let grantedReasons: [Int: String] = [
        0: "normal-verify-open", 1: "verify-during-passage-mode", 2: "first-person-open", 3: "multi-person-open",
        4: "emergency-password-open", 5: "passage-mode-open",
    ]

    static let deniedReasons: [Int: String] = [
        20: "too-short-interval", 21: "door-inactive-time-zone", 22: "illegal-time-zone", 23: "access-denied",
        24: "anti-passback", 25: "interlock", 26: "multi-person-wait", 27: "unregistered", 29: "expired",
        38: "card-lost", 39: "blacklisted", 41: "verify-mode-error", 42: "wiegand-format-error",
        44: "background-verify-failed", 45: "background-verify-timeout", 48: "multi-person-failed",
    ]
}

/// OPERLOG `OPLOG` records: op 3 is an alarm whose `object` says which.
enum ZKTecoOperationCode {
    static let alarm = 3

    static func alarmMapping(object: Int) -> ZKTecoEventMapping? {
        switch object {
        case 50: ZKTecoEventMapping(kind: .doorClosed, reason: "door-closed")
        case 51: ZKTecoEventMapping(kind: .doorOpened, reason: "door-opened")
        case 53: ZKTecoEventMapping(kind: .doorExitRequest, reason: "exit-button")
        case 54: ZKTecoEventMapping(kind: .doorForced, reason: "door-opened-unexpectedly")
        case 55: ZKTecoEventMapping(kind: .alarmTamper, reason: "device-tampered")
        case 58: ZKTecoEventMapping(kind: .accessDenied, result: .denied, reason: "repeated-invalid-verification")
        case 65535: ZKTecoEventMapping(kind: .vendorOther, reason: "alarm-cleared")
        default: nil
        }
    }
}

/// rtstate per-door values.
enum ZKTecoDoorState {
    /// Door sensor: 0 no sensor, 1 closed, 2 open.
    static let sensorClosed = 1
    static let sensorOpen = 2
    /// Alarm bit flags and the kind each becomes when it is newly set.
    static let alarmBits: [(bit: Int, kind: EventKind, reason: String)] = [
        (1, .doorForced, "forced"), (2, .alarmTamper, "tamper"), (4, .alarmDuress, "duress-password"),
        (8, .alarmDuress, "duress-fingerprint"), (16, .vendorOther, "door-sensor-alarm"),
    ]
}
