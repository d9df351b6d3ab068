import Foundation
import GatehouseIngest
import Logging
import ServiceLifecycle

/// Deletes stored pictures older than `privacy.images: keep N days`, at start and then hourly,
/// for the image directories of the devices configured now (so a reload's policy applies).
struct ImageRetentionService: Service {
    let devices: DeviceDirectory
    /// This run's profile driver, which stores the pictures.
    let profiles: ProfileDriver?
    let logger: Logger
    var intervalSeconds: Double = 3600

    func run() async throws {
        guard let driver = profiles else { return }
        let clock = ContinuousClock()
        var next = clock.now
        // Short sleeps, like the status service, so that SIGTERM is not held up by an hour's wait.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if clock.now >= next {
                let deleted = driver.sweepImages(devices: devices.all, now: Date())
                if deleted > 0 { logger.info("deleted \(deleted) pictures past their retention (privacy.images)") }
                next = clock.now.advanced(by: .seconds(intervalSeconds))
            }
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
        }
    }
}
