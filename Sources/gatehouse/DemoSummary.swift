import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseSimulation

/// The closing summary of `gatehouse demo`: what was sent, stored and delivered, and each part
/// of the story with the figures and times that show it happened.
struct DemoSummary {
    var seconds: Double
    var story: DemoStory.Record
    var fleet: DeviceFleet.Tally
    var centre: CentralReceiver.Snapshot
    var files: [(String, String)]

    var text: String {
        var lines = ["", "demo summary after \(Int(seconds.rounded())) s (times UTC)"]
        func line(_ label: String, _ text: String) {
            lines.append("  " + label.padding(toLength: 12, withPad: " ", startingAt: 0) + text)
        }
        let status = story.latestStatus
        line("traffic", "devices sent \(fleet.sent) events, the gateway acknowledged \(fleet.acknowledged) (refused \(fleet.refused), failed \(fleet.failed))")
        if let status {
            line("stored", "\(status.queue.committedEvents) events committed to the queue (the story's own and the gateway's device.online/offline among them)")
        }
        let outbox = status?.sinks.first { $0.status.name == "outbox" }?.status.deliveredEvents
        line("delivered", "centre \(centre.uniqueCount) events (\(centre.duplicateCount) received more than once)\(outbox.map { ", outbox \($0)" } ?? "")")
        line("device", deviceText)
        line("outage", outageText)
        if let quarantine = story.quarantine {
            line("quarantine", "1 payload: entry \(quarantine.id), reason: \(quarantine.reason)")
        } else {
            line("quarantine", "not shown")
        }
        var dedup = status.map { "duplicates \($0.queue.duplicates), dedup collisions \($0.queue.dedupCollisions)" } ?? "no status read"
        if let retry = story.retry {
            dedup += retry.duplicate ? "; the re-sent record was stored once (\(retry.id))" : "; the re-sent record was not recognised"
            if let collision = retry.collisionID { dedup += ", the reused record id stored as \(collision)" }
        }
        line("dedup", dedup)
        for (name, path) in files { line(name, path) }
        if !story.missing.isEmpty {
            lines.append("  not seen:")
            lines += story.missing.map { "    - \($0)" }
        }
        return lines.joined(separator: "\n")
    }

    private var deviceText: String {
        let device = DemoConfig.storyDevice
        guard let silenced = story.silencedAt else { return "\(device) stayed up (the story did not reach it)" }
        var text = "\(device) stopped sending at \(Self.clock(silenced))"
        if let down = story.downAt {
            text += ", reported down at \(Self.clock(down)) (\(story.downReason ?? "no reason"))"
        } else {
            text += ", not reported down"
        }
        text += story.upAt.map { ", up again at \(Self.clock($0))" } ?? ", not reported up again"
        return text
    }

    private var outageText: String {
        guard let from = story.outageFrom else { return "none (the story did not reach it)" }
        guard let until = story.outageUntil else { return "the centre went down at \(Self.clock(from)) and the run ended first" }
        let backlog = story.backlog
        let alarms = backlog.filter { $0 == .alarm }.count
        var text = "centre down \(Self.clock(from))–\(Self.clock(until)); \(backlog.count) events waited on disk and arrived as \(DemoStory.runs(backlog))"
        if alarms == 0 {
            text += ": no alarm waited"
        } else {
            text += DemoStory.alarmsFirst(backlog) ? ": alarms first" : ": NOT alarms first"
        }
        return text
    }

    static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: date)
    }
}
