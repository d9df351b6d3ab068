import Metrics
import Prometheus

extension GatehouseDaemon {
    /// Sends swift-metrics to a Prometheus registry that the admin listener serves; call once per process.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DescribedMetricsFactory(registry: registry))
        return registry
    }
}

/// Prometheus wants `# HELP` on every family, but swift-metrics carries no description: the
/// counters the libraries increment (sinks, ingest, drivers) get theirs here, by name.
struct DescribedMetricsFactory: MetricsFactory {
    static let help: [String: String] = [
        "gatehouse_sink_delivered_events_total": "Events a sink delivered and the target acknowledged, since start",
        "gatehouse_sink_failures_total": "Failed delivery attempts of a sink, since start",
        "gatehouse_ingest_refusals_total": "Ingest requests refused, by driver and reason, since start",
        "gatehouse_uhppote_rejected_datagrams_total": "UHPPOTE datagrams dropped as unreadable or unexpected, by reason, since start",
    ]

    let registry: PrometheusCollectorRegistry
    let fallback: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        fallback = PrometheusMetricsFactory(registry: registry)
    }

    static func describe(_ label: String) -> String {
        help[label] ?? label.replacingOccurrences(of: "_", with: " ")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: StatusCollector.describe(label, Self.describe(label)), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: StatusCollector.describe(label, Self.describe(label)), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        fallback.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        fallback.makeMeter(label: label, dimensions: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        fallback.makeTimer(label: label, dimensions: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) { fallback.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { fallback.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { fallback.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { fallback.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { fallback.destroyTimer(handler) }
}
