import GatehouseConsole
import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import Logging

extension WebConsole {
    /// The console as the daemon serves it: the status collector's figures, the queue, replay
    /// with the config in force (so a device or profile added by a reload maps), and reload.
    static func forDaemon(
        config: GatehouseConfig, collector: StatusCollector, pipeline: IngestPipeline, queue: EventQueue, reload: ReloadService,
        clock: any TimerClock, logger: Logger
    ) throws -> WebConsole? {
        guard config.admin.console.enabled else { return nil }
        var backend = ConsoleBackend(
            status: {
                let report = try await collector.report()
                var status = ConsoleStatus(
                    site: report.site, startedAt: report.startedAt, generatedAt: report.generatedAt, devices: report.devices, queue: report.queue,
                    sinks: report.sinks.map { .init(status: $0.status, lag: $0.lag) }, failedSinks: report.failedSinks)
                status.eventsPerMinute = pipeline.devices.eventsPerMinute(at: clock.now)
                status.clockOffsets = pipeline.clockOffsets()
                return status
            },
            queue: queue,
            replay: { entry in
                try await QuarantineReplayer(config: reload.currentConfig, queue: queue).replay(entry).get()
            },
            reload: { await reload.reload() },
            adaptersDirectory: { reload.currentConfig.adaptersDirectory },
            deviceTimeZone: { reload.currentConfig.device($0)?.timeZone.identifier })
        backend.lastPayload = { pipeline.lastPayload(of: $0) }
        let writer = reload.configPath.map { ConfigFileWriter(path: $0) }
        backend.configFileProblem = { writer == nil ? "the daemon was started without a config file" : writer?.problem }
        backend.activateProfile = { profile, device in
            guard let writer else { throw ConfigFileWriter.Failure(description: "the daemon was started without a config file") }
            let backup = try writer.activate(profile: profile, device: device)
            await reload.reload()
            return "\(writer.path) written (the previous one kept as \(backup)) and reloaded"
        }
        return try WebConsole(settings: config.admin.console, backend: backend, clock: clock, logger: logger)
    }
}
