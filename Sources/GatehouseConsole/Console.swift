import Foundation
import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import GatehouseSinks

/// The figures the status log computes, handed to the console as they are.
public struct ConsoleStatus: Sendable {
    public struct SinkLine: Sendable {
        public var status: SinkStatus
        public var lag: Int64
        public init(status: SinkStatus, lag: Int64) {
            self.status = status
            self.lag = lag
        }
    }

    public var site: String
    public var startedAt: Timestamp
    public var generatedAt: Timestamp
    public var devices: [DeviceDirectory.Health]
    public var queue: QueueStats
    public var sinks: [SinkLine]
    public var failedSinks: [String: String]
    /// Events per minute over the last minutes, by device id (devices that sent any).
    public var eventsPerMinute: [String: Double] = [:]
    /// Clock offset (gateway minus device, seconds) by device id, where the skew check has one.
    public var clockOffsets: [String: Double] = [:]

    public init(
        site: String, startedAt: Timestamp, generatedAt: Timestamp, devices: [DeviceDirectory.Health], queue: QueueStats, sinks: [SinkLine],
        failedSinks: [String: String]
    ) {
        self.site = site
        self.startedAt = startedAt
        self.generatedAt = generatedAt
        self.devices = devices
        self.queue = queue
        self.sinks = sinks
        self.failedSinks = failedSinks
    }
}

/// What the console reads and changes, provided by the daemon: the console itself owns no
/// state but its sessions.
public struct ConsoleBackend: Sendable {
    public var status: @Sendable () async throws -> ConsoleStatus
    public var queue: EventQueue
    /// Maps a quarantined payload again with the running config; the ids of the events it became.
    public var replay: @Sendable (QuarantineEntry) async throws -> [EventID]
    /// Re-reads the config file, as SIGHUP does; the outcome goes to the log.
    public var reload: @Sendable () async -> Void
    /// Where the vendor profiles live in the config in force.
    public var adaptersDirectory: @Sendable () -> String
    /// A configured device's time zone identifier, for a scaffolded profile's samples.
    public var deviceTimeZone: @Sendable (String) -> String?
    /// Sets a device's `options.profile` (profile, device) in the config file and reloads; says
    /// what was written. Throws the reason when nothing was.
    public var activateProfile: @Sendable (String, String) async throws -> String = { _, _ in
        throw ConsoleBackendUnavailable(description: "this console cannot write the config")
    }
    /// A device's last raw payload under the privacy policy in force (in memory only); nil before its first.
    public var lastPayload: @Sendable (String) -> LastPayload.Shown? = { _ in nil }
    /// Why the config file cannot be written now; nil when it can.
    public var configFileProblem: @Sendable () -> String? = { "this console cannot write the config" }

    public init(
        status: @escaping @Sendable () async throws -> ConsoleStatus, queue: EventQueue,
        replay: @escaping @Sendable (QuarantineEntry) async throws -> [EventID], reload: @escaping @Sendable () async -> Void,
        adaptersDirectory: @escaping @Sendable () -> String, deviceTimeZone: @escaping @Sendable (String) -> String? = { _ in nil }
    ) {
        self.adaptersDirectory = adaptersDirectory
        self.deviceTimeZone = deviceTimeZone
        self.status = status
        self.queue = queue
        self.replay = replay
        self.reload = reload
    }
}

public struct ConsoleBackendUnavailable: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}
