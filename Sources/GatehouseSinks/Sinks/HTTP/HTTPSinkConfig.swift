import Foundation
import GatehouseCore

/// Batched POSTs to the central store (`type: http`).
public struct HTTPSinkConfig: SinkSettings {
    public static let typeName = "http"

    public enum Format: String, Sendable, CaseIterable { case ndjson, jsonArray = "json-array" }

    public var url: String
    public var format: Format
    public var gzip: Bool
    public var bearerToken: Secret?
    public var hmacSecret: Secret?
    public var signatureHeader: String
    public var idempotencyHeader: String
    public var caFile: String?
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    public var connectTimeoutSeconds: Double
    public var requestTimeoutSeconds: Double

    public init(
        url: String, format: Format = .ndjson, gzip: Bool = true, bearerToken: Secret? = nil, hmacSecret: Secret? = nil,
        signatureHeader: String = "X-Gatehouse-Signature", idempotencyHeader: String = "Idempotency-Key",
        caFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil,
        connectTimeoutSeconds: Double = 5, requestTimeoutSeconds: Double = 30
    ) {
        self.url = url
        self.format = format
        self.gzip = gzip
        self.bearerToken = bearerToken
        self.hmacSecret = hmacSecret
        self.signatureHeader = signatureHeader
        self.idempotencyHeader = idempotencyHeader
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.requestTimeoutSeconds = requestTimeoutSeconds
    }

    /// Reads the keys of a `type: http` section; TLS files must be readable now, not at the first send.
    static func read(_ map: YAMLMapping, environment: [String: String]) -> HTTPSinkConfig? {
        let url = map.string("url", required: true, expected: "an http:// or https:// URL")
        if let url, URL(string: url)?.host == nil || !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            map.log.report(map.node("url"), key: map.join("url"), "'\(url)' is not an http:// or https:// URL with a host")
        }
        let tls = SinkTLSFiles.read(map)
        let config = HTTPSinkConfig(
            url: url ?? "", format: map.choice("format", default: .ndjson) ?? .ndjson,
            gzip: map.bool("gzip", default: true),
            bearerToken: map.secret("bearer_token", environment: environment),
            hmacSecret: map.secret("hmac_secret", environment: environment),
            signatureHeader: map.string("signature_header") ?? "X-Gatehouse-Signature",
            idempotencyHeader: map.string("idempotency_header") ?? "Idempotency-Key",
            caFile: tls.caFile, clientCertificateFile: tls.clientCertificateFile, clientKeyFile: tls.clientKeyFile,
            connectTimeoutSeconds: map.double("connect_timeout_seconds", default: 5, range: 0.1...300),
            requestTimeoutSeconds: map.double("request_timeout_seconds", default: 30, range: 0.1...3600))
        return url == nil ? nil : config
    }
}
