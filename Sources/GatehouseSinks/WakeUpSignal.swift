import Synchronization

/// A one-slot wake-up a task can wait on with a time limit; a signal sent while nobody waits
/// is kept, so a commit that lands between "batch was empty" and "start waiting" is not missed.
///
/// Hand-made rather than racing an `AsyncStream` in a task group, because cancelling a task
/// that awaits an `AsyncStream` ends the stream for good.
final class WakeUpSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    /// Wakes the current waiter, or the next one if nobody waits.
    func signal() {
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

    /// Returns when signalled, after `seconds`, or when the task is cancelled, whichever is first.
    func wait(seconds: Double) async {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // A cancelled sleep must not wake anybody: only an elapsed one expires the wait.
                if (try? await Task.sleep(for: .seconds(max(0, seconds)))) != nil { self.expire(id) }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { s -> Bool in
                        if s.pending {
                            s.pending = false
                            return true
                        }
                        // Checked under the lock: the cancellation handler takes the same lock after the flag is set.
                        if Task.isCancelled { return true }
                        s.waiter = (id, continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                self.expire(id)
            }
            group.cancelAll()
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
