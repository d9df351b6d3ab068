import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import Logging
import ServiceLifecycle
import Synchronization

/// The status log: a summary line every `status_interval_seconds`, device health sweeps every
/// second (state changes are logged at once by the parts that change), queue maintenance
/// every minute (with free heap given back; unused code pages every 15 s) and the systemd watchdog, which
/// is only fed while the queue answers.
final class StatusService: Service {
    let collector: StatusCollector
    let pipeline: IngestPipeline
    let notifier: SystemdNotifier
    let logger: Logger
    private let interval: Mutex<Double>
    /// Ticks, summary, maintenance and watchdog times and the offline sweep's "now": the
    /// daemon's one clock, a `ManualClock` in tests.
    private let clock: any TimerClock

    init(
        collector: StatusCollector, pipeline: IngestPipeline, notifier: SystemdNotifier, interval: Double, clock: any TimerClock,
        logger: Logger
    ) {
        self.clock = clock
        self.collector = collector
        self.pipeline = pipeline
        self.notifier = notifier
        self.interval = Mutex(interval)
        self.logger = logger
    }

    func update(interval seconds: Double) { interval.withLock { $0 = seconds } }

    func run() async throws {
        // The next summary is due one interval after the last, read afresh each tick, so a
        // shorter `status_interval_seconds` from a reload applies at once, not after the old one.
        var lastSummary = clock.now
        var nextMaintenance = clock.now.adding(seconds: 60)
        var nextWatchdog = clock.now
        var nextBudgetCheck = clock.now
        // First on the first tick, once start-up is over, then every 15 s: devices connecting
        // after start-up (hundreds of camera sessions) touch code that is not needed again, and
        // a release costs about a millisecond (reading smaps, then minor faults for the code in use).
        var nextCodeRelease = clock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await clock.sleep(for: .seconds(1))
            } catch {
                return
            }
            await pipeline.report(pipeline.devices.sweep(now: clock.now))
            let now = clock.now
            if let watchdogInterval = notifier.watchdogInterval, now >= nextWatchdog {
                // Only a queue that answers counts as alive: a stuck database lets systemd restart us.
                if (try? await collector.queue.stats()) != nil { notifier.watchdog() }
                nextWatchdog = now.adding(seconds: watchdogInterval / .seconds(1))
            }
            if now >= lastSummary.adding(seconds: interval.withLock { $0 }) {
                do {
                    let report = try await collector.report()
                    logger.info("\(report.summaryLine)")
                    notifier.status("devices \(report.devicesUp)/\(report.devices.count) up, queue \(report.queue.depth)")
                } catch {
                    logger.error("status: cannot read queue figures: \(error)")
                }
                lastSummary = now
            }
            if now >= nextBudgetCheck {
                // At start and hourly: a budget the file system cannot hold means a full disk, not evictions.
                if let used = try? await collector.queue.stats().usedBytes, let warning = collector.queue.budgetWarning(usedBytes: used) {
                    logger.warning("\(warning)")
                }
                nextBudgetCheck = now.adding(seconds: 3600)
            }
            if now >= nextMaintenance {
                do {
                    try await collector.queue.maintain(now: now)
                } catch {
                    logger.warning("queue maintenance failed: \(error)")
                }
                AllocatorTuning.releaseFreeMemory()
                nextMaintenance = now.adding(seconds: 60)
            }
            if now >= nextCodeRelease {
                if let release = ResidentCode.release() { logger.debug("\(release)") }
                nextCodeRelease = now.adding(seconds: 15)
            }
        }
    }
}
