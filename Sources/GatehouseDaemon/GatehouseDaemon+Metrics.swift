import Metrics
import Prometheus

extension GatehouseDaemon {
    /// Sends swift-metrics to a Prometheus registry that the admin listener serves; call once per process.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}
