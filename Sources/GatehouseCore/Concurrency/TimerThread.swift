import Dispatch
import Glibc
import HeapModule

/// The machine clock's timers: one thread sleeping until the earliest deadline.
///
/// Most timers here are time limits on waits that end early (the group committer waits up to a
/// second after every commit, a sink up to its idle recheck after every batch), so a timer is
/// mostly set and cancelled, rarely fired. A Dispatch timer source costs wake-ups of Dispatch's
/// manager thread to create and again to cancel, several thread switches per commit on a busy
/// box; here setting a timer later than the earliest one and cancelling any timer only take a
/// lock. The thread is woken only for a new earliest deadline, and runs each due action itself,
/// outside the lock, so actions must be short (resuming a continuation, a signal, a send).
final class TimerThread: @unchecked Sendable {
    static let shared = TimerThread()

    private struct Entry: Comparable {
        var deadline: UInt64
        var id: UInt64
        static func < (a: Entry, b: Entry) -> Bool { (a.deadline, a.id) < (b.deadline, b.id) }
    }

    // Guarded by `mutex`.
    private var heap = Heap<Entry>()
    private var actions: [UInt64: @Sendable () -> Void] = [:]
    private var nextID: UInt64 = 0
    /// The deadline the thread sleeps until; nil while it sleeps without one (or is not started).
    private var sleepingUntil: UInt64?
    private var started = false

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        // Monotonic: a wall-clock step (NTP, an operator) must not stretch or cut a timeout.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Pending timers, cancelled ones excluded, and heap entries, cancelled ones included (for tests).
    var pendingCount: Int { locked { actions.count } }
    var heapCount: Int { locked { heap.count } }

    func schedule(afterNanoseconds delay: UInt64, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer {
        let deadline = Self.now() &+ delay
        let id = locked { () -> UInt64? in
            nextID += 1
            let id = nextID
            actions[id] = action
            heap.insert(Entry(deadline: deadline, id: id))
            if !started {
                started = startThread()
            } else if sleepingUntil.map({ deadline < $0 }) ?? true {
                // A new earliest deadline: the thread sleeps too long otherwise.
                pthread_cond_signal(condition)
            }
            guard started else {
                // Its heap entry stays, with no action: nothing runs it.
                actions[id] = nil
                return nil
            }
            return id
        }
        guard let id else { return Self.dispatchTimer(afterNanoseconds: delay, action) }
        return ScheduledTimer { [self] in cancel(id) }
    }

    /// The fallback when the thread cannot be started (a process at its thread limit): a Dispatch timer.
    private static func dispatchTimer(afterNanoseconds delay: UInt64, _ action: @escaping @Sendable () -> Void) -> ScheduledTimer {
        let source = DispatchSource.makeTimerSource(queue: .global())
        source.schedule(deadline: .now() + .nanoseconds(Int(min(delay, UInt64(Int.max)))))
        source.setEventHandler(handler: action)
        source.resume()
        // DispatchSourceTimer is thread-safe but not marked Sendable.
        nonisolated(unsafe) let timer = source
        return ScheduledTimer { timer.cancel() }
    }

    private func cancel(_ id: UInt64) {
        // Frees the action at once; the heap entry is dropped when it comes up (or by the compaction).
        locked {
            actions[id] = nil
            compactIfMostlyCancelled()
        }
    }

    /// Called with the lock held; the thread takes the lock once it runs.
    private func startThread() -> Bool {
        startDetachedThread { [self] in run() }
    }

    private func run() {
        pthread_mutex_lock(mutex)
        while true {
            let now = Self.now()
            var due: [@Sendable () -> Void] = []
            while let top = heap.min, top.deadline <= now || actions[top.id] == nil {
                heap.removeMin()
                if let action = actions.removeValue(forKey: top.id) { due.append(action) }
            }
            if !due.isEmpty {
                pthread_mutex_unlock(mutex)
                for action in due { action() }
                pthread_mutex_lock(mutex)
                continue
            }
            if let next = heap.min?.deadline {
                sleepingUntil = next
                var until = timespec(tv_sec: Int(next / 1_000_000_000), tv_nsec: Int(next % 1_000_000_000))
                pthread_cond_timedwait(condition, mutex, &until)
            } else {
                sleepingUntil = nil
                pthread_cond_wait(condition, mutex)
            }
        }
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Cancelled entries stay in the heap until their deadline; many waits with long limits that
    /// end early would pile them up, so the heap is rebuilt once they are most of it.
    private func compactIfMostlyCancelled() {
        guard heap.count > 1024, heap.count > 4 * actions.count else { return }
        heap = Heap(heap.unordered.filter { actions[$0.id] != nil })
        // The earliest deadline may now be later: the thread wakes once for nothing, harmless.
    }

    /// CLOCK_MONOTONIC in nanoseconds, the clock the condition waits on.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
