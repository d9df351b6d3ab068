@testable import GatehouseCore
import Synchronization
import Testing

/// The machine clock's timer thread: due timers run in deadline order, a cancelled one never
/// runs, an earlier deadline set while the thread sleeps towards a later one is not missed, and
/// actions may set timers themselves. Each test waits for a timer that must run after the ones
/// it checks (same thread, deadline order), so no assertion depends on how fast the machine is.
@Suite("Timer thread")
struct TimerThreadTests {
    /// Records which timers ran, in order, and lets a test wait for one of them.
    final class Log: Sendable {
        private let ran = Mutex<[String]>([])
        private let signals = Mutex<[String: AsyncStream<Void>.Continuation]>([:])

        func record(_ name: String) -> @Sendable () -> Void {
            { [self] in
                ran.withLock { $0.append(name) }
                _ = signals.withLock { $0[name] }?.yield()
            }
        }

        /// Returns once `name` ran (bounded: a minute, far beyond any timer here).
        func waitFor(_ name: String) async {
            let (stream, continuation) = AsyncStream<Void>.makeStream()
            signals.withLock { $0[name] = continuation }
            if ran.withLock({ $0.contains(name) }) { return }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { for await _ in stream { return } }
                group.addTask { try? await Task.sleep(for: .seconds(60)) }
                await group.next()
                group.cancelAll()
            }
        }

        var names: [String] { ran.withLock { $0 } }
    }

    @Test("timers run in deadline order, whatever order they were set in")
    func deadlineOrder() async {
        let timers = TimerThread()
        let log = Log()
        _ = timers.schedule(afterNanoseconds: 60_000_000, log.record("c"))
        _ = timers.schedule(afterNanoseconds: 20_000_000, log.record("a"))
        _ = timers.schedule(afterNanoseconds: 40_000_000, log.record("b"))
        await log.waitFor("c")
        #expect(log.names == ["a", "b", "c"])
        #expect(timers.pendingCount == 0)
    }

    @Test("a cancelled timer never runs and is freed at once")
    func cancelled() async {
        let timers = TimerThread()
        let log = Log()
        let doomed = timers.schedule(afterNanoseconds: 10_000_000, log.record("cancelled"))
        _ = timers.schedule(afterNanoseconds: 30_000_000, log.record("after"))
        doomed.cancel()
        #expect(timers.pendingCount == 1, "the cancelled timer's action is released before its deadline")
        await log.waitFor("after")
        #expect(log.names == ["after"], "the cancelled timer's deadline passed before 'after' ran, yet it did not run")
    }

    @Test("an earlier deadline set while the thread sleeps towards a later one wakes it")
    func earlierDeadlineWakes() async {
        let timers = TimerThread()
        let log = Log()
        _ = timers.schedule(afterNanoseconds: 3_600_000_000_000, log.record("in an hour"))
        // The thread now sleeps for an hour unless this timer wakes it.
        _ = timers.schedule(afterNanoseconds: 1_000_000, log.record("soon"))
        await log.waitFor("soon")
        #expect(log.names == ["soon"])
        #expect(timers.pendingCount == 1)
    }

    @Test("an action may set the next timer (a retransmission schedule)")
    func actionSchedulesTimer() async {
        let timers = TimerThread()
        let log = Log()
        let second = log.record("second")
        _ = timers.schedule(afterNanoseconds: 1_000_000) {
            log.record("first")()
            _ = timers.schedule(afterNanoseconds: 1_000_000, second)
        }
        await log.waitFor("second")
        #expect(log.names == ["first", "second"])
    }

    @Test("many waits that end early leave no pile of cancelled timers behind")
    func cancelledTimersAreCompacted() {
        let timers = TimerThread()
        // Long limits, each ended early: the heap is rebuilt once cancelled entries dominate it.
        for _ in 0..<10_000 {
            timers.schedule(afterNanoseconds: 3_600_000_000_000) {}.cancel()
        }
        #expect(timers.pendingCount == 0)
        #expect(timers.heapCount <= 1025, "cancelled entries are compacted, not kept for an hour")
    }
}
