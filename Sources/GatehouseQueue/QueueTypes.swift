import Foundation
import GatehouseCore

/// What happened to one event handed to the queue.
public enum AppendOutcome: Sendable, Equatable {
    /// Committed durably; the device may now be acknowledged.
    case stored(EventID)
    /// The same device sent the same dedup key with the same content before; nothing new was stored.
    case duplicate(of: EventID)
    /// The disk budget is full of events at least as important: ask the sender to retry later.
    case refused(String)

    public var isAccepted: Bool {
        if case .refused = self { return false }
        return true
    }

    public var isStored: Bool {
        if case .stored = self { return true }
        return false
    }
}

/// An event as read back from the queue for a sink.
public struct StoredEvent: Sendable, Equatable {
    /// Insertion order; what sink cursors count in.
    public let seq: Int64
    public let priority: Priority
    /// The event's JSON, exactly as stored.
    public let body: Data

    public init(seq: Int64, priority: Priority, body: Data) {
        self.seq = seq
        self.priority = priority
        self.body = body
    }
}

/// How far a polled device's own log was read, stored with the events it produced.
public struct DeviceCursorUpdate: Sendable, Equatable {
    public var deviceID: String
    public var cursor: String

    public init(deviceID: String, cursor: String) {
        self.deviceID = deviceID
        self.cursor = cursor
    }
}

/// Input that could not be mapped, kept so it can be replayed after the mapping is fixed.
public struct QuarantineRecord: Sendable, Equatable {
    public var deviceID: String?
    /// The driver that received it, or `sink:<name>` for an event a sink's target rejected.
    public var driver: String
    public var route: String?
    public var contentType: String?
    public var remote: String?
    public var reason: String
    public var payload: Data

    public init(
        deviceID: String?, driver: String, route: String? = nil, contentType: String? = nil, remote: String? = nil,
        reason: String, payload: Data
    ) {
        self.deviceID = deviceID
        self.driver = driver
        self.route = route
        self.contentType = contentType
        self.remote = remote
        self.reason = reason
        self.payload = payload
    }
}

/// A stored quarantine entry.
public struct QuarantineEntry: Sendable, Codable, Equatable {
    public var id: Int64
    public var receivedAt: Timestamp
    public var deviceID: String?
    public var driver: String
    public var route: String?
    public var contentType: String?
    public var remote: String?
    public var reason: String
    /// Size of the payload as received; `payload` may be cut to the configured bound.
    public var payloadBytes: Int
    public var payload: Data
    public var replayedAt: Timestamp?
    public var replayedEvents: [String]?
    /// The reason as stored in clear, with quoted values hidden (`reason` is the full one, opened
    /// from its sealed copy): what listings print.
    public var redactedReason: String?
    /// The quarantine key the payload is sealed with; nil for an entry not sealed.
    public var keyID: String?
    /// Why the sealed payload could not be opened (another key); `payload` is then empty.
    public var unreadable: String?
    /// Set when an operator discarded the entry: its payload is erased, these and the digest stay.
    public var discarded: Discard?
    /// Hex SHA-256 of the payload bytes that were kept, recorded when the entry was discarded.
    public var payloadSHA256: String?

    public struct Discard: Sendable, Codable, Equatable {
        public var at: Timestamp
        public var by: String
        public var reason: String
    }

    /// Neither replayed nor discarded.
    public var isWaiting: Bool { replayedAt == nil && discarded == nil }

    public init(
        id: Int64, receivedAt: Timestamp, deviceID: String?, driver: String, route: String?, contentType: String?,
        remote: String?, reason: String, payloadBytes: Int, payload: Data, replayedAt: Timestamp?, replayedEvents: [String]?
    ) {
        self.id = id
        self.receivedAt = receivedAt
        self.deviceID = deviceID
        self.driver = driver
        self.route = route
        self.contentType = contentType
        self.remote = remote
        self.reason = reason
        self.payloadBytes = payloadBytes
        self.payload = payload
        self.replayedAt = replayedAt
        self.replayedEvents = replayedEvents
    }

    public var truncated: Bool { unreadable == nil && discarded == nil && payload.count < payloadBytes }
}

/// The queue's figures for the status log, `gatehouse status` and metrics.
public struct QueueStats: Sendable, Codable, Equatable {
    /// Events not yet delivered by every sink.
    public var depth: Int64
    /// Bytes counted against the disk budget (events and quarantine).
    public var usedBytes: Int64
    public var budgetBytes: Int64
    public var oldestReceivedAt: Timestamp?
    /// Evictions since the queue was created, by priority name, plus `quarantine`.
    public var evicted: [String: Int64]
    public var quarantined: Int64
    public var quarantineWaiting: Int64
    public var duplicates: Int64
    /// Events stored although their dedup key was seen before, because their content differed
    /// (a vendor counter that restarted, a placeholder id, a cleared log).
    public var dedupCollisions: Int64 = 0
    /// SQLite file and its WAL on disk.
    public var fileBytes: Int64
    /// Since this process started: transactions committed by the group committer, and the events
    /// they stored (not the duplicates or refusals they answered).
    public var commits: Int64
    public var committedEvents: Int64
    /// Why the queue is refusing appends for lack of file-system space (`disk full: …`); nil when it is not.
    public var diskFull: String? = nil
    /// Appends waiting for the group commit now.
    public var waitingAppends: Int? = nil
}

/// Raised when the disk budget cannot take an item and nothing less important can be evicted.
public struct QueueFullError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Raised when more appends wait for the group commit, or more pushed requests wait for their
/// reply, than `queue.max_waiting_appends`: the caller is refused at once (503 with Retry-After)
/// instead of queueing for ever longer.
public struct QueueOverloadedError: Error, Sendable, CustomStringConvertible {
    public var waiting: Int
    public var description: String {
        "\(waiting) requests are already waiting for the queue (queue.max_waiting_appends); nothing was stored"
    }
}

/// Raised when the file system holding the queue is full (SQLITE_FULL, or no room for the
/// reserve while the queue waits for space): nothing of the append was stored.
public struct QueueDiskFullError: Error, Sendable, CustomStringConvertible {
    public var directory: String
    public var description: String {
        "the file system holding the queue (\(directory)) is full; nothing was stored; space returns as sinks deliver (or free space there)"
    }
}

/// Raised when the queue file cannot be opened with the guarantees the delivery contract needs.
public struct QueueOpenError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
