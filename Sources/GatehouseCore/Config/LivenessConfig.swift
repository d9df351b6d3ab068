import Foundation

/// The top-level `liveness:` section: what all cameras' liveness probes share
/// (Sources/GatehouseIngest/Liveness/README.md).
public struct LivenessSettings: Sendable, Equatable {
    /// Probes in flight at once, whatever the number of cameras.
    public var concurrency = 16
    /// Time allowed for one probe, connect to last byte.
    public var timeoutSeconds: Double = 5

    public init(concurrency: Int = 16, timeoutSeconds: Double = 5) {
        self.concurrency = concurrency
        self.timeoutSeconds = timeoutSeconds
    }
}

/// How a camera's liveness is checked (camera notes §1, the probe ladder).
public enum LivenessProbeKind: String, Sendable, Equatable, CaseIterable {
    /// RTSP DESCRIBE with the device's credentials: server, credentials and stream path.
    case rtspDescribe = "rtsp-describe"
    /// RTSP OPTIONS: the RTSP server answers (proves nothing about credentials or path).
    case rtspOptions = "rtsp-options"
    /// A TCP connect: something listens on the port.
    case tcp
    /// An HTTP snapshot whose body starts like a JPEG: the encoder makes frames.
    case snapshot
    /// ONVIF `GetSystemDateAndTime`, unauthenticated: the ONVIF stack answers.
    case onvif
}

/// A device's `liveness:` block: which probe, where, how often, and the hysteresis.
public struct CameraLiveness: Sendable, Equatable {
    public var probe: LivenessProbeKind = .rtspDescribe
    /// What the probe talks to: an rtsp:// URL, an http(s):// URL (snapshot, ONVIF device
    /// service) or host:port (tcp); from the brand's defaults on `address` when not given.
    public var target = ""
    public var intervalSeconds: Double = 30
    /// Each next probe is the interval ± this fraction, so cameras drift apart rather than align.
    public var jitter: Double = 0.2
    /// Failed probes in a row before `device.offline`.
    public var failuresToOffline = 3
    /// The delay before the next probe while a streak is on its way to a change (a failure of an
    /// online camera, an answer from an offline one); default interval / failures_to_offline.
    public var retrySeconds: Double = 10
    /// Answered probes in a row before `device.online`.
    public var successesToOnline = 1
    /// No change is announced sooner than this after the previous one (flapping links).
    public var minDwellSeconds: Double = 120

    public init() {}

    /// Stream paths (sub-stream: cheaper, and cameras limit their RTSP clients) and ONVIF
    /// device-service ports and paths by brand (`vendor:`), from the camera notes.
    public static let brandDefaults: [(vendor: String, rtspPath: String?, onvifPort: Int, onvifPath: String)] = [
        ("hikvision", "/Streaming/Channels/102", 80, "/onvif/device_service"),
        ("dahua", "/cam/realmonitor?channel=1&subtype=1", 80, "/onvif/device_service"),
        ("amcrest", "/cam/realmonitor?channel=1&subtype=1", 80, "/onvif/device_service"),
        ("uniview", "/unicast/c1/s1/live", 80, "/onvif/device_service"),
        ("tapo", "/stream2", 2020, "/onvif/service"),
        ("tp-link", "/stream2", 2020, "/onvif/service"),
        ("reolink", "/Preview_01_sub", 8000, "/onvif/device_service"),
    ]

    static func brand(_ vendor: String) -> (vendor: String, rtspPath: String?, onvifPort: Int, onvifPath: String)? {
        brandDefaults.first { vendor.lowercased().contains($0.vendor) }
    }

    /// Host and port (when written) of `address`: host, host:port or a URL.
    public static func hostAndPort(_ address: String?) -> (host: String, port: Int?)? {
        guard let address else { return nil }
        let text = address.contains("://") ? address : "http://" + address
        guard let url = URL(string: text), let host = url.host, !host.isEmpty else { return nil }
        return (host, url.port)
    }

    /// The probe a block without `probe:` uses: ONVIF for the onvif driver; DESCRIBE on the brand's
    /// sub-stream with credentials, OPTIONS without; TCP to 554 for a brand without a known path.
    public static func defaultProbe(driver: String, vendor: String, hasCredentials: Bool, hasURL: Bool) -> LivenessProbeKind {
        if driver == "onvif" { return .onvif }
        if hasURL || brand(vendor)?.rtspPath != nil { return hasCredentials ? .rtspDescribe : .rtspOptions }
        return .tcp
    }

    /// The brand's default target for `probe` on `address`, or nil where none applies.
    public static func defaultTarget(_ probe: LivenessProbeKind, vendor: String, address: String?) -> String? {
        guard let (host, port) = hostAndPort(address) else { return nil }
        switch probe {
        case .rtspDescribe, .rtspOptions:
            guard let path = brand(vendor)?.rtspPath else { return nil }
            return "rtsp://\(host):554\(path)"
        case .tcp:
            return "\(host):\(port ?? 554)"
        case .snapshot:
            return CameraPictureHealth.defaultSnapshotURL(vendor: vendor, address: address)
        case .onvif:
            let brand = brand(vendor)
            return "http://\(host):\(port ?? brand?.onvifPort ?? 80)\(brand?.onvifPath ?? "/onvif/device_service")"
        }
    }
}

extension ConfigLoader {
    static func readLivenessSettings(_ map: YAMLMapping?) -> LivenessSettings {
        guard let map else { return LivenessSettings() }
        defer { map.finish() }
        return LivenessSettings(
            concurrency: map.int("concurrency", default: 16, range: 1...256),
            timeoutSeconds: map.double("timeout_seconds", default: 5, range: 0.5...120))
    }

    static func readCameraLiveness(_ map: YAMLMapping?, driver: String, vendor: String, address: String?, auth: DeviceAuth?) -> CameraLiveness? {
        guard let map else { return nil }
        defer { map.finish() }
        var liveness = CameraLiveness()
        let hasCredentials = if case .digest = auth { true } else if case .basic = auth { true } else { false }
        liveness.probe = map.choice("probe", default: nil)
            ?? CameraLiveness.defaultProbe(driver: driver, vendor: vendor, hasCredentials: hasCredentials, hasURL: map.has("url"))
        let expected: String
        switch liveness.probe {
        case .rtspDescribe, .rtspOptions:
            expected = "an rtsp:// URL without user:password@ (credentials go in auth:), e.g. rtsp://192.0.2.31:554/Streaming/Channels/102"
        case .tcp: expected = "host:port, e.g. 192.0.2.31:554"
        case .snapshot: expected = "an http:// or https:// URL, e.g. http://192.0.2.31/ISAPI/Streaming/channels/101/picture"
        case .onvif: expected = "an http:// URL of the device service, e.g. http://192.0.2.31/onvif/device_service"
        }
        if let url = map.string("url", expected: expected) {
            if Self.livenessTargetIsValid(url, for: liveness.probe) {
                liveness.target = url
            } else {
                map.log.report(map.node("url"), key: map.join("url"), "'\(url)' does not suit probe \(liveness.probe.rawValue) (expected \(expected))")
            }
        } else if !map.has("url") {
            if let target = CameraLiveness.defaultTarget(liveness.probe, vendor: vendor, address: address) {
                liveness.target = target
            } else {
                let brands = CameraLiveness.brandDefaults.filter { $0.rtspPath != nil }.map(\.vendor).joined(separator: ", ")
                map.log.report(
                    nil, fallback: map.mark, key: map.join("url"),
                    "required: no default \(liveness.probe.rawValue) target for vendor '\(vendor)'\(address == nil ? " without an address" : "") (expected url: \(expected); defaults exist for the device's address with vendor one of \(brands))")
            }
        }
        // Seconds, from 1 for tests and demos; 30 s suits DESCRIBE, snapshots every few minutes.
        liveness.intervalSeconds = map.double("interval_seconds", default: 30, range: 1...86_400)
        liveness.jitter = map.double("jitter", default: 0.2, range: 0...0.5)
        liveness.failuresToOffline = map.int("failures_to_offline", default: 3, range: 1...100)
        liveness.successesToOnline = map.int("successes_to_online", default: 1, range: 1...100)
        liveness.minDwellSeconds = map.double("min_dwell_seconds", default: 120, range: 0...86_400)
        // Confirming a change faster than the interval: down within about two intervals at the defaults.
        let retryDefault = max(1, liveness.intervalSeconds / Double(liveness.failuresToOffline))
        liveness.retrySeconds = map.double("retry_seconds", default: retryDefault, range: 1...max(1, liveness.intervalSeconds))
        return liveness
    }

    static func livenessTargetIsValid(_ text: String, for probe: LivenessProbeKind) -> Bool {
        switch probe {
        case .rtspDescribe, .rtspOptions:
            guard let url = URL(string: text), url.scheme == "rtsp", let host = url.host, !host.isEmpty else { return false }
            // Credentials belong in auth:, where they are not logged (camera notes §6).
            return url.user == nil
        case .snapshot, .onvif:
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else { return false }
            return true
        case .tcp:
            guard !text.contains("/"), let (_, port) = CameraLiveness.hostAndPort(text), let port else { return false }
            return (1...65535).contains(port)
        }
    }
}
