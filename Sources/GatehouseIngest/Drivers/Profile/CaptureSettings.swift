import GatehouseProfiles

/// Capture mode of a `driver: profile` device (README: "Capture"): every payload pushed to
/// `/v1/push/capture/{device}` is kept in quarantine with reason `no-profile` and answered with
/// a generic success, so that a profile can be written from real payloads.
struct CaptureSettings: Sendable, Equatable {
    static let routeSegment = "capture"
    static let reason = "no-profile"
    static let keys = ["capture", "capture_reply", "capture_status", "capture_content_type"]
    static let defaultBody = #"{"result":"ok"}"#

    var enabled = false
    var reply = ProfileReply(status: 200, contentType: "application/json", body: Self.defaultBody)

    init(_ options: [String: String]) {
        enabled = Self.flag(options["capture"]) ?? false
        if let body = options["capture_reply"] { reply.body = body }
        if let status = options["capture_status"].flatMap(Int.init), (200...299).contains(status) { reply.status = status }
        if let type = options["capture_content_type"], !type.isEmpty { reply.contentType = type }
    }

    static func flag(_ text: String?) -> Bool? {
        switch text?.lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }

    /// Option values that are not valid, each with what would be.
    static func problems(in options: [String: String]) -> [String] {
        var problems: [String] = []
        if let text = options["capture"], flag(text) == nil {
            problems.append("options.capture: '\(text)' is not valid (expected true or false)")
        }
        if let text = options["capture_status"], Int(text).map({ (200...299).contains($0) }) != true {
            problems.append("options.capture_status: '\(text)' is not valid (expected a success status 200–299, so that the device stops re-sending)")
        }
        if options["capture"].flatMap(flag) != true {
            for key in keys.dropFirst() where options[key] != nil {
                problems.append("options.\(key): only used with options.capture: true")
            }
        }
        return problems
    }
}
