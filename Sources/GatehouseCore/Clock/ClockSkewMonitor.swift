/// Estimates one device's clock offset from the events it sends and says when to report it.
///
/// Delays (queues, retries, offline replay) only ever add to `receivedAt − occurredAt`, so the
/// smallest gap over a recent window is the best estimate of the clock offset: positive when
/// the device runs behind, negative when it runs ahead. A pure state machine on injected times.
public struct ClockSkewMonitor: Sendable {
    public struct Report: Sendable, Equatable {
        /// Gateway clock minus device clock, in seconds.
        public var skewSeconds: Double
        public var samples: Int
    }

    public let settings: ClockSkewSettings
    private var window: [Double] = []
    private var lastReport: Timestamp?
    private let windowSize = 16

    public init(settings: ClockSkewSettings) { self.settings = settings }

    /// The current estimate (the smallest gap in the window), once there is a sample.
    public var estimateSeconds: Double? { window.min() }

    /// Records one event's times; returns a report when the skew passes the threshold and
    /// the last report is older than the report interval.
    public mutating func observe(occurredAt: Timestamp, receivedAt: Timestamp) -> Report? {
        window.append(Double(receivedAt.milliseconds - occurredAt.milliseconds) / 1000)
        if window.count > windowSize { window.removeFirst(window.count - windowSize) }
        guard let skew = estimateSeconds, abs(skew) >= settings.thresholdSeconds else { return nil }
        if let last = lastReport, receivedAt.seconds - last.seconds < settings.reportIntervalSeconds { return nil }
        lastReport = receivedAt
        return Report(skewSeconds: skew, samples: window.count)
    }
}
