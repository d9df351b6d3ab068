import GatehouseCore

/// Decides whose clock an event's `occurredAt` is. A device time that cannot be trusted — not a
/// real date, a clock reset to its factory date, far ahead of the gateway — is never silently
/// replaced or guessed at: the device's text stays in `source.deviceTime`, `occurredAt` is the
/// receive time, and the event says so (`timeSource: gateway`, `timeReason`).
enum DeviceTimeTrust {
    struct Verdict: Equatable {
        var occurredAt: Timestamp
        var source: TimeSource
        var reason: String?
        /// The device's time as it wrote it, or as read when the driver kept no text.
        var deviceTime: String?
    }

    static func judge(_ draft: EventDraft, receivedAt: Timestamp, settings: ClockSkewSettings) -> Verdict {
        guard let occurredAt = draft.occurredAt else {
            let reason = draft.deviceTime == nil ? "no device time" : "device time unreadable: \(draft.timeIssue ?? "not a time")"
            return Verdict(occurredAt: receivedAt, source: .gateway, reason: reason, deviceTime: draft.deviceTime)
        }
        let ahead = Double(occurredAt.milliseconds - receivedAt.milliseconds) / 1000
        var reason: String?
        if ahead > settings.maxAheadSeconds {
            reason = "device time is \(Int(ahead)) s ahead of the gateway clock (more than clock_skew.max_ahead_seconds \(Int(settings.maxAheadSeconds)))"
        } else if occurredAt.milliseconds < settings.earliestMilliseconds {
            reason = "device time is before \(settings.earliestYear) (clock_skew.earliest_year): a clock reset to its factory date"
        }
        guard let reason else {
            return Verdict(occurredAt: occurredAt, source: .device, reason: nil, deviceTime: draft.deviceTime)
        }
        return Verdict(occurredAt: receivedAt, source: .gateway, reason: reason, deviceTime: draft.deviceTime ?? occurredAt.rfc3339)
    }
}
