import Foundation
import GatehouseCore

/// One GB/T 28181 device's settings, read from its entry: `serial` (the device's 20-digit ID),
/// `auth` (its registration password) and `options`. Parsing is pure, for `check-config`.
struct GB28181Settings: Sendable, Equatable {
    var deviceID: String
    var password: String
    var listenHost = "0.0.0.0"
    var listenPort = 5060
    var platformID = "34020000002000000001"
    /// The SIP domain and Digest realm; the first 10 digits of the platform ID unless set.
    var domain = "3402000000"
    var keepaliveIntervalSeconds = 60.0
    var keepaliveMisses = 3
    var maxExpiresSeconds = 3600
    var failuresBeforeBan = 5
    var banMinutes = 10.0
    var queryCatalog = true
    var queryDeviceInfo = true
    var subscribeAlarms = false
    var kinds: [String: EventKind] = [:]

    /// How long without a keepalive before the device is offline.
    var keepaliveTimeoutSeconds: Double { keepaliveIntervalSeconds * Double(keepaliveMisses) }

    /// The options a gb28181 device takes (README: Config).
    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("listen_port", .int(1...65_535), default: .int(5060), "SIP port (UDP and TCP) devices register to; devices sharing it share one listener"),
        OptionDeclaration("listen_host", .ipv4, default: .string("0.0.0.0"), "address the SIP listener binds"),
        OptionDeclaration("platform_id", .string, default: .string("34020000002000000001"), "the gateway's 20-digit platform (SIP server) ID typed into the device"),
        OptionDeclaration("domain", .string, "SIP domain and Digest realm typed into the device; default: first 10 digits of platform_id"),
        OptionDeclaration("keepalive_interval_seconds", .double(1...3600), default: .double(60), "the heartbeat interval set on the device"),
        OptionDeclaration("keepalive_misses", .int(1...100), default: .int(3), "missed heartbeats before the device is offline (keepalive timeout)"),
        OptionDeclaration("max_expires_seconds", .int(60...86_400), default: .int(3600), "longest registration granted; a longer Expires is cut to this"),
        OptionDeclaration("failures_before_ban", .int(1...1000), default: .int(5), "wrong passwords in a row before the device's address is refused"),
        OptionDeclaration("ban_minutes", .double(0...1440), default: .double(10), "how long a banned address is refused (0: no ban)"),
        OptionDeclaration("query_catalog", .bool, default: .bool(true), "send a Catalog query after each registration (channels become points)"),
        OptionDeclaration("query_device_info", .bool, default: .bool(true), "send DeviceInfo and DeviceStatus queries after each registration"),
        OptionDeclaration("subscribe_alarms", .bool, default: .bool(false), "send an alarm SUBSCRIBE after registration, for devices that only send alarms then"),
        OptionDeclaration("kinds", .kindTable, "extra or changed AlarmMethod[/AlarmType]: kind rows (e.g. '2/6': alarm.fire)"),
    ]

    static func isGBID(_ text: String) -> Bool { text.count == 20 && text.allSatisfy(\.isASCII) && text.allSatisfy(\.isNumber) }

    static func parse(_ device: DeviceConfig) -> Result<GB28181Settings, GB28181ConfigError> {
        var problems: [String] = []
        var deviceID = ""
        if let serial = device.serial {
            if isGBID(serial) { deviceID = serial } else {
                problems.append("serial: '\(serial)' is not a GB/T 28181 device ID (expected the 20 digits set on the device, e.g. 34020000001320000001)")
            }
        } else {
            problems.append("serial: required for driver gb28181 (the device's 20-digit SIP user ID, e.g. 34020000001320000001)")
        }
        var password = ""
        switch device.auth {
        case .digest(_, let secret), .basic(_, let secret): password = secret.value
        default:
            problems.append("auth: required for driver gb28181 (the registration password typed into the device: auth: {username: <device ID>, password: {env: GB_PASSWORD}, scheme: digest}; several devices may name the same secret)")
        }
        var s = GB28181Settings(deviceID: deviceID, password: password)
        let o = device.options
        if let v = o.int("listen_port") { s.listenPort = v }
        if let v = o.string("listen_host") { s.listenHost = v }
        if let v = o.string("platform_id") {
            if isGBID(v) { s.platformID = v } else {
                problems.append("options.platform_id: '\(v)' is not a 20-digit GB/T 28181 ID (e.g. 34020000002000000001)")
            }
        }
        s.domain = o.string("domain") ?? String(s.platformID.prefix(10))
        if s.domain.isEmpty || s.domain.contains(where: { $0 == " " || $0 == "\"" }) {
            problems.append("options.domain: '\(s.domain)' is not a SIP domain (e.g. 3402000000)")
        }
        if let v = o.double("keepalive_interval_seconds") { s.keepaliveIntervalSeconds = v }
        if let v = o.int("keepalive_misses") { s.keepaliveMisses = v }
        if let v = o.int("max_expires_seconds") { s.maxExpiresSeconds = v }
        if let v = o.int("failures_before_ban") { s.failuresBeforeBan = v }
        if let v = o.double("ban_minutes") { s.banMinutes = v }
        if let v = o.bool("query_catalog") { s.queryCatalog = v }
        if let v = o.bool("query_device_info") { s.queryDeviceInfo = v }
        if let v = o.bool("subscribe_alarms") { s.subscribeAlarms = v }
        s.kinds = Dictionary(o.kindTable("kinds").map { ($0.code, $0.kind) }, uniquingKeysWith: { _, last in last })
        return problems.isEmpty ? .success(s) : .failure(GB28181ConfigError(deviceID: device.id, problems: problems))
    }
}

/// A device entry the gb28181 driver cannot run with.
public struct GB28181ConfigError: Error, Sendable, CustomStringConvertible {
    public let deviceID: String
    public let problems: [String]
    public var description: String { "device \(deviceID): \(problems.joined(separator: "; "))" }
}
