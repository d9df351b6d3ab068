import GatehouseIngest
import ServiceLifecycle

/// Runs the picture health monitor (Sources/GatehouseIngest/PictureHealth/) as one of the
/// daemon's services; it stops with the others on SIGTERM.
struct PictureHealthService: Service {
    let monitor: PictureHealthMonitor

    func run() async throws {
        // A service that returns ends the whole group: with no camera to look at, wait for the shutdown.
        guard monitor.cameraCount > 0 else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown { await monitor.run() }
    }
}
