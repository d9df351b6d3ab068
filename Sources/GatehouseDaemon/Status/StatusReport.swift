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
        parts.append("quarantined \(queue.quarantined) (\(queue.quarantineWaiting) waiting), evicted \(evicted), duplicates \(queue.duplicates), dedup collisions \(queue.dedupCollisions), disk \(Self.bytes(queue.fileBytes))")
        return "status: " + parts.joined(separator: "; ")
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
        return lines.joined(separator: "\n")
    }

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
