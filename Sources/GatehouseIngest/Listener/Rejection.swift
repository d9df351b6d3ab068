import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Metrics

/// A refusal with a precise reason for the sender: every 4xx/5xx the listener gives is one of these.
public struct Rejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// A stable machine-readable code, e.g. `unknown-device`.
    public var code: String
    public var message: String
    public var retryAfterSeconds: Int?
    public var extra: [String: String]
    /// The `WWW-Authenticate` challenge of a 401; Basic when not given.
    public var authenticate: String?

    public init(
        _ status: HTTPResponse.Status, _ code: String, _ message: String, retryAfterSeconds: Int? = nil,
        extra: [String: String] = [:], authenticate: String? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.extra = extra
        self.authenticate = authenticate
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// The driver whose route is answering, for the refusal metric; nil before routing
    /// (source allow-list, rate limit), counted as `listener`.
    @TaskLocal public static var driver: String?

    /// `{"error": code, "message": …}` with Retry-After where it applies. Building it counts
    /// the refusal in `gatehouse_ingest_refusals_total{driver, reason}`.
    public var response: Response {
        response(body: jsonBody, contentType: "application/json")
    }

    /// The `{"error": code, "message": …}` body.
    var jsonBody: [UInt8] {
        var object: [String: JSONValue] = extra.mapValues(JSONValue.string)
        object["error"] = .string(code)
        object["message"] = .string(message)
        return Array(JSONValue.object(object).jsonText.utf8)
    }

    /// This refusal's status and headers with a body in the device's own protocol (ZKTeco's text,
    /// generic-json's per-event results); counted like `response`.
    public func response(body: [UInt8], contentType: String) -> Response {
        count()
        return Response(status: status, headers: headerFields(contentType: contentType), body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Counts this refusal in `gatehouse_ingest_refusals_total{driver, reason}`.
    func count() {
        Counter(label: "gatehouse_ingest_refusals_total", dimensions: [("driver", Self.driver ?? "listener"), ("reason", code)])
            .increment()
    }

    /// Content-Type, Retry-After where it applies, and the challenge of a 401.
    func headerFields(contentType: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        if status == .unauthorized { headers[.wwwAuthenticate] = authenticate ?? "Basic realm=\"gatehouse\", charset=\"UTF-8\"" }
        return headers
    }
}

extension Response {
    /// A JSON response from an encodable value.
    static func json(_ status: HTTPResponse.Status, _ data: Data) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Binds `Rejection.driver` for the routes of one driver.
struct RefusalScope: RouterMiddleware {
    typealias Context = IngestRequestContext
    let driver: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await Rejection.$driver.withValue(driver) { try await next(request, context) }
    }
}
