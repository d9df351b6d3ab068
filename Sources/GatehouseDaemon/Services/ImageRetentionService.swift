import Foundation
import GatehouseCore
import GatehouseIngest
import Logging
import ServiceLifecycle

/// Deletes stored pictures older than `privacy.images: keep N days`, at start and then hourly,
/// for the image directories of the devices configured now (so a reload's policy applies).
struct ImageRetentionService: Service {
    let devices: DeviceDirectory
    /// This run's profile driver, which stores the pictures.
    let profiles: ProfileDriver?
    /// Decides when a sweep is due and what "older than N days" is measured from.
    let clock: any TimerClock
    let logger: Logger
    var intervalSeconds: Double = 3600

    func run() async throws {
        guard let driver = profiles else { return }
        var next = clock.now
        // Short sleeps, like the status service, so that SIGTERM is not held up by an hour's wait.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if clock.now >= next {
                let deleted = driver.sweepImages(devices: devices.all, now: clock.now.date)
                if deleted > 0 { logger.info("deleted \(deleted) pictures past their retention (privacy.images)") }
                next = clock.now.adding(seconds: intervalSeconds)
            }
            do {
                try await clock.sleep(for: .seconds(1))
            } catch {
                return
            }
        }
    }
}
