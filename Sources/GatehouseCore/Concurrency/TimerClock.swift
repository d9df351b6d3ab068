import Synchronization

/// The clock that timeouts, backoffs and offline decisions read, injected so that tests advance
/// time instead of sleeping.
public protocol TimerClock: Sendable {
    /// Wall-clock time: stamps and "how long since".
    var now: Timestamp { get }
    /// Runs `action` once `delay` has passed on this clock, unless the returned timer is cancelled first.
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer
}

extension TimerClock {
    /// Waits `duration` on this clock (the one wake-up primitive, with a timer of this clock);
    /// throws `CancellationError` when the task is cancelled first. On a `ManualClock` the wait
    /// ends when a test advances past it, so nothing in a test sleeps through a backoff.
    public func sleep(for duration: Duration) async throws {
        await WakeUpSignal().wait(timeout: duration, clock: self)
        try Task.checkCancellation()
    }
}

/// A pending `TimerClock.schedule`; cancelling it frees it at once (unlike a cancelled `Task.sleep`).
public struct ScheduledTimer: Sendable {
    private let onCancel: @Sendable () -> Void
    public init(onCancel: @escaping @Sendable () -> Void) { self.onCancel = onCancel }
    public func cancel() { onCancel() }
}

/// The machine's clock; timers run on one thread of their own (`TimerThread`).
public struct MachineClock: TimerClock {
    public init() {}
    public var now: Timestamp { .now }

    public func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer {
        TimerThread.shared.schedule(afterNanoseconds: UInt64(Self.nanoseconds(delay)), action)
    }

    static func nanoseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds > 0 || attoseconds > 0 else { return 0 }
        // Capped at a year: a longer limit is "no limit" in practice and must not overflow.
        let capped = min(seconds, 365 * 86_400)
        return Int(capped) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
    }
}

/// A clock that moves only when told to, for tests: `advance(by:)` runs every timer that falls due.
public final class ManualClock: TimerClock {
    private struct State {
        var now: Timestamp
        var timers: [UInt64: (due: Timestamp, action: @Sendable () -> Void)] = [:]
        var nextID: UInt64 = 0
    }
    private let state: Mutex<State>

    public init(start: Timestamp = Timestamp(milliseconds: 1_750_000_000_000)) {
        state = Mutex(State(now: start))
    }

    public var now: Timestamp { state.withLock { $0.now } }

    /// Timers waiting to fall due; a test polls this to know a wait has begun before advancing.
    public var pendingTimers: Int { state.withLock { $0.timers.count } }

    public func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer {
        let milliseconds = Int64(delay.components.seconds) * 1000 + Int64(delay.components.attoseconds / 1_000_000_000_000_000)
        // Already due (a zero backoff): runs now, as the machine's clock would, without waiting for an advance.
        guard milliseconds > 0 else {
            action()
            return ScheduledTimer {}
        }
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            s.timers[s.nextID] = (Timestamp(milliseconds: s.now.milliseconds + milliseconds), action)
            return s.nextID
        }
        return ScheduledTimer { [weak self] in _ = self?.state.withLock { $0.timers.removeValue(forKey: id) } }
    }

    /// Moves time forward and runs the timers that fell due, in due order.
    public func advance(by delay: Duration) {
        let milliseconds = Int64(delay.components.seconds) * 1000 + Int64(delay.components.attoseconds / 1_000_000_000_000_000)
        let due = state.withLock { s -> [@Sendable () -> Void] in
            s.now = Timestamp(milliseconds: s.now.milliseconds + milliseconds)
            let now = s.now
            let fired = s.timers.filter { $0.value.due.milliseconds <= now.milliseconds }.sorted { $0.value.due.milliseconds < $1.value.due.milliseconds }
            for (id, _) in fired { s.timers[id] = nil }
            return fired.map(\.value.action)
        }
        for action in due { action() }
    }
}
