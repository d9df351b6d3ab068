import Foundation
import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import Prometheus
import Synchronization

/// Gathers the figures of every part into one `StatusReport`, mirrors them as Prometheus
/// metrics and answers the readiness probe.
final class StatusCollector: Sendable {
    let queue: EventQueue
    let devices: DeviceDirectory
    let sinks: SinkSupervisor
    let registry: PrometheusCollectorRegistry
    let site: String
    /// Picture health's per-camera figures; nil in tests that run without it.
    let pictureHealth: PictureHealthMonitor?
    let startedAt: Timestamp
    /// Listener name → the address it is bound to, once it is.
    private let listeners = Mutex<[String: String]>([:])
    /// Listeners the daemon must have bound before it is ready.
    static let requiredListeners = ["ingest", "admin"]
    /// What each persisted counter was last exported as, so the Prometheus counter only grows by the difference.
    private let exportedCounts = Mutex<[String: Int64]>([:])
    /// Devices with a `gatehouse_device_up` series, so a reload that removes one also removes its series.
    private let exportedDevices = Mutex<Set<String>>([])

    init(queue: EventQueue, devices: DeviceDirectory, sinks: SinkSupervisor, registry: PrometheusCollectorRegistry, site: String,
        pictureHealth: PictureHealthMonitor? = nil
    ) {
        self.queue = queue
        self.devices = devices
        self.sinks = sinks
        self.registry = registry
        self.site = site
        self.pictureHealth = pictureHealth
        // Stamps only (the report's time and uptime shown to the operator): no decision reads them.
        self.startedAt = .now
        registry.makeGauge(
            descriptor: Self.describe("gatehouse_build_info", "Always 1; the version label says which release runs"),
            labels: [("version", GatehouseVersion.current)]
        ).set(Int64(1))
    }

    /// A full metric name with its help text, as swift-prometheus wants it.
    static func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    func listenerBound(_ name: String, address: String) { listeners.withLock { $0[name] = address } }

    func report() async throws -> StatusReport {
        var lines: [StatusReport.SinkLine] = []
        for status in sinks.statuses {
            lines.append(.init(status: status, lag: try await queue.lag(sink: status.name)))
        }
        let report = StatusReport(
            generatedAt: .now, site: site, startedAt: startedAt, devices: devices.healthSnapshot,
            queue: try await queue.stats(), sinks: lines, failedSinks: sinks.failed, pictureHealth: pictureHealth?.allFigures ?? [:])
        export(report)
        return report
    }

    func metricsText() async throws -> String {
        _ = try await report()
        return registry.emitToString()
    }

    /// `GET /readyz`: ready once the queue answers and every listener is bound; what works
    /// but not fully (devices down, sinks failing) is listed without making the gateway unready,
    /// since it still takes and keeps events.
    func readiness() async -> Readiness {
        var readiness = Readiness(ready: true, listeners: listeners.withLock { $0 }, queue: "open", degraded: [])
        for name in Self.requiredListeners where readiness.listeners[name] == nil {
            readiness.ready = false
            readiness.degraded.append("\(name) listener not bound yet")
        }
        do {
            let report = try await report()
            if let diskFull = report.queue.diskFull {
                // Events cannot be taken: not ready, though deliveries (which free space) go on.
                readiness.ready = false
                readiness.queue = diskFull
                readiness.degraded.append(diskFull)
            }
            for device in report.devices where device.state == .down {
                readiness.degraded.append("device \(device.id) down: \(device.reason ?? "unknown reason")")
            }
            for line in report.sinks where line.status.lastError != nil {
                readiness.degraded.append("sink \(line.status.name) \(line.status.state): \(line.status.lastError ?? "")")
            }
            for (name, reason) in report.failedSinks.sorted(by: { $0.key < $1.key }) {
                readiness.degraded.append("sink \(name) not running: \(reason)")
            }
        } catch {
            readiness.ready = false
            readiness.queue = "not answering: \(error)"
            readiness.degraded.append("queue not answering")
        }
        return readiness
    }

    private func export(_ report: StatusReport) {
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            registry.makeGauge(descriptor: Self.describe(name, help), labels: labels).set(value)
        }
        // The queue keeps these counts across restarts; the Prometheus counter follows them.
        func counter(_ name: String, _ help: String, _ value: Int64, _ labels: [(String, String)] = []) {
            let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
            let delta = exportedCounts.withLock { exported -> Int64 in
                let delta = max(0, value - (exported[key] ?? 0))
                exported[key] = max(value, exported[key] ?? 0)
                return delta
            }
            let metric = registry.makeCounter(descriptor: Self.describe(name, help), labels: labels)
            if delta > 0 { metric.increment(by: delta) }
        }
        gauge("gatehouse_devices_configured", "Configured and enabled devices", Double(report.devices.count))
        gauge("gatehouse_devices_up", "Devices currently up", Double(report.devicesUp))
        let deviceHelp = "1 when the device is up, 0 when down or waiting for its first data"
        for device in report.devices {
            gauge("gatehouse_device_up", deviceHelp, device.state == .up ? 1 : 0, [("device", device.id)])
        }
        let current = Set(report.devices.map(\.id))
        let removed = exportedDevices.withLock { exported -> Set<String> in
            defer { exported = current }
            return exported.subtracting(current)
        }
        for id in removed {
            registry.unregisterGauge(registry.makeGauge(descriptor: Self.describe("gatehouse_device_up", deviceHelp), labels: [("device", id)]))
        }
        let q = report.queue
        gauge("gatehouse_queue_depth_events", "Events not yet delivered by every sink", Double(q.depth))
        gauge("gatehouse_queue_oldest_age_seconds", "Age of the oldest queued event", report.oldestAgeSeconds ?? 0)
        gauge("gatehouse_queue_used_bytes", "Bytes counted against the disk budget", Double(q.usedBytes))
        gauge("gatehouse_queue_budget_bytes", "The disk budget", Double(q.budgetBytes))
        gauge("gatehouse_queue_file_bytes", "SQLite file and WAL size", Double(q.fileBytes))
        gauge("gatehouse_queue_disk_full", "1 while the file system holding the queue is full and appends get 503", q.diskFull == nil ? 0 : 1)
        gauge("gatehouse_queue_waiting_appends", "Appends waiting for the group commit", Double(q.waitingAppends ?? 0))
        counter("gatehouse_quarantined_total", "Payloads quarantined since the queue was created", q.quarantined)
        gauge("gatehouse_quarantine_waiting", "Quarantined payloads not replayed", Double(q.quarantineWaiting))
        counter("gatehouse_duplicates_total", "Re-sent events recognised and stored once, since the queue was created", q.duplicates)
        counter("gatehouse_dedup_collisions_total", "Events stored although their dedup key repeated, because their content differed", q.dedupCollisions)
        for (priority, count) in q.evicted {
            counter("gatehouse_evicted_total", "Events evicted to stay within the disk budget, since the queue was created", count, [("priority", priority)])
        }
        for line in report.sinks {
            let name = line.status.name
            gauge("gatehouse_sink_lag_events", "Events a sink has still to deliver", Double(line.lag), [("sink", name)])
            gauge("gatehouse_sink_events_per_minute", "Events delivered over the last minute", line.status.eventsPerMinute, [("sink", name)])
            gauge("gatehouse_sink_failing", "1 while the sink's last attempt failed", line.status.lastError == nil ? 0 : 1, [("sink", name)])
        }
    }
}

/// The body of `GET /readyz`.
struct Readiness: Codable, Sendable {
    var ready: Bool
    /// Listener name → bound address.
    var listeners: [String: String]
    var queue: String
    /// Why the gateway is not ready, or what works only partly.
    var degraded: [String]
}
