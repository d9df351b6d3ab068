import Foundation

/// What the config says about one point (lane, channel, door) of a device: a two-lane camera
/// watches an entry lane and an exit lane, so the direction belongs to the point, not the device.
public struct PointConfig: Sendable, Equatable {
    /// `in` or `out`; nil falls back to the device's `direction`.
    public var direction: Direction?
    /// The name events carry in `point` instead of the vendor's code (`lane-2` → `east-out`).
    public var name: String?

    public init(direction: Direction? = nil, name: String? = nil) {
        self.direction = direction
        self.name = name
    }
}

extension DeviceConfig {
    /// The point an event reports (`reported`, else the device's `point`) resolved against
    /// `points:`: the name to write and the direction of that lane.
    public func resolvePoint(_ reported: String?) -> (point: String?, direction: Direction?) {
        let point = reported ?? self.point
        let configured = point.flatMap { points[$0] }
        return (configured?.name ?? point, configured?.direction ?? direction)
    }
}

extension ConfigLoader {
    /// `points: {lane-1: {direction: in}, lane-2: {direction: out, name: east-out}}`, keyed by the
    /// point as the driver or profile reports it.
    static func readPoints(_ map: YAMLMapping?) -> [String: PointConfig] {
        guard let map else { return [:] }
        defer { map.finish() }
        var points: [String: PointConfig] = [:]
        var names: [String: String] = [:]
        for key in map.keys {
            guard let node = map.node(key) else { continue }
            if key.trimmingCharacters(in: .whitespaces).isEmpty {
                map.log.report(node, key: map.join(key), "empty point (expected the point as the device reports it, e.g. lane-1)")
                continue
            }
            guard let entry = YAMLMapping(node, path: map.join(key), log: map.log) else { continue }
            defer { entry.finish() }
            let point = PointConfig(
                direction: entry.choice("direction", default: nil),
                name: entry.string("name", expected: "the name events carry for this point, e.g. east-lane-in"))
            if !entry.has("direction"), !entry.has("name") {
                map.log.report(node, key: map.join(key), "nothing configured for this point (expected direction: in|out and/or name: …)")
            }
            if let name = point.name {
                if name.isEmpty {
                    entry.log.report(entry.node("name"), key: entry.join("name"), "empty name (leave name out to keep '\(key)')")
                } else if let other = names[name] {
                    entry.log.report(entry.node("name"), key: entry.join("name"), "name '\(name)' is already used by point '\(other)' (each point needs its own name)")
                } else {
                    names[name] = key
                }
            }
            points[key] = point
        }
        return points
    }
}
