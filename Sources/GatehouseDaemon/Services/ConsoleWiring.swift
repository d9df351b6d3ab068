import GatehouseConsole
import GatehouseCore
import GatehouseQueue
import Logging

extension WebConsole {
    /// The console as the daemon serves it: the status collector's figures, the queue, replay
    /// with the config in force (so a device or profile added by a reload maps), and reload.
    static func forDaemon(
        config: GatehouseConfig, collector: StatusCollector, queue: EventQueue, reload: ReloadService, clock: any TimerClock, logger: Logger
    ) throws -> WebConsole? {
        guard config.admin.console.enabled else { return nil }
        let backend = ConsoleBackend(
            status: {
                let report = try await collector.report()
                return ConsoleStatus(
                    site: report.site, startedAt: report.startedAt, generatedAt: report.generatedAt, devices: report.devices, queue: report.queue,
                    sinks: report.sinks.map { .init(status: $0.status, lag: $0.lag) }, failedSinks: report.failedSinks)
            },
            queue: queue,
            replay: { entry in
                try await QuarantineReplayer(config: reload.currentConfig, queue: queue).replay(entry).get()
            },
            reload: { await reload.reload() },
            adaptersDirectory: { reload.currentConfig.adaptersDirectory },
            deviceTimeZone: { reload.currentConfig.device($0)?.timeZone.identifier })
        return try WebConsole(settings: config.admin.console, backend: backend, clock: clock, logger: logger)
    }
}
