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

    static let optionNames: [String] = [
        "poll_interval_seconds", "timeout_ms", "retries", "offline_after_missed_replies", "listen_port", "listen_host",
        "set_listener", "set_time", "clock_skew_threshold_seconds",
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
        var s = UHPPOTESettings(serial: serial, host: host, port: port)
        let o = device.options
        for key in o.keys.sorted() where !optionNames.contains(key) {
            problems.append("options.\(key): unknown option for driver uhppote (valid: \(optionNames.joined(separator: ", ")))")
        }
        func number(_ key: String, _ range: ClosedRange<Double>, _ unit: String) -> Double? {
            guard let text = o[key] else { return nil }
            guard let value = Double(text), range.contains(value) else {
                problems.append("options.\(key): '\(text)' is not valid (expected \(unit) from \(range.lowerBound.clean) to \(range.upperBound.clean))")
                return nil
            }
            return value
        }
        func hostPort(_ key: String) -> (UHPPOTEIPv4, UInt16)? {
            guard let text = o[key] else { return nil }
            let parts = text.split(separator: ":")
            guard parts.count == 2, let ip = UHPPOTEIPv4(String(parts[0])), let p = UInt16(parts[1]), p > 0 else {
                problems.append("options.\(key): '\(text)' is not host:port (expected this gateway's IPv4 address and listen port, e.g. 192.168.1.10:60001)")
                return nil
            }
            return (ip, p)
        }
        if let v = number("poll_interval_seconds", 0.05...3600, "seconds") { s.pollIntervalSeconds = v }
        if let v = number("timeout_ms", 10...30_000, "milliseconds") { s.timeoutMilliseconds = Int(v) }
        if let v = number("retries", 0...10, "a whole number") { s.retries = Int(v) }
        if let v = number("offline_after_missed_replies", 1...1000, "a whole number") { s.offlineAfterMissedReplies = Int(v) }
        if let v = number("listen_port", 1...65535, "a UDP port") { s.listenPort = Int(v) }
        if let v = number("clock_skew_threshold_seconds", 1...86_400, "seconds") { s.clockSkewThresholdSeconds = v }
        if let text = o["listen_host"] {
            if UHPPOTEIPv4(text) != nil { s.listenHost = text } else {
                problems.append("options.listen_host: '\(text)' is not an IPv4 address (expected e.g. 0.0.0.0 for every interface)")
            }
        }
        if let (ip, p) = hostPort("set_listener") { s.setListener = (ip, p) }
        if let text = o["set_time"] {
            switch text.lowercased() {
            case "true", "yes", "on": s.setTime = true
            case "false", "no", "off": s.setTime = false
            default: problems.append("options.set_time: '\(text)' is not a boolean (expected true or false)")
            }
        }
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

extension Double {
    fileprivate var clean: String { self == rounded() ? String(Int(self)) : String(self) }
}
