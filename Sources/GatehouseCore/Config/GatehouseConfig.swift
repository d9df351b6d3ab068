import Foundation

/// The whole daemon configuration, as read from one YAML file (config/gatehouse.example.yaml
/// documents every key).
public struct GatehouseConfig: Sendable, Equatable {
    public var site: String
    public var stateDirectory: String
    public var diskBudgetBytes: Int64
    public var statusIntervalSeconds: Double
    public var logLevel: String
    public var ingest: IngestListenerConfig
    public var admin: AdminListenerConfig
    public var queue: QueueSettings
    public var clockSkew: ClockSkewSettings
    public var privacy: PrivacyPolicy
    public var devices: [DeviceConfig]
    public var sinks: [SinkConfig]
    /// Where vendor profiles live (`adapters_directory`); the loader resolves a relative one against the config file's directory.
    public var adaptersDirectory: String = "adapters"
    /// Pictures that come with vendor payloads (`images:`).
    public var images = ImageSettings()
    /// What every camera's snapshot fetches share (`picture_health:`).
    public var pictureHealth = PictureHealthSettings()
    /// What every camera's liveness probes share (`liveness:`).
    public var liveness = LivenessSettings()
    /// Devices that connect at once (`connect_concurrency`): at start, after a reload and when a
    /// site's cameras all come back together; the rest wait their turn.
    public var connectConcurrency = GatehouseConfig.defaultConnectConcurrency
    /// A few dozen sessions at a time: 300 cameras still connect within seconds, and what each
    /// connect allocates (buffers, parsers, handshakes) does not peak for all of them at once.
    public static let defaultConnectConcurrency = 32

    public func device(_ id: String) -> DeviceConfig? { devices.first { $0.id == id } }
}

/// The HTTP listener devices push to.
public struct IngestListenerConfig: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var maxBodyBytes: Int
    /// A connection that sends nothing for this long is closed (slow-loris defence).
    public var idleTimeoutSeconds: Double
    /// Time allowed to receive a whole request body.
    public var requestTimeoutSeconds: Double
    /// Source addresses allowed to connect at all; empty admits any.
    public var allowFrom: [AddressRange]
    /// Requests per second allowed from one source address (token bucket), 0 to disable.
    public var rateLimitPerSecond: Double
    public var rateLimitBurst: Int
}

/// The local listener for `gatehouse status` and Prometheus scrapes.
public struct AdminListenerConfig: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The web console served on this listener (`admin.console:`).
    public var console = ConsoleSettings()
    /// `admin.tls:`: the listener speaks HTTPS only (PEM files, read at start).
    public var tls: AdminTLSFiles?
}

public struct AdminTLSFiles: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String
    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

/// Tuning of the durable queue.
public struct QueueSettings: Sendable, Equatable {
    /// Most events committed in one transaction (group commit).
    public var commitMaxEvents: Int
    /// Raw payloads kept in quarantine are cut to this size.
    public var quarantineMaxPayloadBytes: Int
    /// How long a device's dedup keys are remembered.
    public var dedupWindowHours: Double
    /// Most appends (pushed requests, polled batches) waiting for the group commit; beyond it a
    /// request is refused with 503 and Retry-After at once, so replies never queue for long and
    /// memory stays bounded under overload.
    public var maxWaitingAppends: Int

    public init(
        commitMaxEvents: Int = 2000, quarantineMaxPayloadBytes: Int = 256 << 10, dedupWindowHours: Double = 72, maxWaitingAppends: Int = 1000
    ) {
        self.commitMaxEvents = commitMaxEvents
        self.quarantineMaxPayloadBytes = quarantineMaxPayloadBytes
        self.dedupWindowHours = dedupWindowHours
        self.maxWaitingAppends = maxWaitingAppends
    }
}

/// When a device's clock is reported as skewed.
public struct ClockSkewSettings: Sendable, Equatable {
    public var thresholdSeconds: Double
    public var reportIntervalSeconds: Double
    /// A device time further ahead of the gateway clock than this is not trusted (`occurredAt`
    /// falls back to the receive time; the device's text is kept).
    public var maxAheadSeconds: Double = 3600
    /// A device time before this year is not trusted: a clock reset to its factory date.
    public var earliestYear: Int = 2015 {
        didSet { earliestMilliseconds = Self.startOfYearMilliseconds(earliestYear) }
    }
    /// 1 January of `earliestYear`, 00:00 UTC, in Unix milliseconds: compared on every event.
    public private(set) var earliestMilliseconds: Int64 = ClockSkewSettings.startOfYearMilliseconds(2015)

    public init(thresholdSeconds: Double, reportIntervalSeconds: Double, maxAheadSeconds: Double = 3600, earliestYear: Int = 2015) {
        self.thresholdSeconds = thresholdSeconds
        self.reportIntervalSeconds = reportIntervalSeconds
        self.maxAheadSeconds = maxAheadSeconds
        self.earliestYear = earliestYear
        earliestMilliseconds = Self.startOfYearMilliseconds(earliestYear)
    }

    /// Days from 1970-01-01 to 1 January of `year` (proleptic Gregorian), times a day in milliseconds.
    static func startOfYearMilliseconds(_ year: Int) -> Int64 {
        let y = year - 1  // whole years before it
        let days = 365 * (y - 1969) + (y / 4 - 1969 / 4) - (y / 100 - 1969 / 100) + (y / 400 - 1969 / 400)
        return Int64(days) * 86_400_000
    }
}

/// A configured device.
public struct DeviceConfig: Sendable, Equatable {
    public var id: String
    public var driver: String
    public var vendor: String
    public var model: String?
    public var type: DeviceType
    public var address: String?
    public var point: String?
    public var direction: Direction?
    /// Per-point direction and name (`points:`), by the point the device reports.
    public var points: [String: PointConfig] = [:]
    public var timeZone: TimeZone
    public var auth: DeviceAuth?
    public var allowFrom: [AddressRange]
    public var offlineAfterSeconds: Double
    public var enabled: Bool
    /// The vendor's own identity for the device (serial number), where a driver or profile needs it.
    public var serial: String?
    /// Driver-specific settings, read against the driver's declared options.
    public var options: DeviceOptions
    /// Where the device is defined in the config file, for diagnostics found after parsing.
    public var line: Int = 0
    /// The config's `adapters_directory`, carried on each device because drivers see only the
    /// device in `validate(device:)` and `decode(_:device:)` (the profile driver reads it).
    public var adaptersDirectory: String = "adapters"
    /// The config's `images` setting, carried on each device for the same reason.
    public var images = ImageSettings()
    /// Snapshot scoring for a camera (`picture_health:`), whatever its driver; nil: none.
    public var pictureHealth: CameraPictureHealth?
    /// Liveness probing for a camera (`liveness:`), whatever its driver; nil: none. Its verdict
    /// decides the device's up/down instead of traffic and `offline_after_seconds`.
    public var liveness: CameraLiveness?

    public var ref: DeviceRef { DeviceRef(id: id, vendor: vendor, model: model, type: type) }
}

/// How a device proves who it is on the ingest listener.
public enum DeviceAuth: Sendable, Equatable {
    /// `Authorization: Bearer …` or `X-Gatehouse-Token: …`.
    case token(Secret)
    /// HTTP Basic.
    case basic(username: String, password: Secret)
    /// HTTP Digest (RFC 7616, MD5, qop=auth), for firmware that offers nothing else.
    case digest(username: String, password: Secret)
}

/// A configured sink: the fields every sink type shares, and the settings its own type read.
public struct SinkConfig: Sendable, Equatable {
    public var name: String
    public var batchMaxEvents: Int
    public var backoffInitialSeconds: Double
    public var backoffMaxSeconds: Double
    /// While events keep arriving, how long a runner waits to fill a batch that is not full
    /// before sending it (`batch_linger_seconds`); the first events after an idle spell go at once.
    public var batchLingerSeconds: Double
    /// The sink type's own section, read by that type (see `SinkReader`); Core never looks inside.
    public var settings: any SinkSettings

    public init(
        name: String, batchMaxEvents: Int = 500, backoffInitialSeconds: Double = 0.2, backoffMaxSeconds: Double = 10,
        batchLingerSeconds: Double = 0, settings: any SinkSettings
    ) {
        self.name = name
        self.batchMaxEvents = batchMaxEvents
        self.backoffInitialSeconds = backoffInitialSeconds
        self.backoffMaxSeconds = backoffMaxSeconds
        self.batchLingerSeconds = batchLingerSeconds
        self.settings = settings
    }

    /// `type:` in the config.
    public var typeName: String { type(of: settings).typeName }

    public static func == (lhs: SinkConfig, rhs: SinkConfig) -> Bool {
        lhs.name == rhs.name && lhs.batchMaxEvents == rhs.batchMaxEvents
            && lhs.backoffInitialSeconds == rhs.backoffInitialSeconds && lhs.backoffMaxSeconds == rhs.backoffMaxSeconds
            && lhs.batchLingerSeconds == rhs.batchLingerSeconds
            && lhs.settings.isEqual(to: rhs.settings)
    }
}

/// One sink type's settings. Equatable so a reload restarts only sinks whose settings changed.
public protocol SinkSettings: Sendable, Equatable {
    /// The `type:` value that selects this sink type.
    static var typeName: String { get }
}

extension SinkSettings {
    /// Equality across the existential: settings of another type are never equal.
    public func isEqual(to other: any SinkSettings) -> Bool { (other as? Self) == self }
}

/// How one sink type reads its own config section. The daemon passes the registered readers to
/// `ConfigLoader`, so Core names no sink type.
public struct SinkReader: Sendable {
    public let typeName: String
    /// Reads the sink's section (common keys already taken); reports problems to the map's log.
    let read: @Sendable (YAMLMapping, [String: String]) -> (any SinkSettings)?

    package init(typeName: String, read: @escaping @Sendable (YAMLMapping, [String: String]) -> (any SinkSettings)?) {
        self.typeName = typeName
        self.read = read
    }
}

/// Pictures in vendor payloads (`images:`): by default counted, never kept; with `store` written
/// once under `directory`, content-addressed by SHA-256, within their own `max_bytes` budget.
public struct ImageSettings: Sendable, Equatable {
    public var store = false
    /// Default `<state_directory>/images`.
    public var directory = "images"
    /// Bytes the image directory may hold; beyond it images are counted but not stored.
    public var maxBytes: Int64 = 256 << 20
    /// From `privacy.images: keep N days`: older pictures are deleted by the retention sweep.
    public var retentionDays: Double?

    public init(store: Bool = false, directory: String = "images", maxBytes: Int64 = 256 << 20, retentionDays: Double? = nil) {
        self.store = store
        self.directory = directory
        self.maxBytes = maxBytes
        self.retentionDays = retentionDays
    }
}
