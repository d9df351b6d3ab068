import Foundation
import GatehouseCore
import GatehouseQueue
import Hummingbird

/// Devices and integrations that send the normalized event themselves:
/// `POST /v1/devices/{device}/events` with one event object or an array of them.
///
/// The reply comes after the commit: 200 with each event's id (or the id it duplicates),
/// 422 with the reason when the body cannot be mapped (the body is kept in quarantine),
/// 503 with Retry-After when the disk budget refuses it (`PushRefusal`).
public struct GenericJSONDriver: Driver {
    public let name = "generic-json"

    public init() {}

    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        try GenericJSONDecoder.decode(payload.body, zone: device.timeZone)
    }

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {
        router.post("/v1/devices/:device/events") { request, requestContext in
            await context.push(request, requestContext, driver: name) { push in
                let device = try push.authorize(deviceID: push.parameter("device") ?? "")
                if let type = push.contentType, !Self.mayCarryJSON(type) {
                    throw Rejection(.unsupportedMediaType, "unsupported-media-type", "Content-Type '\(type)' is not JSON (expected application/json)")
                }
                let body = try await push.body()
                if let type = push.contentType, !type.lowercased().contains("json"), !Self.looksLikeJSON(body) {
                    throw Rejection(
                        .unsupportedMediaType, "unsupported-media-type",
                        "Content-Type '\(type)' with a body that is not JSON (expected a JSON object or array, as application/json)")
                }
                let drafts = try await push.decode(body, device: device.config) { () throws(PayloadError) in
                    try decode(RawPayload(body: body, contentType: push.contentType, route: push.route), device: device.config)
                }
                return Self.reply(try await push.submit(drafts, device: device))
            }
        }
    }

    /// JSON types, and the form type `curl -d` puts on any body: the README's first curl command and
    /// many integrators' first test send JSON that way, so it is taken when the body is JSON.
    static func mayCarryJSON(_ contentType: String) -> Bool {
        let type = contentType.lowercased()
        return type.contains("json") || type.hasPrefix("application/x-www-form-urlencoded")
    }

    /// Whether the body opens like a JSON object or array; a form body (`a=1&b=2`) never does.
    static func looksLikeJSON(_ body: [UInt8]) -> Bool {
        let first = body.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        return first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
    }

    /// `{"accepted": n, "results": [{"id": …, "status": "stored" | "duplicate"}, {"reason": …, "status": "refused"}]}`.
    /// Written by hand: it is on every request, and Foundation's serializer cost as much as decoding the body.
    static func reply(_ outcomes: [AppendOutcome]) -> Response {
        var json = "{\"accepted\":\(outcomes.filter(\.isAccepted).count),\"results\":["
        for (index, outcome) in outcomes.enumerated() {
            if index > 0 { json += "," }
            switch outcome {
            case .stored(let id): json += "{\"id\":\"\(id)\",\"status\":\"stored\"}"
            case .duplicate(let id): json += "{\"id\":\"\(id)\",\"status\":\"duplicate\"}"
            case .refused(let reason): json += "{\"reason\":\(JSONValue.string(reason).jsonText),\"status\":\"refused\"}"
            }
        }
        json += "]}"
        let data = Data(json.utf8)
        if let refusal = PushRefusal.refusal(for: outcomes) {
            // Some were refused for lack of disk: the sender retries; with dedup keys the stored ones come back as duplicates.
            return refusal.response(body: Array(data), contentType: "application/json")
        }
        return .json(.ok, data)
    }
}
