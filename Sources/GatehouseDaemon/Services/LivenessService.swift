import GatehouseIngest
import ServiceLifecycle

/// Runs the liveness monitor (Sources/GatehouseIngest/Liveness/) as one of the daemon's
/// services; it stops with the others on SIGTERM.
struct LivenessService: Service {
    let monitor: LivenessMonitor

    func run() async throws {
        // A service that returns ends the whole group: with no camera to probe, wait for the shutdown.
        guard monitor.cameraCount > 0 else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown { await monitor.run() }
    }
}
