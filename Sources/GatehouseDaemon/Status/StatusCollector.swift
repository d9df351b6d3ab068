import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import Prometheus

/// Gathers the figures of every part into one `StatusReport` and mirrors them as Prometheus gauges.
final class StatusCollector: Sendable {
    let queue: EventQueue
    let devices: DeviceDirectory
    let sinks: SinkSupervisor
    let registry: PrometheusCollectorRegistry
    let site: String
    let startedAt: Timestamp

    init(queue: EventQueue, devices: DeviceDirectory, sinks: SinkSupervisor, registry: PrometheusCollectorRegistry, site: String) {
        self.queue = queue
        self.devices = devices
        self.sinks = sinks
        self.registry = registry
        self.site = site
        self.startedAt = .now
    }

    func report() async throws -> StatusReport {
        var lines: [StatusReport.SinkLine] = []
        for status in sinks.statuses {
            lines.append(.init(status: status, lag: try await queue.lag(sink: status.name)))
        }
        let report = StatusReport(
            generatedAt: .now, site: site, startedAt: startedAt, devices: devices.healthSnapshot,
            queue: try await queue.stats(), sinks: lines, failedSinks: sinks.failed)
        export(report)
        return report
    }

    func metricsText() async throws -> String {
        _ = try await report()
        return registry.emitToString()
    }

    private func export(_ report: StatusReport) {
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            registry.makeGauge(name: name, labels: labels, help: help).set(value)
        }
        gauge("gatehouse_devices_total", "Configured devices", Double(report.devices.count))
        gauge("gatehouse_devices_up", "Devices currently up", Double(report.devicesUp))
        for device in report.devices {
            gauge("gatehouse_device_up", "1 when the device is up", device.state == .up ? 1 : 0, [("device", device.id)])
        }
        let q = report.queue
        gauge("gatehouse_queue_depth_events", "Events not yet delivered by every sink", Double(q.depth))
        gauge("gatehouse_queue_oldest_age_seconds", "Age of the oldest queued event", report.oldestAgeSeconds ?? 0)
        gauge("gatehouse_queue_used_bytes", "Bytes counted against the disk budget", Double(q.usedBytes))
        gauge("gatehouse_queue_budget_bytes", "The disk budget", Double(q.budgetBytes))
        gauge("gatehouse_queue_file_bytes", "SQLite file and WAL size", Double(q.fileBytes))
        gauge("gatehouse_quarantined_total", "Payloads quarantined since the queue was created", Double(q.quarantined))
        gauge("gatehouse_quarantine_waiting", "Quarantined payloads not replayed", Double(q.quarantineWaiting))
        gauge("gatehouse_duplicates_total", "Re-sent events recognised and stored once", Double(q.duplicates))
        gauge("gatehouse_dedup_collisions_total", "Events stored although their dedup key repeated, because their content differed", Double(q.dedupCollisions))
        for (priority, count) in q.evicted {
            gauge("gatehouse_evicted_total", "Events evicted to stay within the disk budget", Double(count), [("priority", priority)])
        }
        for line in report.sinks {
            let name = line.status.name
            gauge("gatehouse_sink_lag_events", "Events a sink has still to deliver", Double(line.lag), [("sink", name)])
            gauge("gatehouse_sink_events_per_minute", "Events delivered over the last minute", line.status.eventsPerMinute, [("sink", name)])
            gauge("gatehouse_sink_delivered_events", "Events delivered since start", Double(line.status.deliveredEvents), [("sink", name)])
        }
    }
}
