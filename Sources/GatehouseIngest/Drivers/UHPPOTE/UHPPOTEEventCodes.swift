import Foundation
import GatehouseCore

/// How one controller event record maps onto the event schema.
///
/// Source: uhppote-core `messages/get_event.go` (event types 0x00–0x03, 0xFF; reason codes 1–45
/// with the vendor's own words) and the protocol notes summarised in Drivers/UHPPOTE/README.md.
/// Deviations from the notes, because the schema's kind list is closed: 41 "guard against theft"
/// and 42 "7×24 h zone" become `alarm.input` (both are input-driven alarms) and 43 "emergency
/// call" becomes `alarm.panic`; the vendor code stays in the attributes either way.
public enum UHPPOTEEventCodes {
    /// What a reason code means.
    public struct Meaning: Sendable, Equatable {
        public var kind: EventKind
        /// The vendor's words, kept as `attributes.reason`.
        public var text: String
        /// For exit requests the controller ignored (30–33).
        public var result: AccessResult?
    }

    /// Reason code (byte 27) → meaning. Swipe records (type 1) take granted/denied from byte 13.
    public static let reasons: [UInt8: Meaning] = [
        1: Meaning(kind: .accessGranted, text: "swipe"),
        5: Meaning(kind: .accessDenied, text: "denied: PC control"),
        6: Meaning(kind: .accessDenied, text: "denied: no privilege"),
        7: Meaning(kind: .accessDenied, text: "denied: wrong password"),
        8: Meaning(kind: .accessDenied, text: "denied: anti-passback"),
        9: Meaning(kind: .accessDenied, text: "denied: more cards required"),
        10: Meaning(kind: .accessDenied, text: "denied: first card open"),
        11: Meaning(kind: .accessDenied, text: "denied: door set normally closed"),
        12: Meaning(kind: .accessDenied, text: "denied: interlock"),
        13: Meaning(kind: .accessDenied, text: "denied: limited times"),
        15: Meaning(kind: .accessDenied, text: "denied: invalid time zone"),
        18: Meaning(kind: .accessDenied, text: "denied"),
        20: Meaning(kind: .doorExitRequest, text: "push button"),
        23: Meaning(kind: .doorOpened, text: "door open"),
        24: Meaning(kind: .doorClosed, text: "door closed"),
        25: Meaning(kind: .accessGranted, text: "super password open door", result: .granted),
        28: Meaning(kind: .deviceRebooted, text: "controller power on"),
        29: Meaning(kind: .deviceRebooted, text: "controller reset"),
        30: Meaning(kind: .doorExitRequest, text: "push button invalid: task", result: .denied),
        31: Meaning(kind: .doorExitRequest, text: "push button invalid: forced lock", result: .denied),
        32: Meaning(kind: .doorExitRequest, text: "push button invalid: not on line", result: .denied),
        33: Meaning(kind: .doorExitRequest, text: "push button invalid: interlock", result: .denied),
        34: Meaning(kind: .alarmDuress, text: "threat"),
        37: Meaning(kind: .doorHeldOpen, text: "open too long"),
        38: Meaning(kind: .doorForced, text: "forced open"),
        39: Meaning(kind: .alarmFire, text: "fire"),
        40: Meaning(kind: .alarmTamper, text: "forced close"),
        41: Meaning(kind: .alarmInput, text: "guard against theft"),
        42: Meaning(kind: .alarmInput, text: "7x24 hour zone"),
        43: Meaning(kind: .alarmPanic, text: "emergency call"),
        44: Meaning(kind: .doorRemoteOpen, text: "remote open door"),
        45: Meaning(kind: .doorRemoteOpen, text: "remote open door by USB reader"),
    ]

    /// The draft for one log record; nil for "no record" (0x00) and "overwritten" (0xFF) slots.
    public static func draft(for record: UHPPOTEEventRecord, serial: UInt32, zone: TimeZone) -> EventDraft? {
        guard record.type != UHPPOTEEventRecord.Kind.none, record.type != UHPPOTEEventRecord.Kind.overwritten else { return nil }
        let meaning = reasons[record.reason]
        var kind = meaning?.kind ?? .vendorOther
        var result = meaning?.result
        var subject: Subject?
        if record.type == UHPPOTEEventRecord.Kind.swipe {
            // Byte 13 is the truth for card swipes, whatever the reason code says.
            kind = record.granted ? .accessGranted : .accessDenied
            result = record.granted ? .granted : .denied
            if record.card != 0 { subject = Subject(type: .card, value: String(record.card)) }
        } else if kind == .accessGranted || kind == .accessDenied {
            result = kind == .accessGranted ? .granted : .denied
        }
        var attributes: [String: JSONValue] = [
            "eventIndex": .number(Double(record.index)), "eventType": .number(Double(record.type)),
            "reasonCode": .number(Double(record.reason)), "serial": .string(String(serial)),
        ]
        attributes["reason"] = .string(meaning?.text ?? "unknown reason \(record.reason)")
        if record.reason == 25 { attributes["credential"] = .string("super-password") }
        let direction: Direction? =
            switch record.direction {
            case 1: .in
            case 2: .out
            default: nil  // uhppote-core documents 1/2 only; anything else is unknown
            }
        return EventDraft(
            kind: kind, occurredAt: record.timestamp?.timestamp(in: zone),
            deviceTime: record.timestamp?.description ?? record.unreadableTime?.text,
            point: (1...4).contains(record.door) ? "door-\(record.door)" : nil, direction: direction, subject: subject,
            result: result, attributes: attributes, dedupKey: dedupKey(serial: serial, index: record.index),
            timeIssue: record.unreadableTime?.reason)
    }

    /// How the console's device page shows a log record (`consoleText`).
    public static let consoleContentType = "text/plain; uhppote get-event reply, card bytes left out"

    /// A log record's reply as the console's "last raw payload": the 64 bytes in hex with the
    /// card's four left out (in hex they would escape the privacy policy, which recognises a card
    /// by the digits the mapping read), then the fields, where the policy replaces the card.
    public static func consoleText(frame: [UInt8], record: UHPPOTEEventRecord) -> String {
        let card = UHPPOTELayout.Event.card..<(UHPPOTELayout.Event.card + 4)
        let hex = frame.indices.map { card.contains($0) ? "··" : String(format: "%02x", frame[$0]) }
        let rows = stride(from: 0, to: hex.count, by: 16).map { hex[$0..<min($0 + 16, hex.count)].joined(separator: " ") }
        let direction = record.direction == 1 ? "in" : record.direction == 2 ? "out" : "direction \(record.direction)"
        let time = record.timestamp?.description ?? record.unreadableTime?.text ?? "no time"
        let fields = [
            "index \(record.index)", "type \(record.type)", record.granted ? "granted" : "not granted", "door \(record.door)",
            direction, "card \(record.card)", time, "reason \(record.reason) (\(reasons[record.reason]?.text ?? "unknown"))",
        ]
        return rows.joined(separator: "\n") + "\n" + fields.joined(separator: ", ")
    }

    /// The per-record key the queue dedupes on: a record re-read after a crash is stored once.
    public static func dedupKey(serial: UInt32, index: UInt32) -> String { "\(serial):\(index)" }
}
