import GatehouseIngest
import ServiceLifecycle

/// Runs the liveness monitor (Sources/GatehouseIngest/Liveness/) as one of the daemon's
/// services; it stops with the others on SIGTERM. With no camera to probe it waits for a
/// reload that adds some.
struct LivenessService: Service {
    let monitor: LivenessMonitor

    func run() async throws {
        await cancelWhenGracefulShutdown { await monitor.run() }
    }
}
