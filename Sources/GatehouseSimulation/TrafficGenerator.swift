import Foundation
import GatehouseCore

/// Makes plausible community traffic in the generic-JSON ingest format: vehicles at the gates,
/// card swipes at doors, the odd alarm. Deterministic for a given seed, so tests can compare.
public struct TrafficGenerator: Sendable {
    public enum Role: String, Sendable, CaseIterable {
        case lprCamera = "lpr-camera"
        case doorController = "door-controller"
        case alarmPanel = "alarm-panel"
    }

    static let provinces = ["川", "京", "沪", "粤", "浙", "苏"]
    private var state: UInt64

    public init(seed: UInt64 = 0x9E37_79B9_7F4A_7C15) { state = seed | 1 }

    mutating func next() -> UInt64 {
        // xorshift64*: cheap and reproducible, which is all a simulator needs.
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }

    mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }

    /// One event as a JSON object, with a dedup key unique to (`deviceID`, `sequence`).
    public mutating func event(role: Role, deviceID: String, sequence: Int, at date: Date = Date()) -> [String: Any] {
        let time = Timestamp(date).rfc3339
        var object: [String: Any] = ["occurredAt": time, "dedupKey": "\(deviceID)-\(sequence)"]
        switch role {
        case .lprCamera:
            let unplated = next() % 50 == 0
            object["kind"] = unplated ? "vehicle.unplated" : "vehicle.detected"
            if !unplated {
                let letters = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")
                let plate = pick(Self.provinces) + String(pick(letters)) + String(format: "%05d", Int(next() % 100_000))
                object["subject"] = ["type": "plate", "value": plate, "color": pick(["blue", "green", "yellow"])]
            }
            object["result"] = next() % 10 == 0 ? "denied" : "granted"
            object["attributes"] = ["confidence": Int(80 + next() % 20)]
        case .doorController:
            let roll = next() % 100
            if roll < 80 {
                object["kind"] = roll < 72 ? "access.granted" : "access.denied"
                object["result"] = roll < 72 ? "granted" : "denied"
                object["subject"] = ["type": "card", "value": String(format: "%010d", Int(next() % 10_000_000_000))]
                object["point"] = "door-\(1 + next() % 4)"
            } else {
                object["kind"] = pick(["door.opened", "door.closed", "door.exit-request", "door.held-open"])
                object["point"] = "door-\(1 + next() % 4)"
            }
        case .alarmPanel:
            object["kind"] = pick(["alarm.input", "alarm.panic", "alarm.tamper"])
            object["attributes"] = ["zone": Int(1 + next() % 8)]
        }
        return object
    }

    /// The JSON bytes of `events` (one object, or an array when there are several).
    public static func body(_ events: [[String: Any]]) -> [UInt8] {
        let value: Any = events.count == 1 ? events[0] : events
        return Array((try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data())
    }
}
