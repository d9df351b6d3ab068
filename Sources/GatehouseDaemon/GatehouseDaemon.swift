import Foundation
import GatehouseConsole
import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import GatehouseSinks
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// The daemon: one ServiceGroup in dependency order — queue, sinks, ingest, admin, status,
/// reload. Graceful shutdown runs in reverse: ingest stops taking requests and answers those
/// in flight, sinks finish their batch, and the queue commits what is still waiting.
public final class GatehouseDaemon: Sendable {
    public let config: GatehouseConfig
    let configPath: String?
    let logger: Logger
    let registry: PrometheusCollectorRegistry
    let onListening: @Sendable (_ listener: String, _ port: Int) async -> Void
    /// Where SIGHUP applies `log_level`; without one the level stays as started.
    let logLevel: LogLevelControl?

    /// Validates nothing and opens nothing: `run()` does the I/O.
    public init(
        config: GatehouseConfig, configPath: String?, logger: Logger,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logLevel: LogLevelControl? = nil,
        onListening: @escaping @Sendable (_ listener: String, _ port: Int) async -> Void = { _, _ in }
    ) {
        self.config = config
        self.configPath = configPath
        self.logger = logger
        self.registry = registry
        self.logLevel = logLevel
        self.onListening = onListening
    }

    /// Loads and validates a config file against the drivers this build carries, including
    /// each driver's checks of its devices' `serial`, `address` and how their options go together.
    public static func loadConfig(path: String) throws(ConfigError) -> GatehouseConfig {
        let config: GatehouseConfig
        var diagnostics: [ConfigDiagnostic] = []
        // A set of its own: checking a config shares no driver state with a running daemon.
        let drivers = DriverRegistry.makeAll()
        do {
            config = try ConfigLoader.load(
                path: path, knownDrivers: Set(drivers.map(\.name)), driverOptions: DriverRegistry.options(of: drivers),
                sinkTypes: SinkRegistry.readers)
        } catch {
            // Option errors stop the load; the drivers' checks still run, so check-config lists everything at once.
            guard let partial = error.partial else { throw error }
            config = partial
            diagnostics = error.diagnostics
        }
        for (index, device) in config.devices.enumerated() {
            guard let driver = drivers.named(device.driver) else { continue }
            for message in driver.validate(device: device) {
                diagnostics.append(
                    ConfigDiagnostic(file: path, line: device.line, column: 5, key: "devices[\(index)]", message: message))
            }
        }
        if !diagnostics.isEmpty { throw ConfigError(diagnostics) }
        return config
    }

    public static var queueFileName: String { "queue.sqlite" }

    /// A wave of at least this many device connects is worth giving memory back after.
    static let releaseAfterConnects = 8

    /// Runs until SIGTERM/SIGINT (when `handleSignals`) or cancellation.
    public func run(handleSignals: Bool = true) async throws {
        let queuePath = (config.stateDirectory as NSString).appendingPathComponent(Self.queueFileName)
        // The one clock every timeout, backoff, keepalive, offline, retention and skew decision reads.
        let clock = SystemClock()
        let sealer = try PayloadSealer.resolve(configured: config.privacy.quarantineKey, directory: config.stateDirectory)
        let queue = try EventQueue(
            path: queuePath, settings: config.queue, diskBudgetBytes: config.diskBudgetBytes, sealer: sealer, clock: clock, logger: logger)
        let devices = DeviceDirectory(devices: config.devices, logger: logger, clock: clock)
        let pipeline = IngestPipeline(config: config, queue: queue, devices: devices, logger: logger)
        await pipeline.resumeHealth()
        let requests = DeviceRequests(config: config.ingest, devices: devices)
        let sourceGuard = SourceGuard(config: config.ingest, clock: clock)
        let sinks = SinkSupervisor(queue: queue, clock: clock, logger: logger)
        // What a wave of connects used (code run once, connect-time buffers) goes back when the
        // wave is over rather than at the next periodic release, up to 15 s later: 300 cameras
        // connecting at start held 71 MB until then (docs/benchmarks.md, "Cameras").
        let connectWaves = ConnectWaves(limit: config.connectConcurrency) { [logger] wave in
            let line = "devices connected: \(wave.connects), at most \(wave.mostAtOnce) at once"
            guard wave.connects >= Self.releaseAfterConnects else {
                logger.debug("\(line)")
                return
            }
            Task.detached(priority: .utility) {
                AllocatorTuning.releaseFreeMemory()
                let release = ResidentCode.release()
                logger.info("\(line)\(release.map { "; \($0)" } ?? "")")
            }
        }
        let driverContext = DriverContext(pipeline: pipeline, requests: requests, clock: clock, connectWaves: connectWaves)
        let drivers = DriverRegistry.makeAll()
        let driverTasks = DriverSupervisor(context: driverContext, drivers: drivers, logger: logger)
        driverTasks.apply(config.devices)
        try await sinks.apply(config.sinks)
        let notifier = SystemdNotifier()
        let pictureHealth = PictureHealthMonitor(pipeline: pipeline, settings: config.pictureHealth, devices: config.devices, clock: clock, logger: logger)
        let liveness = LivenessMonitor(pipeline: pipeline, settings: config.liveness, devices: config.devices, clock: clock, logger: logger)
        let collector = StatusCollector(queue: queue, devices: devices, sinks: sinks, registry: registry, site: config.site, pictureHealth: pictureHealth)
        let status = StatusService(
            collector: collector, pipeline: pipeline, notifier: notifier, interval: config.statusIntervalSeconds, clock: clock, logger: logger)
        let reload = ReloadService(
            configPath: configPath, current: config, queue: queue, devices: devices, pipeline: pipeline,
            requests: requests, sourceGuard: sourceGuard, sinks: sinks, drivers: driverTasks, driverInstances: drivers, status: status,
            pictureHealth: pictureHealth, liveness: liveness, logLevel: logLevel, logger: logger)

        let ingestConfig = config.ingest
        let onListening = self.onListening
        let logger = self.logger
        let ingest = IngestListener.make(
            config: config.ingest, context: driverContext, sourceGuard: sourceGuard, drivers: drivers,
            logger: logger.withLevel(.warning),
            onRunning: { port in
                logger.notice("ingest listener ready on \(ingestConfig.host):\(port)")
                collector.listenerBound("ingest", address: "\(ingestConfig.host):\(port)")
                notifier.ready(status: "ingest on \(ingestConfig.host):\(port)")
                await onListening("ingest", port)
            })
        let adminConfig = config.admin
        let console = try WebConsole.forDaemon(config: config, collector: collector, pipeline: pipeline, queue: queue, reload: reload, clock: clock, logger: logger)
        let admin = try AdminListener.make(config: config.admin, status: collector, console: console, logger: logger.withLevel(.warning)) { port in
            logger.notice("admin listener ready on \(adminConfig.host):\(port) (\(adminConfig.tls == nil ? "" : "HTTPS only; ")GET /status, /metrics, /healthz, /readyz\(console == nil ? "" : ", /console"))")
            collector.listenerBound("admin", address: "\(adminConfig.host):\(port)")
            await onListening("admin", port)
        }

        logger.notice(
            "gatehouse starting",
            metadata: [
                "gatehouse.version": "\(GatehouseVersion.current)", "gatehouse.site": "\(config.site)", "gatehouse.devices": "\(config.devices.count)",
                "gatehouse.sinks": "\(config.sinks.map(\.name).joined(separator: ","))", "gatehouse.queue": "\(queuePath)",
            ])
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: QueueService(queue: queue), serviceName: "queue"),
                    .init(service: sinks, serviceName: "sinks"),
                    .init(service: Listener(name: "ingest", address: "\(ingestConfig.host):\(ingestConfig.port)", server: ingest, logger: logger), serviceName: "ingest"),
                    .init(service: driverTasks, serviceName: "drivers"),
                    .init(service: Listener(name: "admin", address: "\(adminConfig.host):\(adminConfig.port)", server: admin, logger: logger), serviceName: "admin"),
                    .init(service: status, serviceName: "status"),
                    .init(service: ImageRetentionService(devices: devices, profiles: drivers.lazy.compactMap { $0 as? ProfileDriver }.first, clock: clock, logger: logger), serviceName: "image-retention"),
                    .init(service: PictureHealthService(monitor: pictureHealth), serviceName: "picture-health"),
                    .init(service: LivenessService(monitor: liveness), serviceName: "liveness"),
                    .init(service: reload, serviceName: "reload"),
                ],
                gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                logger: logger.withLevel(.warning)))
        // Start-up's code (config, migrations, every module's initialisation) is not needed
        // again: given back before the devices connect, so the connect wave does not peak on top of it.
        ResidentCode.release()
        do {
            try await group.run()
        } catch {
            notifier.stopping()
            throw error
        }
        notifier.stopping()
        logger.notice("gatehouse stopped cleanly")
    }
}

/// A listener that could not bind or stopped with an error, named so the operator knows which
/// key to change: NIO's own error says only "Address already in use".
public struct ListenerFailure: Error, CustomStringConvertible {
    public var listener: String
    public var address: String
    public var underlying: any Error

    public var description: String { "\(listener) listener on \(address) failed: \(underlying)" }
}

/// Runs a listener and, when it fails, logs the cause at once, before the shutdown it triggers
/// makes the other services log their cancellation.
struct Listener<Server: Service>: Service {
    let name: String
    let address: String
    let server: Server
    let logger: Logger

    func run() async throws {
        do {
            try await server.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let failure = ListenerFailure(listener: name, address: address, underlying: error)
            logger.error("\(failure)")
            throw failure
        }
    }
}

extension Logger {
    func withLevel(_ level: Logger.Level) -> Logger {
        var copy = self
        copy.logLevel = max(level, logLevel)
        return copy
    }
}
