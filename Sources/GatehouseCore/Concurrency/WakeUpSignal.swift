import Synchronization

/// A one-slot wake-up a task can wait on, with or without a time limit. A signal sent while
/// nobody waits is kept (at most one), so a wake-up that lands between "nothing to do" and
/// "start waiting" is not missed.
///
/// The time limit is a timer of the given `TimerClock` (`TimerThread` on the machine's clock)
/// cancelled as soon as the wait ends, not a racing
/// `Task.sleep`: a cancelled sleep keeps its timer and continuation until the original deadline,
/// so a wait ended early by every commit would hold rate × timeout of them. Hand-made rather than
/// an `AsyncStream`, because cancelling a task that awaits a stream ends the stream for good.
///
/// Meant for one waiter at a time; a second waiter ends the first one's wait (a spurious wake-up,
/// which every caller tolerates because it re-checks its own state).
public final class WakeUpSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Wakes the current waiter, or the next one if nobody waits.
    public func signal() {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let waiter = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return waiter.continuation
        }
        continuation?.resume()
    }

    /// Returns when signalled (or a signal was pending), or when the task is cancelled.
    public func wait() async {
        await wait(timeout: nil, clock: MachineClock())
    }

    /// Returns when signalled (or a signal was pending), after `timeout` on `clock` if given, or
    /// when the task is cancelled, whichever is first. The clock is the caller's, never a
    /// default: a time limit follows whatever clock its owner was given.
    public func wait(timeout: Duration?, clock: any TimerClock) async {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        var timer: ScheduledTimer?
        defer { timer?.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let (resumeNow, displaced) = state.withLock { s -> (Bool, CheckedContinuation<Void, Never>?) in
                    if s.pending {
                        s.pending = false
                        return (true, nil)
                    }
                    // Checked under the lock: the cancellation handler takes the same lock after the flag is set.
                    if Task.isCancelled { return (true, nil) }
                    let displaced = s.waiter?.continuation
                    s.waiter = (id, continuation)
                    return (false, displaced)
                }
                displaced?.resume()
                if resumeNow {
                    continuation.resume()
                } else if let timeout {
                    // Armed only once the waiter is registered, so an expiry cannot arrive before it.
                    timer = clock.schedule(after: timeout) { [self] in expire(id) }
                }
            }
        } onCancel: {
            expire(id)
        }
    }

    /// Ends wait `id` without consuming a signal.
    private func expire(_ id: UInt64) {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let waiter = s.waiter, waiter.id == id else { return nil }
            s.waiter = nil
            return waiter.continuation
        }
        continuation?.resume()
    }
}
