import GatehouseIngest
import ServiceLifecycle

/// Runs the picture health monitor (Sources/GatehouseIngest/PictureHealth/) as one of the
/// daemon's services; it stops with the others on SIGTERM.
struct PictureHealthService: Service {
    let monitor: PictureHealthMonitor

    func run() async throws {
        // Runs with no camera too (it waits): a reload may add some.
        await cancelWhenGracefulShutdown { await monitor.run() }
    }
}
