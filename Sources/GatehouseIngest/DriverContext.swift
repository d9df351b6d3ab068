import GatehouseCore
import GatehouseQueue
import Logging

/// Everything a driver sees, and all it sees: the configured devices, the listener's request
/// checks (through the push path), and per device a `DeviceContext`. The queue and the device
/// directory stay behind it, so no driver can write around the pipeline or skip a health event.
public struct DriverContext: Sendable {
    private let pipeline: IngestPipeline
    let requests: DeviceRequests
    public let clock: any DriverClock
    /// How many devices connect at once (`connect_concurrency`).
    public let connectWaves: ConnectWaves

    public init(
        pipeline: IngestPipeline, requests: DeviceRequests, clock: any DriverClock = SystemClock(),
        connectWaves: ConnectWaves = ConnectWaves(limit: GatehouseConfig.defaultConnectConcurrency)
    ) {
        self.pipeline = pipeline
        self.requests = requests
        self.clock = clock
        self.connectWaves = connectWaves
    }

    /// The daemon's logger; per-device work logs through `DeviceContext.logger`, which names the device.
    public var logger: Logger { pipeline.logger }

    /// A configured, enabled device by its id.
    public func device(id: String) -> DeviceConfig? { pipeline.devices.device(id) }

    /// The configured, enabled devices of one driver, by id.
    public func devices(of driver: String) -> [DeviceConfig] { pipeline.devices.all.filter { $0.driver == driver } }

    /// Keeps input that could not be mapped, also from a device not known yet (`deviceID` nil);
    /// throws `QueueFullError` when the disk budget refuses it.
    public func quarantine(_ record: QuarantineRecord) async throws -> Int64 {
        try await pipeline.quarantine(record)
    }

    /// Runs one pushed request within the queue's admission limit (`EventQueue.admitting`).
    func admitting<T>(_ request: () async throws -> T) async throws -> T {
        try await pipeline.queue.admitting(request)
    }

    /// Keeps what `device` sent last, and what the mapping made of it (nil: it did not map), in
    /// memory for the console's device page (`LastPayload`).
    public func keepLastPayload(_ body: [UInt8], contentType: String?, of device: DeviceConfig, mapped drafts: [EventDraft]?) {
        pipeline.devices.keepLastPayload(device.id, LastPayload(body, contentType: contentType, receivedAt: clock.now, mapped: drafts))
    }

    /// What a driver may do for one device.
    public func device(_ device: DeviceConfig) -> DeviceContext {
        DeviceContext(device: device, pipeline: pipeline, clock: clock, connectWaves: connectWaves)
    }
}

/// What a driver may do for one device: submit drafts (with quarantined input and the device's
/// cursor in the same transaction), keep input it cannot map, read its cursor, and report its
/// health. Every health change it reports becomes a `device.online` / `device.offline` event.
public struct DeviceContext: Sendable {
    /// The device's entry in the config.
    public let config: DeviceConfig
    public let clock: any DriverClock
    private let pipeline: IngestPipeline
    private let connectWaves: ConnectWaves

    fileprivate init(device: DeviceConfig, pipeline: IngestPipeline, clock: any DriverClock, connectWaves: ConnectWaves) {
        self.config = device
        self.pipeline = pipeline
        self.clock = clock
        self.connectWaves = connectWaves
    }

    /// Waits for this device's turn to connect (at most `connect_concurrency` devices connect at
    /// once); the driver ends the slot once the device is held (subscribed, stream open) or the
    /// attempt failed. Nil when the task was cancelled while waiting.
    public func connectTurn() async -> ConnectWaves.Slot? {
        await connectWaves.enter()
    }

    /// The driver's logger with `gatehouse.device` set. Made when asked for: a context is made
    /// for every pushed request, and most never log.
    public var logger: Logger {
        var logger = pipeline.logger
        logger[metadataKey: "gatehouse.device"] = "\(config.id)"
        return logger
    }

    /// The device's `options:`, typed by the driver's declarations, defaults behind them.
    public var options: DeviceOptions { config.options }

    /// The configured clock-skew threshold and report interval, for drivers that read device clocks themselves.
    public var clockSkewSettings: ClockSkewSettings { pipeline.clockSkewSettings }

    /// Normalizes and commits `drafts`, `quarantine` and the device's new `cursor` in one
    /// transaction; returns when it is durable, one outcome per draft, then one `.refused` per
    /// quarantine record the disk budget refused (the cursor then stays where it was).
    /// Traffic marks the device seen.
    public func submit(
        _ drafts: [EventDraft], quarantine: [QuarantineRecord] = [], cursor: String? = nil, receivedAt: Timestamp? = nil
    ) async throws -> [AppendOutcome] {
        try await pipeline.submit(
            drafts, quarantine: quarantine, from: config, driver: config.driver, receivedAt: receivedAt ?? clock.now,
            cursor: cursor.map { DeviceCursorUpdate(deviceID: config.id, cursor: $0) })
    }

    /// Keeps input that could not be mapped, with the reason; returns its quarantine id.
    /// Throws `QueueFullError` when the disk budget refuses it.
    public func quarantine(_ record: QuarantineRecord) async throws -> Int64 {
        try await pipeline.quarantine(record)
    }

    /// Keeps the device's last raw message, and what the mapping made of it (nil: it did not
    /// map), in memory for the console's device page (`LastPayload`).
    public func keepLastPayload(_ body: [UInt8], contentType: String?, mapped drafts: [EventDraft]?) {
        pipeline.devices.keepLastPayload(config.id, LastPayload(body, contentType: contentType, receivedAt: clock.now, mapped: drafts))
    }

    /// The cursor last committed with this device's events (event index, upload stamps…), nil before the first.
    public func cursor() async throws -> String? {
        try await pipeline.queue.deviceCursor(config.id)
    }

    /// Stores the device's cursor alone, without events and without marking the device seen: a
    /// driver's own state that must survive a restart (a GB/T 28181 registration).
    public func saveCursor(_ cursor: String) async throws {
        _ = try await pipeline.queue.append([], cursor: DeviceCursorUpdate(deviceID: config.id, cursor: cursor))
    }

    /// The device is up as it was announced before a restart: up again without a `device.online`.
    public func resume() { pipeline.devices.markResumed(config.id, at: clock.now) }

    /// The device answered or sent something: up, and `device.online` queued if it was not.
    public func seen() async {
        if let transition = pipeline.devices.markSeen(config.id, events: 0, at: clock.now) {
            await pipeline.report([transition])
        }
    }

    /// Facts about the device beyond up or down, for `gatehouse status` (no personal data).
    public func describe(_ detail: [String: String]) { pipeline.devices.describe(config.id, detail: detail) }

    /// The device is unreachable or refused us: down with the reason, and `device.offline` queued if it was not.
    public func down(reason: String) async {
        if let transition = pipeline.devices.markDown(config.id, reason: reason, at: clock.now) {
            await pipeline.report([transition])
        }
    }
}

/// Time as drivers read it, behind a protocol so that tests can inject their own: a `TimerClock`
/// (wall-clock time, and timers for waits) plus monotonic time.
public protocol DriverClock: TimerClock {
    /// Monotonic time: intervals and back-offs.
    var instant: ContinuousClock.Instant { get }
}

/// The machine's clocks. The daemon makes one and hands it to everything that decides by time.
public struct SystemClock: DriverClock {
    public init() {}
    public var now: Timestamp { .now }
    public var instant: ContinuousClock.Instant { ContinuousClock.now }
    public func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer {
        MachineClock().schedule(after: delay, action)
    }
}

/// A test's clock seen by drivers: monotonic time moves with `advance(by:)`, exactly as wall time does.
extension ManualClock: DriverClock {
    public var instant: ContinuousClock.Instant { ManualInstantOrigin.origin.advanced(by: .milliseconds(now.milliseconds)) }
}

/// An arbitrary fixed origin for `ManualClock.instant`; only differences between instants mean anything.
private enum ManualInstantOrigin {
    static let origin = ContinuousClock.now
}
