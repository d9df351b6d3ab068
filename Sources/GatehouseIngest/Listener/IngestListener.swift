import GatehouseCore
import Hummingbird
import Logging
import NIOCore

/// The HTTP listener devices push to; every driver in the registry mounts its routes on it.
public enum IngestListener {
    /// Builds the listener as a Hummingbird application (a ServiceLifecycle service).
    public static func make(
        config: IngestListenerConfig, context: DriverContext, sourceGuard: SourceGuard, drivers: [any Driver],
        logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: IngestRequestContext.self)
        router.add(middleware: SourceGuardMiddleware(guard_: sourceGuard))
        router.get("/healthz") { _, _ in "ok\n" }
        for driver in drivers {
            driver.mountRoutes(on: router.group().add(middleware: RefusalScope(driver: driver.name)), context: context)
        }
        return Application(
            router: router,
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [ExpectContinueHandler(maxBodyBytes: { [requests = context.requests] in requests.maxBodyBytes })],
                    idleTimeout: .seconds(Int64(config.idleTimeoutSeconds.rounded(.up))))),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "gatehouse"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
            logger: logger)
    }
}
