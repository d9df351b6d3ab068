import AsyncHTTPClient
import CompressNIO
import Crypto
import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// POSTs each batch to the central store as NDJSON or a JSON array, optionally gzipped,
/// signed (HMAC-SHA256) and authenticated (bearer token, client certificate).
public final class HTTPSink: RegisteredSink {
    /// Bytes of a refusing response's body quoted in the rejection reason.
    static let reasonBodyBytes = 200

    public let name: String
    private let config: HTTPSinkConfig
    private let client: HTTPClient
    private let logger: Logger

    /// Loads the TLS files named in `config`; throws when one cannot be read or parsed.
    public init(name: String, config: HTTPSinkConfig, logger: Logger) throws {
        self.name = name
        self.config = config
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(name)"
        self.logger = logger
        let timeout = HTTPClient.Configuration.Timeout(
            connect: .milliseconds(Int64(config.connectTimeoutSeconds * 1000)),
            read: .milliseconds(Int64(config.requestTimeoutSeconds * 1000)))
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: try Self.tlsConfiguration(config), redirectConfiguration: .disallow, timeout: timeout)
        // The runner sends one batch at a time; one kept-alive connection is all it needs.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 2)
        // Fail at once when the centre cannot be reached: the runner's backoff (capped at
        // backoff_max_seconds) decides when to try again. AsyncHTTPClient's own retry backoff
        // grows during a long outage and delayed the first delivery after it by seconds.
        configuration.connectionPool.retryConnectionEstablishment = false
        self.client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
    }

    public func send(_ batch: SinkBatch) async -> DeliveryResult {
        let body: ByteBuffer
        do {
            body = try encode(batch.events)
        } catch {
            return .fatal(reason: "gzip failed: \(error)")
        }
        var request = HTTPClientRequest(url: config.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: config.format == .ndjson ? "application/x-ndjson" : "application/json")
        if config.gzip { request.headers.add(name: "Content-Encoding", value: "gzip") }
        if let token = config.bearerToken { request.headers.add(name: "Authorization", value: "Bearer \(token.value)") }
        if let secret = config.hmacSecret {
            let key = SymmetricKey(data: Data(secret.value.utf8))
            let mac = body.withUnsafeReadableBytes { HMAC<SHA256>.authenticationCode(for: $0, using: key) }
            request.headers.add(name: config.signatureHeader, value: "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        }
        request.headers.add(name: config.idempotencyHeader, value: batch.idempotencyKey)
        request.headers.add(name: "X-Gatehouse-Batch-Size", value: "\(batch.events.count)")
        request.body = .bytes(body)

        do {
            let response = try await client.execute(
                request, timeout: .milliseconds(Int64(config.requestTimeoutSeconds * 1000)), logger: logger)
            // Read (a little of) the body in every case so the connection can be reused.
            var head = ByteBuffer()
            for try await chunk in response.body where head.readableBytes < Self.reasonBodyBytes {
                var chunk = chunk
                head.writeBuffer(&chunk)
            }
            return Self.result(
                status: Int(response.status.code), reasonPhrase: response.status.reasonPhrase,
                retryAfter: response.headers.first(name: "Retry-After"),
                body: head.getString(at: head.readerIndex, length: min(head.readableBytes, Self.reasonBodyBytes)) ?? "")
        } catch {
            return .retryable(after: nil, reason: "POST \(Self.redacted(config.url)) failed: \(error)")
        }
    }

    public func shutdown() async {
        do {
            try await client.shutdown()
        } catch {
            logger.debug("http sink \(name): client shutdown: \(error)")
        }
    }

    /// The body exactly as sent (and signed).
    private func encode(_ events: [StoredEvent]) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(events.reduce(2) { $0 + $1.body.count + 1 })
        switch config.format {
        case .ndjson:
            for event in events {
                buffer.writeBytes(event.body)
                buffer.writeInteger(UInt8(ascii: "\n"))
            }
        case .jsonArray:
            buffer.writeInteger(UInt8(ascii: "["))
            for (index, event) in events.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeBytes(event.body)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        guard config.gzip else { return buffer }
        return try buffer.compress(with: .gzip())
    }

    /// Maps a response onto the runner's closed set of outcomes. `now` only turns an HTTP-date
    /// `Retry-After` (a real wall-clock time the centre names) into a delay; the runner then waits
    /// that delay on its injected clock.
    static func result(status: Int, reasonPhrase: String, retryAfter: String?, body: String, now: Date = Date()) -> DeliveryResult {
        let summary = "HTTP \(status)\(reasonPhrase.isEmpty ? "" : " \(reasonPhrase)")"
        switch status {
        case 200..<300:
            return .delivered
        case 408, 425, 429, 500..<600:
            return .retryable(after: retryAfter.flatMap { RetryAfter.seconds($0, now: now) }, reason: summary)
        case 401, 403, 404, 405, 407:
            // Wrong credentials or URL say nothing about the events: splitting the batch and
            // quarantining every event one by one would empty the queue into quarantine.
            return .fatal(reason: "\(summary) (check the sink's url and credentials)")
        case 400..<500:
            return .rejected(reason: "HTTP \(status): \(body)")
        default:
            // 1xx/3xx as a final answer (redirects are not followed): the target is misconfigured.
            return .fatal(reason: "\(summary) (unexpected; redirects are not followed)")
        }
    }

    /// The URL without user info or query, which may carry credentials.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "<invalid url>" }
        components.user = nil
        components.password = nil
        components.query = nil
        return components.string ?? "<invalid url>"
    }

    static func tlsConfiguration(_ config: HTTPSinkConfig) throws -> TLSConfiguration? {
        guard config.caFile != nil || config.clientCertificateFile != nil else { return nil }
        let files = SinkTLSFiles(
            caFile: config.caFile, clientCertificateFile: config.clientCertificateFile, clientKeyFile: config.clientKeyFile)
        do {
            return try files.clientConfiguration()
        } catch {
            throw HTTPSinkError(error.description)
        }
    }
}

extension HTTPSink {
    package static func readSettings(_ map: YAMLMapping, environment: [String: String]) -> HTTPSinkConfig? {
        HTTPSinkConfig.read(map, environment: environment)
    }
}
