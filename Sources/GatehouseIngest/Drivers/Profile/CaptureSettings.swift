import GatehouseCore
import GatehouseProfiles

/// Capture mode of a `driver: profile` device (README: "Capture"): every payload pushed to
/// `/v1/push/capture/{device}` is kept in quarantine with reason `no-profile` and answered with
/// a generic success, so that a profile can be written from real payloads.
struct CaptureSettings: Sendable, Equatable {
    static let routeSegment = "capture"
    static let reason = "no-profile"
    static let defaultBody = #"{"result":"ok"}"#

    /// Capture's options; they sit beside `profile` and the profile's own options.
    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("capture", .bool, default: .bool(false), "keep every payload in quarantine until a profile is written"),
        OptionDeclaration("capture_reply", .string, default: .string(defaultBody), "the body a capturing device gets"),
        OptionDeclaration(
            "capture_status", .int(200...299), default: .int(200), "the success status a capturing device gets, so that it stops re-sending"),
        OptionDeclaration("capture_content_type", .string, default: .string("application/json"), "the reply's content type"),
    ]

    var enabled = false
    var reply = ProfileReply(status: 200, contentType: "application/json", body: Self.defaultBody)

    /// Reads the typed options (checked by the config loader against `declarations`).
    init(_ options: DeviceOptions) {
        enabled = options.bool("capture") ?? false
        if let body = options.string("capture_reply") { reply.body = body }
        if let status = options.int("capture_status") { reply.status = status }
        if let type = options.string("capture_content_type"), !type.isEmpty { reply.contentType = type }
    }

    /// Capture options written without `capture: true`, which would do nothing.
    static func problems(in options: DeviceOptions) -> [String] {
        guard options.bool("capture") != true else { return [] }
        return declarations.dropFirst().map(\.name).filter { options.configured[$0] != nil }.map {
            "options.\($0): only used with options.capture: true"
        }
    }
}
