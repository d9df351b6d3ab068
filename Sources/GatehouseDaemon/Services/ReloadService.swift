import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import Logging
import ServiceLifecycle
import UnixSignals
import Synchronization

/// SIGHUP: re-reads the config and applies what can change safely — devices, sinks, picture health, privacy,
/// limits, budget, status interval, log level — without touching queued events. A config with errors is
/// refused as a whole and the running one stays; listener addresses need a restart.
final class ReloadService: Service {
    let configPath: String?
    let queue: EventQueue
    let devices: DeviceDirectory
    let pipeline: IngestPipeline
    let requests: DeviceRequests
    let sourceGuard: SourceGuard
    let sinks: SinkSupervisor
    let drivers: DriverSupervisor
    /// This run's driver instances, told about the new config.
    let driverInstances: [any Driver]
    let status: StatusService
    let pictureHealth: PictureHealthMonitor
    let liveness: LivenessMonitor
    let logLevel: LogLevelControl?
    let logger: Logger
    private let current: Mutex<GatehouseConfig>

    init(
        configPath: String?, current: GatehouseConfig, queue: EventQueue, devices: DeviceDirectory, pipeline: IngestPipeline,
        requests: DeviceRequests, sourceGuard: SourceGuard, sinks: SinkSupervisor, drivers: DriverSupervisor,
        driverInstances: [any Driver], status: StatusService, pictureHealth: PictureHealthMonitor, liveness: LivenessMonitor, logLevel: LogLevelControl?,
        logger: Logger
    ) {
        self.configPath = configPath
        self.current = Mutex(current)
        self.queue = queue
        self.devices = devices
        self.pipeline = pipeline
        self.requests = requests
        self.sourceGuard = sourceGuard
        self.sinks = sinks
        self.drivers = drivers
        self.driverInstances = driverInstances
        self.status = status
        self.pictureHealth = pictureHealth
        self.liveness = liveness
        self.logLevel = logLevel
        self.logger = logger
    }

    /// The config in force: the start one, or the last one a reload applied.
    var currentConfig: GatehouseConfig { current.withLock { $0 } }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await reload()
        }
    }

    func reload() async {
        guard let configPath else {
            logger.warning("SIGHUP ignored: this instance runs on embedded defaults, not a config file")
            return
        }
        let next: GatehouseConfig
        do {
            next = try GatehouseDaemon.loadConfig(path: configPath)
        } catch {
            logger.error("reload refused, keeping the running config: \(error)")
            return
        }
        let previous = current.withLock { $0 }
        var changes: [String] = []
        let deviceChanges = devices.replace(next.devices)
        changes += deviceChanges.added.map { "device \($0) added" } + deviceChanges.removed.map { "device \($0) removed" }
            + deviceChanges.changed.map { "device \($0) changed" }
        drivers.apply(next.devices, connectConcurrency: next.connectConcurrency)
        if previous.connectConcurrency != next.connectConcurrency {
            changes.append("connect concurrency \(previous.connectConcurrency) → \(next.connectConcurrency)")
        }
        for driver in driverInstances {
            for message in driver.reload(config: next) {
                logger.warning("reload: driver \(driver.name): \(message)")
                changes.append("driver \(driver.name): \(message.split(separator: "\n").first ?? "")")
            }
        }
        pipeline.update(config: next)
        changes += await pictureHealth.apply(settings: next.pictureHealth, devices: next.devices)
        changes += liveness.apply(settings: next.liveness, devices: next.devices)
        requests.update(config: next.ingest)
        sourceGuard.update(config: next.ingest)
        queue.update(settings: next.queue, diskBudgetBytes: next.diskBudgetBytes)
        status.update(interval: next.statusIntervalSeconds)
        if previous.statusIntervalSeconds != next.statusIntervalSeconds {
            changes.append("status interval \(YAMLMapping.format(previous.statusIntervalSeconds)) → \(YAMLMapping.format(next.statusIntervalSeconds)) s")
        }
        // Applied before the summary line below, so a quieter level also silences it.
        if let logLevel, let level = Logger.Level(rawValue: next.logLevel), logLevel.level != level {
            changes.append("log level \(logLevel.level) → \(level)")
            logLevel.level = level
        }
        if previous.privacy != next.privacy { changes.append("privacy policy changed") }
        if previous.diskBudgetBytes != next.diskBudgetBytes { changes.append("disk budget \(previous.diskBudgetBytes) → \(next.diskBudgetBytes) bytes") }
        if previous.site != next.site { changes.append("site \(previous.site) → \(next.site)") }
        do {
            changes += try await sinks.apply(next.sinks)
        } catch {
            logger.error("reload: could not apply sinks: \(error)")
        }
        if previous.ingest.host != next.ingest.host || previous.ingest.port != next.ingest.port
            || previous.admin != next.admin || previous.stateDirectory != next.stateDirectory
        {
            logger.warning("reload: listener addresses and state_directory change only on restart; still using the old ones")
        }
        current.withLock { $0 = next }
        logger.notice("config reloaded from \(configPath): \(changes.isEmpty ? "no changes" : changes.joined(separator: "; "))")
    }
}
