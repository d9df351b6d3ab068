import Foundation

/// The top-level `picture_health:` section: what all cameras' snapshot fetches share
/// (Sources/GatehouseIngest/PictureHealth/README.md).
public struct PictureHealthSettings: Sendable, Equatable {
    /// Snapshots fetched and scored at once, whatever the number of cameras.
    public var concurrency = 4
    /// Time allowed for one snapshot, connect to last byte (old boards take seconds per JPEG).
    public var timeoutSeconds: Double = 10
    /// A larger snapshot is refused unread beyond this (a 4K JPEG is 1–2 MB).
    public var maxSnapshotBytes: Int64 = 8 << 20

    public init(concurrency: Int = 4, timeoutSeconds: Double = 10, maxSnapshotBytes: Int64 = 8 << 20) {
        self.concurrency = concurrency
        self.timeoutSeconds = timeoutSeconds
        self.maxSnapshotBytes = maxSnapshotBytes
    }
}

/// A camera's `picture_health:` block: where its snapshot is, how often to look, and when its
/// picture counts as degraded. Thresholds left out are learned (sharpness) or take the defaults.
public struct CameraPictureHealth: Sendable, Equatable {
    /// Where the snapshot comes from: an HTTP URL (given or the brand's), or the camera's ONVIF
    /// media service (`GetProfiles`, `GetSnapshotUri` on the device service at `address`).
    public enum Source: String, Sendable, Equatable, CaseIterable {
        case url, onvif
    }

    public var source = Source.url
    /// Full snapshot URL; nil: the brand's default path on the device's `address`, or with
    /// `source: onvif` the URI the camera names.
    public var snapshotURL: String?
    public var intervalSeconds: Double = 600
    /// Bad snapshots in a row before `camera.image-degraded`.
    public var raiseAfter = 3
    /// Good snapshots in a row before `camera.image-restored`.
    public var clearAfter = 2
    /// How long the camera's own sharpness baseline is learned from its first snapshots.
    public var learnHours: Double = 72
    /// Blurred when sharpness falls below this fraction of the learned baseline.
    public var blurFraction: Double = 0.35
    /// Blurred below this absolute sharpness (variance of the Laplacian); when set, nothing is learned.
    public var minSharpness: Double?
    /// Too dark when the mean grey level (0–255) is below this.
    public var darkBelow: Double = 25
    /// Covered (uniform) when the grey levels' standard deviation is below this.
    public var uniformBelow: Double = 6
    /// Frozen when the mean absolute difference from the previous snapshot is below this.
    public var frozenChangeBelow: Double = 0.1

    public init() {}

    /// Snapshot paths by brand (`vendor:`), from the camera notes; ONVIF `GetSnapshotUri` and
    /// other brands need `snapshot_url`.
    public static let brandSnapshotPaths: [(vendor: String, path: String)] = [
        ("hikvision", "/ISAPI/Streaming/channels/101/picture"),
        ("dahua", "/cgi-bin/snapshot.cgi?channel=1"),
        ("amcrest", "/cgi-bin/snapshot.cgi?channel=1"),
        ("reolink", "/cgi-bin/api.cgi?cmd=onvifSnapPic&channel=0"),
    ]

    /// The brand's snapshot URL on `address` (host, host:port or a URL whose path is ignored).
    public static func defaultSnapshotURL(vendor: String, address: String?) -> String? {
        guard let address, let path = brandSnapshotPaths.first(where: { vendor.lowercased().contains($0.vendor) })?.path else { return nil }
        let text = address.contains("://") ? address : "http://" + address
        guard let url = URL(string: text), let scheme = url.scheme, let host = url.host else { return nil }
        return "\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")\(path)"
    }
}

extension ConfigLoader {
    static func readPictureHealthSettings(_ map: YAMLMapping?) -> PictureHealthSettings {
        guard let map else { return PictureHealthSettings() }
        defer { map.finish() }
        return PictureHealthSettings(
            concurrency: map.int("concurrency", default: 4, range: 1...64),
            timeoutSeconds: map.double("timeout_seconds", default: 10, range: 1...120),
            maxSnapshotBytes: map.bytes("max_snapshot_bytes", default: 8 << 20, minimum: 64 << 10))
    }

    static func readCameraPictureHealth(_ map: YAMLMapping?, vendor: String, address: String?, driver: String? = nil) -> CameraPictureHealth? {
        guard let map else { return nil }
        defer { map.finish() }
        var health = CameraPictureHealth()
        // An onvif camera without a snapshot_url asks its media service; any camera can with `source: onvif`.
        let source = map.choice("source", default: driver == "onvif" && !map.has("snapshot_url") ? CameraPictureHealth.Source.onvif : .url)
        health.source = source ?? .url
        if health.source == .onvif {
            // The device service URL is made from `address` as the onvif driver makes it.
            if address == nil {
                map.log.report(nil, fallback: map.mark, key: map.join("source"), "source: onvif needs the device's address (the ONVIF device service's host[:port] or URL)")
            }
            if map.has("snapshot_url") {
                map.log.report(map.node("snapshot_url"), key: map.join("snapshot_url"), "snapshot_url and source: onvif exclude each other (the ONVIF camera names its snapshot URI)")
            }
        } else if let url = map.string("snapshot_url", expected: "an http:// or https:// URL") {
            if let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil {
                health.snapshotURL = url
            } else {
                map.log.report(map.node("snapshot_url"), key: map.join("snapshot_url"), "'\(url)' is not an http:// or https:// URL (e.g. http://192.0.2.31/ISAPI/Streaming/channels/101/picture)")
            }
        } else if !map.has("snapshot_url") {
            health.snapshotURL = CameraPictureHealth.defaultSnapshotURL(vendor: vendor, address: address)
            if health.snapshotURL == nil {
                let brands = CameraPictureHealth.brandSnapshotPaths.map(\.vendor).joined(separator: ", ")
                map.log.report(nil, fallback: map.mark, key: map.join("snapshot_url"), "required: no default snapshot path for vendor '\(vendor)'\(address == nil ? " without an address" : "") (expected snapshot_url: http://HOST/PATH, source: onvif, or the device's address with vendor one of \(brands))")
            }
        }
        // Seconds, from 1 for tests and demos; cameras are polled every few minutes (old boards take seconds per JPEG).
        health.intervalSeconds = map.double("interval_seconds", default: 600, range: 1...86_400)
        health.raiseAfter = map.int("raise_after", default: 3, range: 1...100)
        health.clearAfter = map.int("clear_after", default: 2, range: 1...100)
        health.learnHours = map.double("learn_hours", default: 72, range: 0...2160)
        health.blurFraction = map.double("blur_fraction", default: 0.35, range: 0.01...1)
        if map.has("min_sharpness") { health.minSharpness = map.double("min_sharpness", default: 0, range: 0...1_000_000) }
        health.darkBelow = map.double("dark_below", default: 25, range: 0...255)
        health.uniformBelow = map.double("uniform_below", default: 6, range: 0...128)
        health.frozenChangeBelow = map.double("frozen_change_below", default: 0.1, range: 0...255)
        return health
    }
}
