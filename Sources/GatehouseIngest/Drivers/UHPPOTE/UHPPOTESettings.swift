import Foundation
import GatehouseCore

/// One controller's settings, read from its device entry: `serial`, `address` and `options`.
/// Parsing is pure, so `check-config` reports every problem without touching the network.
struct UHPPOTESettings: Sendable, Equatable {
    static let defaultPort = 60000

    var serial: UInt32
    var host: String
    var port: Int
    var pollIntervalSeconds = 5.0
    var timeoutMilliseconds = 500
    var retries = 1
    var offlineAfterMissedReplies = 3
    /// Where pushed status packets arrive; nil = poll only.
    var listenPort: Int?
    var listenHost = "0.0.0.0"
    /// Written to the controller as its listener on start, when set.
    var setListener: (host: UHPPOTEIPv4, port: UInt16)?
    var setTime = false
    /// Overrides `clock_skew.threshold_seconds` from the config for this controller when set.
    var clockSkewThresholdSeconds: Double?
    /// Records committed per transaction while catching up a long log.
    var batchSize = 100

    /// The options a uhppote device takes (README: Config).
    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("poll_interval_seconds", .double(0.05...3600), default: .double(5), "how often the event log is read"),
        OptionDeclaration("timeout_ms", .int(10...30_000), default: .int(500), "how long one request waits for its reply"),
        OptionDeclaration("retries", .int(0...10), default: .int(1), "retries of a request that got no reply"),
        OptionDeclaration(
            "offline_after_missed_replies", .int(1...1000), default: .int(3), "polls without a reply before the controller is down"),
        OptionDeclaration("listen_port", .int(1...65_535), "UDP port for pushed status packets; unset = poll only"),
        OptionDeclaration("listen_host", .ipv4, default: .string("0.0.0.0"), "address the push listener binds"),
        OptionDeclaration("set_listener", .hostPort, "written to the controller as its event listener on start"),
        OptionDeclaration("set_time", .bool, default: .bool(false), "set the controller's clock on start"),
        OptionDeclaration(
            "clock_skew_threshold_seconds", .double(1...86_400), "overrides clock_skew.threshold_seconds for this controller"),
    ]

    static func == (l: Self, r: Self) -> Bool {
        l.serial == r.serial && l.host == r.host && l.port == r.port && l.pollIntervalSeconds == r.pollIntervalSeconds
            && l.timeoutMilliseconds == r.timeoutMilliseconds && l.retries == r.retries
            && l.offlineAfterMissedReplies == r.offlineAfterMissedReplies && l.listenPort == r.listenPort
            && l.listenHost == r.listenHost && l.setListener?.host == r.setListener?.host
            && l.setListener?.port == r.setListener?.port && l.setTime == r.setTime
            && l.clockSkewThresholdSeconds == r.clockSkewThresholdSeconds
    }

    /// The settings, or every problem found, each naming the key and what would be valid.
    static func parse(_ device: DeviceConfig) -> Result<UHPPOTESettings, UHPPOTEConfigError> {
        var problems: [String] = []
        var serial: UInt32 = 0
        if let text = device.serial {
            if let value = UInt32(text), value > 0 {
                serial = value
            } else {
                problems.append("serial: '\(text)' is not a controller serial number (expected a decimal number 1–4294967295, as printed on the controller)")
            }
        } else {
            problems.append("serial: required for driver uhppote (the controller's serial number, e.g. 423187757)")
        }
        var host = ""
        var port = defaultPort
        if let address = device.address {
            let parts = address.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count <= 2, UHPPOTEIPv4(String(parts[0])) != nil {
                host = String(parts[0])
                if parts.count == 2 {
                    if let p = Int(parts[1]), (1...65535).contains(p) {
                        port = p
                    } else {
                        problems.append("address: port '\(parts[1])' in '\(address)' is not a UDP port (expected 1–65535; controllers use 60000)")
                    }
                }
            } else {
                problems.append("address: '\(address)' is not an IPv4 address with an optional port (expected e.g. 192.168.1.100 or 192.168.1.100:60000)")
            }
        } else {
            problems.append("address: required for driver uhppote (the controller's IPv4 address, e.g. 192.168.1.100[:60000])")
        }
        // Options were read and range-checked against `declarations` by the config loader.
        var s = UHPPOTESettings(serial: serial, host: host, port: port)
        let o = device.options
        if let v = o.double("poll_interval_seconds") { s.pollIntervalSeconds = v }
        if let v = o.int("timeout_ms") { s.timeoutMilliseconds = v }
        if let v = o.int("retries") { s.retries = v }
        if let v = o.int("offline_after_missed_replies") { s.offlineAfterMissedReplies = v }
        s.listenPort = o.int("listen_port")
        if let v = o.string("listen_host") { s.listenHost = v }
        if let (host, port) = o.hostPort("set_listener"), let ip = UHPPOTEIPv4(host), let p = UInt16(exactly: port) {
            s.setListener = (ip, p)
        }
        if let v = o.bool("set_time") { s.setTime = v }
        s.clockSkewThresholdSeconds = o.double("clock_skew_threshold_seconds")
        if s.setListener != nil, s.listenPort == nil {
            problems.append("options.set_listener: needs options.listen_port too, or the pushed packets reach no one")
        }
        return problems.isEmpty ? .success(s) : .failure(UHPPOTEConfigError(deviceID: device.id, problems: problems))
    }
}

/// A device entry the uhppote driver cannot run with.
public struct UHPPOTEConfigError: Error, Sendable, CustomStringConvertible {
    public let deviceID: String
    public let problems: [String]
    public var description: String { "device \(deviceID): \(problems.joined(separator: "; "))" }
}
