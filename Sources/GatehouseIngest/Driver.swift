import GatehouseCore
import Hummingbird

/// Swift code that owns one device protocol: its routes or polling, its decoding, its replies.
public protocol Driver: Sendable {
    /// The name devices use in config (`driver: generic-json`).
    var name: String { get }

    /// Adds this driver's routes to the ingest listener, in a group that counts its refusals
    /// under the driver's name; drivers that only poll add none.
    func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext)

    /// Maps a payload to drafts. Used live and by `gatehouse quarantine replay`.
    func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft]

    /// The options a device of this driver takes, declared once; the config loader reads
    /// `options:` against them, so a device only ever holds typed, valid values.
    var options: DriverOptionSet { get }

    /// Checks what the declarations cannot: `serial`, `address`, `auth` and how options go
    /// together; each problem names the key and what would be valid. Runs in `check-config`,
    /// at start and on reload.
    func validate(device: DeviceConfig) -> [String]

    /// Whether `run(device:context:)` does long-running work (polling, subscriptions, UDP).
    var runsPerDevice: Bool { get }

    /// Long-running work for one device; returns when cancelled. A thrown error is logged, the
    /// device is marked down with it, and the supervisor runs this again after a backoff.
    func run(device: DeviceConfig, context: DriverContext) async throws

    /// Takes a reloaded config (SIGHUP) for state a driver keeps beyond its devices, such as
    /// loaded profiles; returns what changed or failed, for the reload log line.
    func reload(config: GatehouseConfig) -> [String]

    /// The configured device that sent a payload quarantined without one (its serial was not
    /// configured yet), found the way the live route finds it; nil when it cannot tell.
    func resolveDevice(for payload: RawPayload, remote: String?, in devices: [DeviceConfig]) -> DeviceConfig?
}

extension Driver {
    public var options: DriverOptionSet { .none }

    public func validate(device: DeviceConfig) -> [String] { [] }

    public var runsPerDevice: Bool { false }

    public func run(device: DeviceConfig, context: DriverContext) async throws {}

    public func reload(config: GatehouseConfig) -> [String] { [] }

    public func resolveDevice(for payload: RawPayload, remote: String?, in devices: [DeviceConfig]) -> DeviceConfig? { nil }
}

/// Every driver this build carries: adding a protocol adds one line here and one folder under Drivers/.
/// Drivers keep state (UHPPOTE listeners, the ZKTeco command queue, loaded profiles), so the
/// registry lists how to make each one and keeps no instance: every daemon run, config check and
/// quarantine replay makes its own set with `makeAll()`.
public enum DriverRegistry {
    public static let makers: [@Sendable () -> any Driver] = [
        { GenericJSONDriver() },
        { ZKTecoDriver() },
        { UHPPOTEDriver() },
        { ProfileDriver() },
        { HikvisionACSDriver() },
        { HikvisionCameraDriver() },
        { DahuaDriver() },
        { ONVIFDriver() },
        { MQTTDriver() },
        { GB28181Driver() },
    ]

    /// A fresh instance of every driver, for one daemon run, config check or replay.
    public static func makeAll() -> [any Driver] { makers.map { $0() } }

    /// The names devices may use under `driver:`, read from a fresh set.
    public static var names: Set<String> { Set(makeAll().map(\.name)) }

    /// What each driver takes under `options:`, for the config loader, read from a fresh set.
    public static var options: [String: DriverOptionSet] { options(of: makeAll()) }

    /// What each of `drivers` takes under `options:`.
    public static func options(of drivers: [any Driver]) -> [String: DriverOptionSet] {
        Dictionary(drivers.map { ($0.name, $0.options) }, uniquingKeysWith: { first, _ in first })
    }
}

extension [any Driver] {
    /// The driver devices name `name` under `driver:`.
    public func named(_ name: String) -> (any Driver)? { first { $0.name == name } }
}
