/// Estimates one device's clock offset from the events it sends and says when to report it.
///
/// Delays (queues, retries, offline replay) only ever add to `receivedAt − occurredAt`, so the
/// smallest gap seen over a window of receive time is the best estimate of the offset:
/// positive when the device runs behind, negative when it runs ahead. A negative gap cannot
/// come from a delay, so a clock running ahead is reported at once; a positive one may be a
/// replayed backlog, so it is reported only once the smallest gap has held for `settleSeconds`
/// of receive time (live events would have pulled it down). A pure state machine on injected times.
public struct ClockSkewMonitor: Sendable {
    public struct Report: Sendable, Equatable {
        /// Gateway clock minus device clock, in seconds.
        public var skewSeconds: Double
        /// Samples the estimate was taken from.
        public var samples: Int
    }

    struct Sample {
        var receivedAt: Timestamp
        var gap: Double
    }

    public let settings: ClockSkewSettings
    /// Samples older than this (by receive time) no longer count.
    public let windowSeconds: Double
    /// How long a positive estimate must be observed before it is reported.
    public let settleSeconds: Double
    private var samples: [Sample] = []
    private var lastReport: Timestamp?
    private let maxSamples = 256

    public init(settings: ClockSkewSettings, windowSeconds: Double = 600, settleSeconds: Double = 60) {
        self.settings = settings
        self.windowSeconds = windowSeconds
        self.settleSeconds = settleSeconds
    }

    /// The current estimate (the smallest gap in the window), once there is a sample.
    public var estimateSeconds: Double? { samples.map(\.gap).min() }

    /// Records one event's times; returns a report when the skew passes the threshold and
    /// the last report is older than the report interval.
    public mutating func observe(occurredAt: Timestamp, receivedAt: Timestamp) -> Report? {
        samples.removeAll { receivedAt.seconds - $0.receivedAt.seconds > windowSeconds }
        samples.append(Sample(receivedAt: receivedAt, gap: Double(receivedAt.milliseconds - occurredAt.milliseconds) / 1000))
        if samples.count > maxSamples, let largest = samples.indices.max(by: { samples[$0].gap < samples[$1].gap }) {
            samples.remove(at: largest)  // only the smallest gaps matter to the estimate
        }
        guard let skew = estimateSeconds, abs(skew) >= settings.thresholdSeconds else { return nil }
        if skew > 0 {
            guard let first = samples.map(\.receivedAt).min(), receivedAt.seconds - first.seconds >= settleSeconds else { return nil }
        }
        if let last = lastReport, receivedAt.seconds - last.seconds < settings.reportIntervalSeconds { return nil }
        lastReport = receivedAt
        return Report(skewSeconds: skew, samples: samples.count)
    }
}
