import Synchronization

extension TimerClock {
    /// Waits `delay` on this clock, so a `ManualClock` test advances time instead of sleeping.
    /// Throws `CancellationError` as soon as the task is cancelled, and frees the timer then.
    public func sleep(for delay: Duration) async throws {
        let wait = PendingWait()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                guard wait.begin(continuation) else { return }
                let timer = schedule(after: delay) { wait.finish(nil) }
                wait.attach(timer)
            }
        } onCancel: {
            wait.finish(CancellationError())
        }
    }
}

/// One `sleep`: resumed exactly once, by its timer or by cancellation, whichever comes first.
private final class PendingWait: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, any Error>?
        var timer: ScheduledTimer?
        var finished = false
    }
    private let state = Mutex(State())

    /// False when cancellation came first (the continuation was resumed here).
    func begin(_ continuation: CheckedContinuation<Void, any Error>) -> Bool {
        let cancelled = state.withLock { s -> Bool in
            if s.finished { return true }
            s.continuation = continuation
            return false
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    func attach(_ timer: ScheduledTimer) {
        let late = state.withLock { s -> Bool in
            if s.finished { return true }
            s.timer = timer
            return false
        }
        if late { timer.cancel() }
    }

    func finish(_ error: (any Error)?) {
        let (continuation, timer) = state.withLock { s -> (CheckedContinuation<Void, any Error>?, ScheduledTimer?) in
            guard !s.finished else { return (nil, nil) }
            s.finished = true
            defer { s.continuation = nil; s.timer = nil }
            return (s.continuation, s.timer)
        }
        if error != nil { timer?.cancel() }
        if let error { continuation?.resume(throwing: error) } else { continuation?.resume() }
    }
}
