import Foundation
import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import GatehouseSinks

/// Everything the status log, `gatehouse status` and the metrics show, in one value.
public struct StatusReport: Sendable, Codable, Equatable {
    public struct SinkLine: Sendable, Codable, Equatable {
        public var status: SinkStatus
        /// Events this sink has still to deliver.
        public var lag: Int64
    }

    public var generatedAt: Timestamp
    public var site: String
    public var startedAt: Timestamp
    public var devices: [DeviceDirectory.Health]
    public var queue: QueueStats
    public var sinks: [SinkLine]
    /// Sinks that could not be started, with the reason.
    public var failedSinks: [String: String]
    /// Picture health per camera (device id → figures); empty when no camera has a `picture_health:` block.
    public var pictureHealth: [String: PictureHealthMonitor.CameraFigures] = [:]

    public var devicesUp: Int { devices.filter { $0.state == .up }.count }

    /// Seconds since the oldest event still waiting was received.
    public var oldestAgeSeconds: Double? {
        queue.oldestReceivedAt.map { max(0, generatedAt.seconds - $0.seconds) }
    }

    /// The periodic summary line.
    public var summaryLine: String {
        var parts: [String] = []
        let down = devices.filter { $0.state == .down }
        var deviceText = "devices \(devicesUp)/\(devices.count) up"
        if !down.isEmpty {
            let list = down.prefix(5).map { "\($0.id) since \(Self.clock($0.since)): \($0.reason ?? "down")" }
            deviceText += " (down: \(list.joined(separator: "; "))\(down.count > 5 ? "; …" : ""))"
        }
        let waiting = devices.filter { $0.state == .waiting }.count
        if waiting > 0 { deviceText += ", \(waiting) waiting for first data" }
        parts.append(deviceText)
        let age = oldestAgeSeconds.map { ", oldest \(Self.duration($0))" } ?? ""
        parts.append("queue \(queue.depth) events\(age), \(Self.bytes(queue.usedBytes)) of \(Self.bytes(queue.budgetBytes)) budget")
        if let diskFull = queue.diskFull { parts.append(diskFull) }
        let sinkText = sinks.map { line in
            let s = line.status
            let error = s.lastError.map { ", last error: \($0)" } ?? ""
            return "\(s.name) \(s.state) \(Int(s.eventsPerMinute.rounded()))/min lag \(line.lag)\(error)"
        } + failedSinks.sorted { $0.key < $1.key }.map { "\($0.key) failed: \($0.value)" }
        parts.append("sinks: " + (sinkText.isEmpty ? "none" : sinkText.joined(separator: ", ")))
        let evicted = queue.evicted.values.reduce(0, +)
        if let pictureText { parts.append(pictureText) }
        parts.append("quarantined \(queue.quarantined) (\(queue.quarantineWaiting) waiting), evicted \(evicted), duplicates \(queue.duplicates), dedup collisions \(queue.dedupCollisions), disk \(Self.bytes(queue.fileBytes))")
        return "status: " + parts.joined(separator: "; ")
    }

    /// The status line's picture health part: how many cameras, which are degraded or failing.
    var pictureText: String? {
        guard !pictureHealth.isEmpty else { return nil }
        let sorted = pictureHealth.sorted { $0.key < $1.key }
        let degraded = sorted.filter { $0.value.degraded != nil }
        let failing = sorted.filter { $0.value.failing }
        var text = "picture health \(pictureHealth.count) cameras, \(degraded.count) degraded"
        if !degraded.isEmpty {
            text += " (" + degraded.prefix(5).map { "\($0.key): \($0.value.degraded?.rawValue ?? "")" }.joined(separator: "; ") + (degraded.count > 5 ? "; …" : "") + ")"
        }
        text += ", \(failing.count) failing"
        if !failing.isEmpty {
            text += " (" + failing.prefix(5).map { "\($0.key): \($0.value.lastError ?? "")" }.joined(separator: "; ") + (failing.count > 5 ? "; …" : "") + ")"
        }
        return text
    }

    /// The human table `gatehouse status` prints.
    public var table: String {
        var lines: [String] = []
        lines.append("site \(site), up since \(startedAt.rfc3339)")
        lines.append("")
        lines.append("DEVICES \(devicesUp)/\(devices.count) up")
        for d in devices {
            let seen = d.lastSeen.map { "last seen \($0.rfc3339)" } ?? "never seen"
            lines.append("  \(Self.pad(d.id, 24)) \(Self.pad(d.state.rawValue, 7)) since \(d.since.rfc3339)  \(seen)  \(d.reason ?? "")")
            if let detail = d.detail, !detail.isEmpty {
                lines.append("    " + detail.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  "))
            }
            if let l = d.liveness {
                let success = l.lastSuccessAt.map { "last success \($0.rfc3339)" } ?? "no success yet"
                let problem = l.lastProblem.map { "\($0): " } ?? ""
                let withheld = l.credentialsWithheld ? "  credentials refused, withheld" : ""
                lines.append("  \(Self.pad("", 24)) liveness \(l.probe), \(success), last: \(problem)\(l.lastResult ?? "-")\(withheld)")
            }
        }
        lines.append("")
        let age = oldestAgeSeconds.map(Self.duration) ?? "-"
        lines.append("QUEUE depth \(queue.depth), oldest \(age), \(Self.bytes(queue.usedBytes)) of \(Self.bytes(queue.budgetBytes)), file \(Self.bytes(queue.fileBytes))")
        lines.append("  quarantined \(queue.quarantined) (\(queue.quarantineWaiting) waiting)  duplicates \(queue.duplicates)  dedup collisions \(queue.dedupCollisions)")
        if let diskFull = queue.diskFull { lines.append("  \(diskFull)") }
        lines.append("  evicted " + queue.evicted.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        lines.append("")
        lines.append("SINKS")
        for line in sinks {
            let s = line.status
            lines.append("  \(Self.pad(s.name, 16)) \(Self.pad(s.type, 8)) \(Self.pad(s.state, 12)) \(Int(s.eventsPerMinute.rounded()))/min  lag \(line.lag)  delivered \(s.deliveredEvents)  \(s.lastError.map { "last error: \($0)" } ?? "")")
        }
        for (name, reason) in failedSinks.sorted(by: { $0.key < $1.key }) { lines.append("  \(Self.pad(name, 16)) failed: \(reason)") }
        if !pictureHealth.isEmpty {
            lines.append("")
            lines.append("PICTURE HEALTH \(pictureHealth.values.filter { $0.degraded != nil }.count)/\(pictureHealth.count) degraded")
            lines.append("  \(Self.pad("camera", 24)) \(Self.pad("state", 18)) sharpness (baseline, limit)  brightness  change  snapshots  failures  last snapshot")
            for (id, f) in pictureHealth.sorted(by: { $0.key < $1.key }) {
                let s = f.lastScores
                let sharpness = s.map { Self.number($0.sharpness) } ?? "-"
                let reference = "(\(f.baseline.map(Self.number) ?? "learning"), \(f.sharpnessLimit.map(Self.number) ?? "-"))"
                let since = f.degradedSince.map { " since \($0.rfc3339)" } ?? ""
                lines.append(
                    "  \(Self.pad(id, 24)) \(Self.pad(f.state, 18)) \(Self.pad(sharpness + " " + reference, 28)) \(Self.pad(s.map { Self.number($0.brightness) } ?? "-", 11)) "
                        + "\(Self.pad(s?.change.map(Self.number) ?? "-", 7)) \(Self.pad("\(f.snapshots)", 10)) \(Self.pad("\(f.failures)", 9)) \(f.lastSnapshotAt?.rfc3339 ?? "never")\(since)")
                if let error = f.lastError, let at = f.lastErrorAt {
                    lines.append("  \(Self.pad("", 24)) last error \(at.rfc3339): \(error)")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func clock(_ time: Timestamp) -> String {
        let text = time.rfc3339
        return String(text.dropFirst(11).prefix(8))
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 120 { return "\(Int(seconds)) s" }
        if seconds < 7200 { return "\(Int(seconds / 60)) min" }
        return String(format: "%.1f h", seconds / 3600)
    }

    static func bytes(_ value: Int64) -> String {
        let v = Double(value)
        let units: [(String, Double)] = [("GiB", 1_073_741_824), ("MiB", 1_048_576), ("KiB", 1024)]
        for (unit, size) in units where v >= size { return String(format: "%.1f \(unit)", v / size) }
        return "\(value) B"
    }
}
