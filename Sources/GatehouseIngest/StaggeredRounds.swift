import GatehouseCore
import Synchronization

/// Runs one piece of work per camera, each on its own interval, for the liveness probes (picture
/// health keeps its own schedule because SIGHUP adds and removes its cameras): item *i* of *n* first runs *i/n* of its interval
/// after start, then once per interval on that phase, so 500 cameras never make a burst. At most
/// `concurrency` run at once, never two of one item; a late item skips a round rather than
/// catching up. Time is the injected clock.
final class StaggeredRounds: Sendable {
    private let intervals: [Double]
    private let concurrency: Int
    private let clock: any TimerClock
    private let busy = Mutex<Set<Int>>([])
    private let slotFreed = WakeUpSignal()
    /// Earlier next runs asked for by finished work, by item, in clock milliseconds.
    private let earlier = Mutex<[Int: Int64]>([:])

    /// `intervals` in seconds, one per item.
    init(intervals: [Double], concurrency: Int, clock: any TimerClock) {
        self.intervals = intervals
        self.concurrency = max(1, concurrency)
        self.clock = clock
    }

    /// Work running now.
    var inFlight: Int { busy.withLock { $0.count } }

    /// Runs until cancelled. `nextDelay(index)` is the time in seconds from one run of `index`
    /// to its next (the interval, or a jittered one); `work` may ask for an earlier next run by
    /// returning its delay in seconds from this run's start (a liveness retry).
    func run(nextDelay: @escaping @Sendable (Int) -> Double, work: @escaping @Sendable (Int) async -> Double?) async {
        guard !intervals.isEmpty else { return }
        let start = clock.now.milliseconds
        var due = intervals.enumerated().map { index, interval in
            start + Int64(interval * 1000 * Double(index) / Double(intervals.count))
        }
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                for (index, earlier) in takeEarlier() { due[index] = min(due[index], earlier) }
                let now = clock.now.milliseconds
                for index in intervals.indices where due[index] <= now && !isBusy(index) {
                    guard takeSlot(index) else { break }
                    // The next time keeps the item's phase; an item late past a whole interval skips it.
                    let period = Int64(nextDelay(index) * 1000)
                    due[index] += period
                    if due[index] <= now { due[index] = now + period }
                    group.addTask {
                        let retry = await work(index)
                        if let retry { self.earlier.withLock { $0[index] = now + Int64(retry * 1000) } }
                        self.busy.withLock { _ = $0.remove(index) }
                        self.slotFreed.signal()
                    }
                }
                // Until the next due item that can start, or until a run ends and frees a slot.
                let (full, busyNow) = busy.withLock { ($0.count >= concurrency, $0) }
                let next = full ? nil : intervals.indices.filter { !busyNow.contains($0) }.map { due[$0] }.min()
                let delay = next.map { $0 - clock.now.milliseconds }
                // Already due (time moved while starting the others): start it now rather than wait a tick.
                if let delay, delay <= 0 { continue }
                await slotFreed.wait(timeout: delay.map { .milliseconds($0) }, clock: clock)
            }
        }
    }

    private func takeEarlier() -> [Int: Int64] {
        earlier.withLock { pending in
            let taken = pending
            pending = [:]
            return taken
        }
    }

    private func isBusy(_ index: Int) -> Bool { busy.withLock { $0.contains(index) } }

    /// Claims one of the `concurrency` slots for item `index`.
    private func takeSlot(_ index: Int) -> Bool {
        busy.withLock { s in
            guard s.count < concurrency else { return false }
            s.insert(index)
            return true
        }
    }
}
