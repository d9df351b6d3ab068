import GatehouseCore

/// Events a device sent per minute over the last few minutes, for the console's Devices page:
/// one counter per minute of receive time in a small ring, so recording is an addition and
/// memory stays fixed per device.
public struct EventRate: Sendable {
    /// Minutes the rate is averaged over.
    public static let windowMinutes = 5
    private var minutes = [Int64](repeating: -1, count: windowMinutes)
    private var counts = [Int64](repeating: 0, count: windowMinutes)

    public init() {}

    public mutating func record(_ events: Int, at time: Timestamp) {
        let minute = time.milliseconds / 60_000
        let slot = Int(minute % Int64(Self.windowMinutes))
        if minutes[slot] != minute {
            minutes[slot] = minute
            counts[slot] = 0
        }
        counts[slot] += Int64(events)
    }

    /// Events per minute over the window ending at `now`: the full minutes before it plus the
    /// part of the current one that has passed.
    public func perMinute(at now: Timestamp) -> Double {
        let current = now.milliseconds / 60_000
        var total: Int64 = 0
        for (slot, minute) in minutes.enumerated() where minute > current - Int64(Self.windowMinutes) && minute <= current {
            total += counts[slot]
        }
        let elapsed = Double(Self.windowMinutes - 1) + Double(now.milliseconds % 60_000) / 60_000
        return Double(total) / max(elapsed, 1)
    }
}
