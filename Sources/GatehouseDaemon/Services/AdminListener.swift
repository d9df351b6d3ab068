import Foundation
import GatehouseConsole
import GatehouseCore
import Hummingbird
import Logging
import NIOCore

/// The local admin listener: `GET /status` (JSON for `gatehouse status`), `GET /metrics`
/// (Prometheus text), `GET /healthz` (the process answers) and `GET /readyz` (queue open,
/// listeners bound; 503 until then), and the web console under `/console` (docs/console.md).
/// Bound to 127.0.0.1 by default; HTTPS only with `admin.tls`.
enum AdminListener {
    static func make(
        config: AdminListenerConfig, status: StatusCollector, console: WebConsole? = nil, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void
    ) throws -> some ApplicationProtocol {
        let router = Router()
        console?.register(on: router)
        router.get("/healthz") { _, _ -> Response in
            struct Alive: Encodable {
                var status = "alive"
                var version = GatehouseVersion.current
                var startedAt: Timestamp
            }
            return try json(.ok, Alive(startedAt: status.startedAt))
        }
        router.get("/readyz") { _, _ -> Response in
            let readiness = await status.readiness()
            return try json(readiness.ready ? .ok : .serviceUnavailable, readiness)
        }
        router.get("/status") { _, _ -> Response in
            try json(.ok, try await status.report())
        }
        router.get("/metrics") { _, _ -> Response in
            let text = try await status.metricsText()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Application(
            router: router, server: try AdminTLS.serverBuilder(config.tls),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "gatehouse-admin"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
            logger: logger)
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
