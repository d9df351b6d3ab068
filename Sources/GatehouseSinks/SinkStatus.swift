import GatehouseCore

/// A snapshot of one sink's health for the status log, `gatehouse status` and metrics.
public struct SinkStatus: Sendable, Codable, Equatable {
    public var name: String
    /// `file` or `http`.
    public var type: String
    /// `idle`, `sending`, `backing-off` or `stopped`.
    public var state: String
    /// Since the runner started.
    public var deliveredEvents: Int64
    public var deliveredBatches: Int64
    /// Events the target refused one by one and that went to quarantine.
    public var rejectedEvents: Int64
    public var lastError: String?
    public var lastErrorAt: Timestamp?
    public var lastDeliveryAt: Timestamp?
    /// Events delivered over the last 60 seconds.
    public var eventsPerMinute: Double
    /// Failed attempts since the last delivery.
    public var consecutiveFailures: Int

    public init(
        name: String, type: String, state: String = "idle", deliveredEvents: Int64 = 0, deliveredBatches: Int64 = 0,
        rejectedEvents: Int64 = 0, lastError: String? = nil, lastErrorAt: Timestamp? = nil,
        lastDeliveryAt: Timestamp? = nil, eventsPerMinute: Double = 0, consecutiveFailures: Int = 0
    ) {
        self.name = name
        self.type = type
        self.state = state
        self.deliveredEvents = deliveredEvents
        self.deliveredBatches = deliveredBatches
        self.rejectedEvents = rejectedEvents
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
        self.lastDeliveryAt = lastDeliveryAt
        self.eventsPerMinute = eventsPerMinute
        self.consecutiveFailures = consecutiveFailures
    }
}
